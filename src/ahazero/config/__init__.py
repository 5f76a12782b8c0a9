"""The config wing: the experiment's one typed surface, checked before any model loads.

``schema`` (the pydantic model, loading, ``key=value`` overrides; ``named_entries``: a new
``rewards.N.name`` replaces the entry), ``stage_schema`` (its ``sft``
and ``stages`` sections), ``yaml_load`` (bounded YAML
reading: text only, size and alias expansion capped), ``backend_choice`` (what
``generation.backend`` may say and what it sets in GRPOConfig), ``sharding`` (whether FSDP or
ZeRO-3 shard the parameters, and which rollout backends survive it), ``presets`` (named
bundles of overrides), ``throughput`` (checks of the big-batch settings), ``memory_model`` (the GPU
memory a config needs, and the micro-batch sizes that fit) and ``validate`` (every check that needs no model: tasks and their local
files, TRL's fields, batch sizes), with ``grpo_ranges`` (the valid range of each ``grpo``
number), ``reward_checks`` (what may be a reward), ``reward_guard`` (the guard around a custom
reward: errors, exits and ``on_reward_error``), ``reward_output`` (the contract on what a reward
returns), ``exit_guard`` (exits asked for by user code during a run never pass for success),
``cli_numbers`` (the command line's counts: 0 and negatives refused), ``run_paths`` (where a run
directory may be), ``output_paths`` (where any command may write a file or folder: the one check
of every ``--out``) and ``reference`` (the configuration reference page, written from the schema).
It may import ``tasks``, ``cache`` and the ``rewards`` package; nothing that trains or loads models.
"""
