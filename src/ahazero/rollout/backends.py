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
    Prompts are bucketed like ``compiled``. Eager (uncompiled) without a GPU. Its exact
    big-batch options (``generation.share_prefill``, ``compact_rows``, ``max_rows``) are
    described in :mod:`ahazero.rollout.graph_sampler`.
``paged``
    transformers' continuous batching (``generate_batch`` with a paged KV cache), TRL's
    ``use_transformers_continuous_batching``.
``vllm``
    vLLM colocated in the training process (``use_vllm``, ``vllm_mode: colocate``); only when
    vLLM is installed.
``auto``
    ``vllm`` when vLLM is importable and a GPU is present, else ``graph`` on a GPU, else
    ``hf`` (see :func:`~ahazero.config.backend_choice.resolve_backend`; docs/results.md's benchmark table shows why).

The bucket padding of ``compiled`` and ``graph`` is for generation only: the training
forward pass (log-probabilities, loss) sees the same padding as with ``hf``. When the loss
batch was padded to the bucket too (TRL's ``pad_to_multiple_of``), runs with these two
backends skipped many updates for non-finite gradients on an H200 (15 of the default
recipe's 60: the steps whose loss batch was 320 tokens wide; see
:func:`ahazero.training.trainer.avoid_unstable_length`), against 0-1 with ``hf``.

The names and ``auto``'s pick live in :mod:`ahazero.config.backend_choice`, so validation
can check them without this module.

Example:
    >>> from ahazero.config.backend_choice import backend_grpo_settings, resolve_backend
    >>> resolve_backend("auto", cuda=False)
    'hf'
    >>> backend_grpo_settings("compiled")
    {'cache_implementation': 'static'}
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ahazero.rollout.graph_sampler import GraphSampler

if TYPE_CHECKING:
    from ahazero.config.schema import GenerationSettings

__all__ = ["configure_generation", "graph_sampler"]


def configure_generation(trainer: Any, backend: str, *, requested: str = "auto", prompt_bucket: int = 64,
                         settings: GenerationSettings | None = None) -> None:
    """Finish setting up a built trainer for ``backend`` (what GRPOConfig cannot express).

    TRL builds its ``GenerationConfig`` with compilation disabled; the ``compiled`` backend
    turns it back on (static cache + ``torch.compile`` of the decode step). ``graph`` hands
    generation to :class:`~ahazero.rollout.graph_sampler.GraphSampler`, with the options in
    ``settings`` (the config's ``generation`` section); when it was picked by ``auto``
    (``requested``), a model it cannot run falls back to TRL's generate. Both pad prompts to
    a multiple of ``prompt_bucket`` (``settings.prompt_bucket`` when given) for generation
    only (``trainer.generation_bucket``). Other backends need nothing.

    Example:
        >>> configure_generation(trainer, "compiled")   # doctest: +SKIP
        >>> trainer.generation_config.disable_compile    # doctest: +SKIP
        False
    """
    if settings is not None:
        prompt_bucket = settings.prompt_bucket
    if backend == "graph":
        trainer.generation_bucket = prompt_bucket
        trainer.use_graph_sampler(graph_sampler(settings), fallback=requested == "auto")
        return
    if backend != "compiled":
        return
    trainer.generation_bucket = prompt_bucket
    from transformers import CompileConfig

    config = trainer.generation_config  # already has the static cache (backend_grpo_settings)
    config.disable_compile = False
    if trainer.accelerator.device.type == "cuda":
        config.compile_config = CompileConfig(fullgraph=False, dynamic=False, mode="reduce-overhead")


def graph_sampler(settings: GenerationSettings | None = None) -> GraphSampler:
    """The graph backend's sampler with the ``generation`` section's options (defaults without one).

    A ``max_rows: auto`` that training did not resolve (evaluation, sampling stages: they
    generate their own ``--batch-size``) generates the whole batch at once.

    Example:
        >>> from ahazero.config.schema import GenerationSettings
        >>> graph_sampler(GenerationSettings(share_prefill=True, max_rows=512)).max_rows
        512
        >>> graph_sampler(GenerationSettings(max_rows="auto")).max_rows
        0
    """
    if settings is None:
        return GraphSampler()
    max_rows = settings.max_rows if isinstance(settings.max_rows, int) else 0
    return GraphSampler(share_prefill=settings.share_prefill, compact_rows=settings.compact_rows,
                        max_rows=max_rows, grouped_attention=settings.grouped_attention,
                        graph_mode=settings.graph_mode)
