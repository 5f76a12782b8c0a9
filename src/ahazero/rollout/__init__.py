"""The rollout wing: how a GRPO step's completions are generated.

``backends`` (sets up the chosen backend on a built trainer), ``graph_sampler``
(ahazero's fixed-shape sampling loop with a static KV cache, one CUDA graph per token),
``static_cache`` (the sampler's cache pool, moving rows between caches), ``decode_cost``
(what a decode step reads and computes, for the bench) and ``attention_registry`` (ahazero's
attention functions registered with transformers under their names).
It may import ``models``, ``config``, ``tasks`` and ``cache``; never training or observe.
"""
