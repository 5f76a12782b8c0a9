"""Attention over a packed micro-batch (:mod:`ahazero.training.packing`) and the packed log-prob pass.

A packed micro-batch is one row of tokens from many sequences, so causal attention over the
row would let one completion see another. :func:`packed_attention_forward` (registered with
transformers' attention interface as :data:`ATTENTION_NAME`) instead gathers, for each
attention block row, its queries and the keys they may see, runs PyTorch's
``scaled_dot_product_attention`` on those padded rows under the block's mask, and puts each
query's output back at its place in the packed row. Any other call (no packed layout as its
mask) goes to transformers' ``sdpa`` unchanged.

:func:`packed_log_probs` runs the policy on a :class:`~ahazero.training.packing.PackedLayout`
with TRL's fused LM head (``fused_lm_head=True``: log-probs in vocabulary tiles, never the
``[tokens, vocabulary]`` logits), passing the layout as the model's prepared mask mapping so
transformers builds no ``[T, T]`` mask. The model's attention setting must name
:data:`ATTENTION_NAME` from that forward until its backward has run (gradient checkpointing
recomputes the forward inside the backward): :func:`switch_attention` sets it and returns
the function that restores it.

Example:
    >>> restore = switch_attention(model)                       # doctest: +SKIP
    >>> logps, entropy = packed_log_probs(model, layout, compute_entropy=True)   # doctest: +SKIP
    >>> logps.sum().backward(); restore()                       # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from ahazero.rollout.attention_registry import register_attention
from ahazero.training.packing import PackedLayout, unpack

__all__ = ["ATTENTION_NAME", "packed_attention_forward", "packed_log_probs", "packing_blocker", "switch_attention"]

#: The name this attention is registered under in transformers' attention interfaces.
ATTENTION_NAME = "ahazero_packed_sdpa"


def packed_attention_forward(module: Any, query: torch.Tensor, key: torch.Tensor, value: torch.Tensor,
                             attention_mask: Any, dropout: float = 0.0, scaling: float | None = None,
                             **kwargs: Any) -> tuple[torch.Tensor, None]:
    """transformers' attention-function signature; ``attention_mask`` is the packed layout.

    ``query`` is ``(1, H, T, D)``, ``key`` and ``value`` ``(1, H_kv, T, D)``; returns
    ``((1, T, H, D), None)``. Anything but a packed layout goes to transformers' ``sdpa``.

    Example:
        >>> out, _ = packed_attention_forward(module, q, k, v, layout, scaling=0.125)   # doctest: +SKIP
    """
    from transformers.integrations.sdpa_attention import repeat_kv, sdpa_attention_forward

    if not isinstance(attention_mask, PackedLayout):
        return sdpa_attention_forward(module, query, key, value, attention_mask, dropout=dropout, scaling=scaling,
                                      **kwargs)
    if kwargs.get("sliding_window") is not None:
        raise ValueError("packed attention does not implement sliding-window layers")
    groups = int(getattr(module, "num_key_value_groups", 1) or 1)
    q, k, v = query[0], key[0], value[0]  # (H, T, D), (H_kv, T, D)
    outputs = []
    for block in attention_mask.blocks:
        qb = q[:, block.query_index].transpose(0, 1)  # (R, H, Lq, D)
        kb = repeat_kv(k[:, block.key_index].transpose(0, 1), groups)  # (R, H, Lk, D)
        vb = repeat_kv(v[:, block.key_index].transpose(0, 1), groups)
        out = torch.nn.functional.scaled_dot_product_attention(
            qb, kb, vb, attn_mask=block.allowed[:, None], dropout_p=dropout, scale=scaling)  # (R, H, Lq, D)
        outputs.append(out.transpose(1, 2).reshape(-1, out.shape[1], out.shape[3]))  # (R * Lq, H, D)
    flat = torch.cat(outputs) if len(outputs) > 1 else outputs[0]
    return flat.index_select(0, attention_mask.output_index).unsqueeze(0), None


def _text_config(model: Any) -> Any:
    """The language model's config (a vision-language model's text config)."""
    config = model.config
    return config.get_text_config() if hasattr(config, "get_text_config") else config


def packing_blocker(model: Any) -> str | None:
    """Why a model's update cannot be packed (None when it can).

    Example:
        >>> from types import SimpleNamespace as NS
        >>> packing_blocker(NS(config=NS(layer_types=["full_attention"], _attn_implementation="sdpa")))
        >>> packing_blocker(NS(config=NS(layer_types=["sliding_attention"], _attn_implementation="sdpa",
        ...                              sliding_window=4096)))
        'its sliding-window attention layers'
    """
    text = _text_config(model)
    if "sliding_attention" in (getattr(text, "layer_types", None) or []) and getattr(text, "sliding_window", None):
        return "its sliding-window attention layers"
    if getattr(text, "output_router_logits", False):
        return "its mixture-of-experts router loss"
    return None


def switch_attention(model: Any) -> Callable[[], None]:
    """Make ``model`` attend with :func:`packed_attention_forward`; return the function that switches it back.

    Example:
        >>> from types import SimpleNamespace as NS
        >>> m = NS(config=NS(_attn_implementation="sdpa"))
        >>> restore = switch_attention(m); m.config._attn_implementation
        'ahazero_packed_sdpa'
        >>> restore(); m.config._attn_implementation
        'sdpa'
    """
    register_attention(ATTENTION_NAME, packed_attention_forward)
    config = model.config
    previous = config._attn_implementation
    if previous == ATTENTION_NAME:
        return lambda: None
    config._attn_implementation = ATTENTION_NAME

    def restore() -> None:
        config._attn_implementation = previous

    return restore


def packed_log_probs(model: Any, layout: PackedLayout, *,
                     compute_entropy: bool = False) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Per-token log-probs (and entropies) of the packed rows, as TRL's ``(rows, completion width)`` tensors.

    ``model`` carries TRL's fused LM head (``trl.trainer.utils.add_fused_lm_head``, which
    ``GRPOTrainer`` adds) and attends with :data:`ATTENTION_NAME` (:func:`switch_attention`).

    Example:
        >>> logps, _ = packed_log_probs(model, pack_rows(ids, mask, completion_width=8))   # doctest: +SKIP
    """
    kinds = set(getattr(_text_config(model), "layer_types", None) or ["full_attention"])
    outputs = model(input_ids=layout.input_ids, attention_mask=dict.fromkeys(kinds, layout),
                    position_ids=layout.position_ids, shift_labels=layout.shift_labels, fused_lm_head=True)
    entropy = unpack(outputs.entropy, layout) if compute_entropy and outputs.entropy is not None else None
    return unpack(outputs.log_probs, layout), entropy
