"""Static KV caches for the graph sampler: a bounded pool, and moving rows from one cache to another.

A compiled decode step is recorded against fixed tensor addresses, so the sampler keeps one
``StaticCache`` per shape (rows x length) and reuses it. :class:`CachePool` holds them,
least recently used first out, within a count and a byte budget (a 1,024-row cache for a
640-token window of a 0.5B Qwen2.5 is about 8 GB, so a handful of prompt lengths must not
each keep one).

:func:`copy_rows` writes chosen rows of one cache into another: the graph sampler uses it to
give each completion its prompt's prefilled cache (one prefill per distinct prompt) and to
move the rows that are still generating into a smaller batch. It copies the keys, the values
and the write position, so the destination continues exactly where the source was.

Example:
    >>> import torch
    >>> ids = torch.tensor([[0, 5, 6], [0, 5, 6], [7, 8, 9]])
    >>> uniq, _, inverse = prompt_groups(ids, (ids != 0).long())
    >>> uniq.tolist(), inverse.tolist()
    ([[0, 5, 6], [7, 8, 9]], [0, 0, 1])
"""

from __future__ import annotations

import inspect
from collections import OrderedDict
from typing import Any

import torch

__all__ = ["CachePool", "cache_bytes", "copy_rows", "movable", "prompt_groups"]


def prompt_groups(input_ids: torch.Tensor, attention_mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor,
                                                                                 torch.Tensor]:
    """The distinct (prompt, mask) rows of a batch and, for each row, the index of its distinct row.

    Returns ``(unique_ids, unique_mask, inverse)`` with ``unique_ids[inverse] == input_ids``.

    Example:
        >>> ids = torch.tensor([[1, 2], [3, 4], [1, 2]])
        >>> u, m, inv = prompt_groups(ids, torch.ones_like(ids))
        >>> u[inv].equal(ids), len(u)
        (True, 2)
    """
    width = input_ids.shape[1]
    keys = torch.cat([input_ids, attention_mask.to(input_ids.dtype)], dim=1)
    unique, inverse = torch.unique(keys, dim=0, return_inverse=True)
    return unique[:, :width], unique[:, width:].to(attention_mask.dtype), inverse


def movable(cache: Any) -> bool:
    """Whether :func:`copy_rows` can move this cache's rows (every layer a plain full-attention static layer).

    Sliding-window or other special layers keep state this module does not copy.

    Example:
        >>> movable(object())
        False
    """
    from transformers.cache_utils import StaticLayer

    layers = getattr(cache, "layers", None)
    return bool(layers) and all(type(layer) is StaticLayer for layer in layers)


def cache_bytes(cache: Any) -> int:
    """Bytes held by a cache's allocated key and value tensors (0 before its first use).

    Example:
        >>> cache_bytes(object())
        0
    """
    total = 0
    for layer in getattr(cache, "layers", None) or []:
        for name in ("keys", "values"):
            tensor = getattr(layer, name, None)
            if isinstance(tensor, torch.Tensor):
                total += tensor.numel() * tensor.element_size()
    return total


def copy_rows(source: Any, target: Any, index: torch.Tensor) -> None:
    """Row ``i`` of ``target`` becomes row ``index[i]`` of ``source``, in every layer.

    ``target`` must have ``len(index)`` rows and the source's length; it is allocated on
    first use. Every position is overwritten and the write position copied, so nothing of
    the target's previous contents survives.

    Example:
        >>> copy_rows(prefilled, per_completion, inverse)   # doctest: +SKIP
    """
    rows = int(index.shape[0])
    for src, dst in zip(source.layers, target.layers, strict=True):
        if not getattr(dst, "is_initialized", False):
            _allocate(dst, src, rows)
        if dst.keys.shape[0] != rows or dst.keys.shape[2] != src.keys.shape[2]:
            raise ValueError(f"cache rows/length {tuple(dst.keys.shape)} do not fit {rows} rows of "
                             f"{tuple(src.keys.shape)}")
        torch.index_select(src.keys, 0, index, out=dst.keys)
        torch.index_select(src.values, 0, index, out=dst.values)
        length = getattr(src, "cumulative_length", None)
        if isinstance(length, torch.Tensor):
            dst.cumulative_length.copy_(length)
        elif length is not None:
            dst.cumulative_length = length


def _allocate(layer: Any, like: Any, rows: int) -> None:
    """Run a layer's lazy allocation for ``rows`` rows shaped like ``like``'s tensors."""
    keys = like.keys.new_empty((rows, like.keys.shape[1], 1, like.keys.shape[3]))
    values = like.values.new_empty((rows, like.values.shape[1], 1, like.values.shape[3]))
    if len(inspect.signature(layer.lazy_initialization).parameters) >= 2:
        layer.lazy_initialization(keys, values)
    else:  # older transformers take the key states only
        layer.lazy_initialization(keys)


class CachePool:
    """One ``StaticCache`` per (model, rows, length), reused; the least recently used go first.

    ``max_entries`` bounds the count and ``budget_bytes`` (when given) the bytes held; the
    cache just asked for is never dropped. A dropped cache is rebuilt when its shape returns.

    Example:
        >>> pool = CachePool(max_entries=2)
        >>> len(pool), pool.bytes()
        (0, 0)
    """

    def __init__(self, *, max_entries: int = 16, budget_bytes: int | None = None) -> None:
        self.max_entries = max(1, max_entries)
        self.budget_bytes = budget_bytes
        self._caches: OrderedDict[tuple[Any, ...], Any] = OrderedDict()

    def __len__(self) -> int:
        return len(self._caches)

    def bytes(self) -> int:
        """Bytes held by every cache in the pool."""
        return sum(cache_bytes(cache) for cache in self._caches.values())

    def get(self, model: Any, rows: int, length: int, *, reset: bool = True) -> Any:
        """The cache for this shape (created on first use); ``reset`` zeroes a reused one.

        Skip the reset when every position is about to be overwritten (:func:`copy_rows`).
        """
        from transformers import StaticCache

        key = (id(model), rows, length)
        cache = self._caches.pop(key, None)
        incoming = 0
        if cache is None:
            cache = StaticCache(config=model.config, max_cache_len=length)
            incoming = self._expected_bytes(key)  # allocated on first use, after this returns
        elif reset:
            cache.reset()
        self._caches[key] = cache
        self._evict(keep=key, incoming=incoming)
        return cache

    def _expected_bytes(self, key: tuple[Any, ...]) -> int:
        """The bytes a new cache of this shape will take, from an allocated one of the same model."""
        for (model_id, rows, length), cache in self._caches.items():
            held = cache_bytes(cache)
            if model_id == key[0] and held:
                return held * key[1] * key[2] // (rows * length)
        return 0

    def _evict(self, *, keep: tuple[Any, ...], incoming: int = 0) -> None:
        while len(self._caches) > 1:
            over_count = len(self._caches) > self.max_entries
            over_bytes = self.budget_bytes is not None and self.bytes() + incoming > self.budget_bytes
            if not (over_count or over_bytes):
                return
            oldest = next(iter(self._caches))
            if oldest == keep:
                return
            del self._caches[oldest]
