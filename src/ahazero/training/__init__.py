"""The training wing: assemble TRL's GRPOTrainer from a checked config and run it.

``assemble`` (config -> dataset, rewards, model, trainer; the ``train`` entry point),
``trainer`` (the GRPOTrainer subclass: rollout hooks, traces, padding guard, zero-variance
groups), ``micro_batches`` (micro-batches regrouped by length or by prompt for the update),
``packing`` and ``packed_attention`` (packed micro-batches: every real token computed once,
each prompt once per micro-batch), ``update_meter`` (the update's time and tokens per step),
``auto_sizes`` (``auto`` micro-batch and generation sizes from the GPU's memory),
``callbacks`` (metrics file, step lines, non-finite gradient guard), ``collapse`` (the
collapse alarm during training), ``launch`` (several GPUs or machines through accelerate) and
``processes`` (what the processes of one run must agree on). It may import every wing below
it: ``rollout``, ``models``, ``observe``, ``config``, ``tasks``, ``cache`` and ``rewards``.
Nothing below imports training.
"""
