"""The config wing: the experiment's one typed surface, checked before any model loads.

``schema`` (the pydantic model, loading, ``key=value`` overrides), ``stage_schema`` (its ``sft``
and ``stages`` sections), ``backend_choice`` (what
``generation.backend`` may say and what it sets in GRPOConfig), ``presets`` (named bundles of
overrides) and ``validate`` (every check that needs no model: tasks, rewards, TRL's fields,
batch sizes, the run directory).
It may import ``tasks``, ``cache`` and the ``rewards`` package; nothing that trains or loads models.
"""
