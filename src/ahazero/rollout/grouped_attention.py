"""Decode-step attention for grouped-query models without copying keys and values per head.

Qwen2.5-0.5B has 14 query heads and 2 key/value heads. transformers' ``sdpa`` attention
gives each query head its own copy of the keys and values (``repeat_kv``) whenever an
attention mask is passed — which a left-padded rollout batch always does, and which
transformers' own packed-query path skips under ``torch.compile``. At a rollout batch of
1,024 rows x 640 cached positions that copy is ~50 GB of memory traffic per decode step,
seven times the cache itself: most of the graph sampler's step time.

For one new token per row (the decode step), the query heads that share a key/value head
can instead be laid out as that head's queries: ``(B, H, 1, D)`` becomes
``(B, H_kv, H / H_kv, D)``, and one ordinary attention call reads each cached key and value
once. Every query still attends to exactly the keys and values it did, under the same mask
(one mask row per batch row, shared by its heads), so the result is the same attention.
Prompts (more than one query position) go to transformers' ``sdpa`` unchanged.

:func:`grouped_decode` switches a model to this attention for the duration of a ``with``
block (the graph sampler's ``generate``) when the model uses ``sdpa`` and grouped-query
attention, and switches it back afterwards, so training and saving never see it.

Example:
    >>> with grouped_decode(model):                  # doctest: +SKIP
    ...     ids = sampler.generate(model, ...)
    >>> pack_queries(torch.zeros(3, 14, 1, 64), 7).shape
    torch.Size([3, 2, 7, 64])
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import torch

from ahazero.rollout.attention_registry import register_attention

__all__ = ["ATTENTION_NAME", "grouped_decode", "grouped_decode_attention", "pack_queries", "uses_grouped_heads"]

#: The name this attention is registered under in transformers' attention interfaces.
ATTENTION_NAME = "ahazero_grouped_sdpa"


def pack_queries(query: torch.Tensor, groups: int) -> torch.Tensor:
    """``(B, H, 1, D)`` query heads as ``(B, H / groups, groups, D)``: each key/value head's queries.

    Query heads ``g * groups ... (g + 1) * groups - 1`` share key/value head ``g`` (the
    order ``repeat_kv`` uses), so a plain reshape lays them out along the query axis.

    Example:
        >>> q = torch.arange(4.0).view(1, 4, 1, 1)
        >>> pack_queries(q, 2).flatten(2).tolist()
        [[[0.0, 1.0], [2.0, 3.0]]]
    """
    batch, heads, _, dim = query.shape
    return query.reshape(batch, heads // groups, groups, dim)


def grouped_decode_attention(module: Any, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                             attention_mask: torch.Tensor | None, dropout: float = 0.0,
                             scaling: float | None = None, is_causal: bool | None = None,
                             **kwargs: Any) -> tuple[torch.Tensor, None]:
    """transformers' attention-function signature; one query position per row without ``repeat_kv``.

    Falls back to transformers' ``sdpa`` for prompts, for models without grouped heads, and
    for masks that differ per head. Returns ``(output (B, 1, H, D), None)``.

    Example:
        >>> out, _ = grouped_decode_attention(module, q, k, v, mask, scaling=0.125)   # doctest: +SKIP
    """
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    groups = int(getattr(module, "num_key_value_groups", 1) or 1)
    shared_mask = attention_mask is None or (attention_mask.dim() == 4 and attention_mask.shape[1] == 1
                                            and attention_mask.shape[2] == 1)
    if (groups == 1 or query.shape[2] != 1 or not shared_mask or kwargs.get("position_bias") is not None
            or kwargs.get("softcap") is not None or kwargs.get("sinks") is not None):
        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout, scaling=scaling,
                                      is_causal=is_causal, **kwargs)
    batch, heads, _, dim = query.shape
    out = torch.nn.functional.scaled_dot_product_attention(
        pack_queries(query, groups), key, value, attn_mask=attention_mask, dropout_p=dropout, scale=scaling,
        is_causal=False)
    return out.reshape(batch, heads, 1, value.shape[-1]).transpose(1, 2).contiguous(), None


def _register() -> None:
    """Add the attention and its mask (sdpa's) to transformers' interfaces, once."""
    register_attention(ATTENTION_NAME, grouped_decode_attention)


def uses_grouped_heads(config: Any) -> bool:
    """Whether a model config has fewer key/value heads than query heads (grouped-query attention).

    Example:
        >>> from types import SimpleNamespace
        >>> uses_grouped_heads(SimpleNamespace(num_attention_heads=14, num_key_value_heads=2))
        True
        >>> uses_grouped_heads(SimpleNamespace(num_attention_heads=8, num_key_value_heads=8))
        False
    """
    heads = getattr(config, "num_attention_heads", None)
    kv_heads = getattr(config, "num_key_value_heads", None)
    return isinstance(heads, int) and isinstance(kv_heads, int) and 0 < kv_heads < heads


@contextlib.contextmanager
def grouped_decode(model: Any) -> Iterator[bool]:
    """Within the block, ``model`` decodes with :func:`grouped_decode_attention`; yields whether it switched.

    Switches only a model whose config says ``sdpa`` and grouped-query attention (other
    attention kernels, e.g. flash-attention, already read each key/value head once), and
    always restores the previous setting.

    Example:
        >>> from types import SimpleNamespace
        >>> cfg = SimpleNamespace(_attn_implementation="eager", num_attention_heads=4, num_key_value_heads=2)
        >>> with grouped_decode(SimpleNamespace(config=cfg)) as switched:
        ...     switched
        False
    """
    config = getattr(model, "config", None)
    previous = getattr(config, "_attn_implementation", None)
    if previous != "sdpa" or not uses_grouped_heads(config):
        yield False
        return
    _register()
    config._attn_implementation = ATTENTION_NAME
    try:
        yield True
    finally:
        config._attn_implementation = previous
