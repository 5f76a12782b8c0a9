"""The training wing: assemble TRL's GRPOTrainer from a checked config and run it.

``assemble`` (config -> dataset, rewards, model, trainer; the ``train`` entry point),
``trainer`` (the GRPOTrainer subclass: rollout hooks, traces, padding guard, zero-variance
groups), ``micro_batches`` (length-sorted micro-batches without padding for the update),
``callbacks`` (metrics file, step lines, non-finite gradient guard), ``collapse`` (the
collapse alarm during training), ``launch`` (several GPUs or machines through accelerate) and
``processes`` (what the processes of one run must agree on). It may import every wing below
it: ``rollout``, ``models``, ``observe``, ``config``, ``tasks``, ``cache`` and ``rewards``.
Nothing below imports training.
"""
