"""Rollout backends: which code path generates the completions of each GRPO step.

Generation is most of a GRPO step, so the backend matters. Every backend here is an option
TRL or transformers already has; ahazero only picks one and sets it up consistently:

``hf``
    TRL's default: ``model.generate`` with a dynamic KV cache, eager PyTorch.
``compiled``
    ``model.generate`` with a static KV cache and the decode step compiled by
    ``torch.compile`` (CUDA graphs, ``mode="reduce-overhead"``). Prompts are left-padded
    to a multiple of ``generation.prompt_bucket`` tokens for generation, so the cache
    shape repeats and the compiled graph is reused instead of recompiled. Needs a CUDA GPU
    for the compilation; on CPU it still runs (static cache, eager).
``graph``
    ahazero's own fixed-shape sampling loop (:class:`ahazero.rollout.graph_sampler.GraphSampler`):
    a static KV cache and one compiled decode step — model forward *and* sampling — that
    runs as a single CUDA graph per token. Supports temperature, top-k and top-p (TRL's
    ``repetition_penalty``, ``min_p`` and ``generation_kwargs`` need another backend).
    Prompts are bucketed like ``compiled``. Eager (uncompiled) without a GPU.
``paged``
    transformers' continuous batching (``generate_batch`` with a paged KV cache), TRL's
    ``use_transformers_continuous_batching``.
``vllm``
    vLLM colocated in the training process (``use_vllm``, ``vllm_mode: colocate``); only when
    vLLM is installed.
``auto``
    ``vllm`` when vLLM is importable and a GPU is present, else ``graph`` on a GPU, else
    ``hf`` (see :func:`resolve_backend`; the README's benchmark table shows why).

The bucket padding of ``compiled`` and ``graph`` is for generation only: the training
forward pass (log-probabilities, loss) sees the same padding as with ``hf``. When the loss
batch was padded to the bucket too (TRL's ``pad_to_multiple_of``), runs with these two
backends skipped many updates for non-finite gradients on an H200 (15 of the default
recipe's 60: the steps whose loss batch was 320 tokens wide; see
:func:`ahazero.training.trainer.avoid_unstable_length`), against 0-1 with ``hf``.

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
    "configure_generation",
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


def configure_generation(trainer: Any, backend: str, *, requested: str = "auto", prompt_bucket: int = 64) -> None:
    """Finish setting up a built trainer for ``backend`` (what GRPOConfig cannot express).

    TRL builds its ``GenerationConfig`` with compilation disabled; the ``compiled`` backend
    turns it back on (static cache + ``torch.compile`` of the decode step). ``graph`` hands
    generation to :class:`~ahazero.rollout.graph_sampler.GraphSampler`; when it was picked by
    ``auto`` (``requested``), a model it cannot run falls back to TRL's generate. Both pad
    prompts to a multiple of ``prompt_bucket`` for generation only
    (``trainer.generation_bucket``). Other backends need nothing.

    Example:
        >>> configure_generation(trainer, "compiled")   # doctest: +SKIP
        >>> trainer.generation_config.disable_compile    # doctest: +SKIP
        False
    """
    if backend == "graph":
        trainer.generation_bucket = prompt_bucket
        trainer.use_graph_sampler(fallback=requested == "auto")
        return
    if backend != "compiled":
        return
    trainer.generation_bucket = prompt_bucket
    from transformers import CompileConfig

    config = trainer.generation_config  # already has the static cache (backend_grpo_settings)
    config.disable_compile = False
    if trainer.accelerator.device.type == "cuda":
        config.compile_config = CompileConfig(fullgraph=False, dynamic=False, mode="reduce-overhead")
