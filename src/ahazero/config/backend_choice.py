"""Which rollout backend a config gets: the names, the GRPOConfig keys each one sets, ``auto``'s pick.

These are facts about the config (what ``generation.backend`` may say and what it means for
``trl.GRPOConfig``), so validation can check them without importing any generation code;
:mod:`ahazero.rollout.backends` describes each backend and sets it up on a built trainer.

Example:
    >>> resolve_backend("auto", cuda=False)
    'hf'
    >>> backend_grpo_settings("compiled")
    {'cache_implementation': 'static'}
"""

from __future__ import annotations

import importlib.util
from typing import Any

__all__ = [
    "BACKENDS",
    "BACKEND_GRPO_KEYS",
    "GRAPH_UNSUPPORTED",
    "backend_grpo_settings",
    "resolve_backend",
    "vllm_available",
]

#: Backend names a config may give under ``generation.backend``.
BACKENDS = ("auto", "hf", "compiled", "graph", "paged", "vllm")

#: GRPOConfig keys a backend sets; a config sets them through ``generation.backend`` instead.
BACKEND_GRPO_KEYS = (
    "use_vllm",
    "vllm_mode",
    "use_transformers_continuous_batching",
    "use_transformers_paged",
    "cache_implementation",
)


#: GRPOConfig sampling settings the ``graph`` backend does not implement, with their neutral values.
GRAPH_UNSUPPORTED = {"repetition_penalty": 1.0, "min_p": None, "generation_kwargs": None}


def vllm_available() -> bool:
    """Whether vLLM can be imported here (without importing it).

    Example:
        >>> isinstance(vllm_available(), bool)
        True
    """
    return importlib.util.find_spec("vllm") is not None


def resolve_backend(backend: str, *, cuda: bool) -> str:
    """The concrete backend for ``backend`` on this machine (``auto`` picks the fastest one).

    A named backend is returned unchanged, except that ``vllm`` without vLLM installed is an
    error (raised as ``ValueError`` with the install hint).

    Example:
        >>> resolve_backend("auto", cuda=False)
        'hf'
        >>> resolve_backend("paged", cuda=False)
        'paged'
    """
    if backend not in BACKENDS:
        raise ValueError(f"unknown generation backend '{backend}'; valid choices: {', '.join(BACKENDS)}")
    if backend == "auto":
        if cuda and vllm_available():
            return "vllm"
        return "graph" if cuda else "hf"
    if backend == "vllm" and not vllm_available():
        raise ValueError("backend 'vllm' needs vLLM (pip install vllm); use 'auto' to pick the "
                         "fastest installed backend")
    return backend


def backend_grpo_settings(backend: str) -> dict[str, Any]:
    """The ``trl.GRPOConfig`` settings that select a concrete backend.

    Prompt buckets are not among them: :func:`configure_generation` sets those on the
    trainer, for generation only.

    Example:
        >>> backend_grpo_settings("hf")
        {}
        >>> backend_grpo_settings("paged")
        {'use_transformers_continuous_batching': True}
    """
    if backend in ("hf", "graph"):
        return {}
    if backend == "compiled":
        return {"cache_implementation": "static"}
    if backend == "paged":
        return {"use_transformers_continuous_batching": True}
    if backend == "vllm":
        return {"use_vllm": True, "vllm_mode": "colocate"}
    raise ValueError(f"'{backend}' is not a concrete backend; resolve it first with resolve_backend()")
