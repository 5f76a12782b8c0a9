"""The graph sampler's decode step recorded as a CUDA graph directly, without ``torch.compile``.

``torch.compile(mode="reduce-overhead")`` fuses kernels and records CUDA graphs, but compiling
a 0.5B model's decode step takes half a minute per shape (prompt bucket x batch rows) — a
third of a two-minute training run. The decode step's costs are its matrix products and its
attention; what the graph removes is the per-kernel launch overhead, and a graph recorded
from the eager step (``torch.cuda.CUDAGraph``) removes the same overhead in about a second.

:class:`CapturedStep` runs the eager step a few times on a side stream (as capture requires),
puts the KV cache's write positions back where they were, records one graph per shape, and
from then on copies each call's inputs into the graph's fixed input tensors and replays it.
The attention mask is built inside the step as a 4D mask (padding and the positions written
so far), so transformers does no mask work that would read GPU values on the host, which a
recorded graph cannot do. Only models on transformers' ``sdpa`` attention (or the grouped
decode attention, :mod:`ahazero.rollout.grouped_attention`) read such a mask correctly.

Example:
    >>> step = CapturedStep(decode_step)           # doctest: +SKIP
    >>> tokens, finished = step(tokens, position, cache_position, mask, finished, cache, eos, pad)  # doctest: +SKIP
"""

from __future__ import annotations

import weakref
from collections.abc import Callable
from typing import Any

import torch

__all__ = ["CapturedStep", "decode_mask", "supports_capture"]

#: Eager runs before a recording (CUDA graphs need the kernels' lazy setup done outside the capture).
WARMUP_RUNS = 2

#: transformers attention implementations that take a 4D boolean mask as "True = attend".
MASK_4D_ATTENTION = ("sdpa", "ahazero_grouped_sdpa")


def decode_mask(attention_mask: torch.Tensor, cache_position: torch.Tensor) -> torch.Tensor:
    """The ``(B, 1, 1, L)`` boolean mask of one decode position: non-padding and already written.

    ``attention_mask`` is ``(B, L)`` over the whole static cache; ``cache_position`` a
    one-element tensor holding the position being written.

    Example:
        >>> decode_mask(torch.tensor([[0, 1, 1, 1, 1]]), torch.tensor([2])).int().flatten().tolist()
        [0, 1, 1, 0, 0]
    """
    written = torch.arange(attention_mask.shape[1], device=attention_mask.device) <= cache_position
    return (attention_mask.bool() & written)[:, None, None, :]


def supports_capture(model: Any) -> bool:
    """Whether :func:`decode_mask`'s mask is right for this model: sdpa (or grouped decode) attention, every
    layer full attention (a sliding-window layer keeps a shorter cache and needs its own mask).

    Example:
        >>> from types import SimpleNamespace as NS
        >>> supports_capture(NS(config=NS(_attn_implementation="eager")))
        False
        >>> supports_capture(NS(config=NS(_attn_implementation="sdpa", layer_types=["full_attention"] * 2)))
        True
        >>> supports_capture(NS(config=NS(_attn_implementation="sdpa", use_sliding_window=True, sliding_window=4)))
        False
    """
    config = getattr(model, "config", None)
    if getattr(config, "_attn_implementation", None) not in MASK_4D_ATTENTION:
        return False
    if getattr(config, "use_sliding_window", False) and getattr(config, "sliding_window", None):
        return False
    return all(kind == "full_attention" for kind in getattr(config, "layer_types", None) or [])


def _lengths(cache: Any) -> list[torch.Tensor]:
    """Each cache layer's write-position counter (a tensor in transformers' static layers)."""
    return [layer.cumulative_length for layer in getattr(cache, "layers", None) or []
            if isinstance(getattr(layer, "cumulative_length", None), torch.Tensor)]


class CapturedStep:
    """Call ``step`` through one recorded CUDA graph per input shape (see the module docstring).

    ``step(tokens, position_ids, cache_position, attention_mask, finished, cache, eos, pad)``
    must return ``(next_tokens, finished)`` and use only fixed-shape GPU work. Returned
    tensors belong to the graph and are overwritten by the next replay: clone them to keep.
    """

    def __init__(self, step: Callable[..., tuple[torch.Tensor, torch.Tensor]]) -> None:
        self.step = step
        self.graphs: dict[tuple[Any, ...], tuple[Any, ...]] = {}

    def __call__(self, tokens: torch.Tensor, position_ids: torch.Tensor, cache_position: torch.Tensor,
                 attention_mask: torch.Tensor, finished: torch.Tensor, cache: Any, eos: torch.Tensor,
                 pad: torch.Tensor) -> tuple[Any, ...]:
        # every tensor the step reads is copied into the graph's own inputs: a graph replays reads at the
        # addresses it was recorded with, and a caller's tensors (even eos and pad) are freed after its call
        inputs = [tokens, position_ids, cache_position, attention_mask, finished, eos, pad]
        key = (id(cache), *(tuple(t.shape) for t in inputs))
        entry = self.graphs.get(key)
        if entry is None or entry[0]() is not cache:  # a new cache (an evicted one's id can come back)
            for stale in [k for k, (ref, *_rest) in self.graphs.items() if ref() is None]:
                del self.graphs[stale]  # the graphs of evicted caches hold their own memory pools
            entry = (weakref.ref(cache), *self._record(inputs, cache))
            self.graphs[key] = entry
        _, graph, static, outputs = entry
        for fixed, value in zip(static, inputs, strict=True):
            fixed.copy_(value)
        graph.replay()
        return outputs

    def _run(self, static: list[torch.Tensor], cache: Any) -> tuple[Any, ...]:
        tokens, position_ids, cache_position, attention_mask, finished, eos, pad = static
        return self.step(tokens, position_ids, cache_position, attention_mask, finished, cache, eos, pad)

    def _record(self, inputs: list[torch.Tensor],
                cache: Any) -> tuple[torch.cuda.CUDAGraph, list[torch.Tensor], tuple[Any, ...]]:
        static = [t.clone() for t in inputs]
        saved = [length.clone() for length in _lengths(cache)]
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(WARMUP_RUNS):
                self._run(static, cache)
        torch.cuda.current_stream().wait_stream(side)
        for length, value in zip(_lengths(cache), saved, strict=True):
            length.copy_(value)  # the warm-up runs wrote this position; the replay writes it again
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            outputs = self._run(static, cache)
        return graph, static, outputs
