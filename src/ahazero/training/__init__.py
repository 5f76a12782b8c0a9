"""The training wing: assemble TRL's GRPOTrainer from a checked config and run it.

``assemble`` (config -> dataset, rewards, model, trainer; the ``train`` entry point),
``trainer`` (the GRPOTrainer subclass: rollout hooks, traces, padding guard), ``micro_batches``
(length-sorted micro-batches without padding for the update), ``callbacks``
(metrics file, step lines, non-finite gradient guard) and ``launch`` (several GPUs through
accelerate). It may import every wing below it: ``rollout``, ``models``, ``observe``,
``config``, ``tasks``, ``cache`` and ``rewards``. Nothing below imports training.
"""
