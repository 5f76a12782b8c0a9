"""The rollout wing: how a GRPO step's completions are generated.

``backends`` (sets up the chosen backend on a built trainer) and ``graph_sampler``
(ahazero's fixed-shape sampling loop with a static KV cache, one CUDA graph per token).
It may import ``models``, ``config``, ``tasks`` and ``cache``; never training or observe.
"""
