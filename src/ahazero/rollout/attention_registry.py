"""Attention functions of ahazero's own, registered with transformers under a name, each once.

transformers picks a layer's attention function by ``config._attn_implementation`` from its
``AttentionInterface``, and the mask builder by the same name from its
``AttentionMaskInterface``. :func:`register_attention` adds both for a name: the function
given, and ``sdpa``'s mask (so a model switched to the name builds the masks it built before).
The grouped decode attention (:mod:`ahazero.rollout.grouped_attention`) and the packed update's
attention (:mod:`ahazero.training.packed_attention`) register this way.

Example:
    >>> from transformers.integrations.sdpa_attention import sdpa_attention_forward
    >>> register_attention("example_sdpa", sdpa_attention_forward)
    >>> from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS
    >>> "example_sdpa" in ALL_ATTENTION_FUNCTIONS
    True
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["register_attention"]

_registered: set[str] = set()


def register_attention(name: str, function: Callable[..., Any]) -> None:
    """Add ``function`` (transformers' attention-function signature) and sdpa's mask under ``name``, once.

    Example:
        >>> register_attention("example_sdpa", lambda *args, **kwargs: None)   # already there: nothing changes
    """
    if name in _registered:
        return
    from transformers.masking_utils import AttentionMaskInterface, sdpa_mask
    from transformers.modeling_utils import AttentionInterface

    AttentionInterface.register(name, function)
    AttentionMaskInterface.register(name, sdpa_mask)
    _registered.add(name)
