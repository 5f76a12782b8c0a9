"""Token rows into sampler batches and back: the ids that end a completion, left padding to a
bucket, and ``k`` completions per prompt decoded batch by batch.

Shared by every caller that decodes outside GRPO training: ``ahazero sample`` and
``coldstart`` stages, ``ahazero calibrate`` and ``ahazero eval``.

Example:
    >>> ids, mask = left_pad([[5, 6], [7]], pad_id=0, multiple=4)
    >>> ids.tolist(), mask.tolist()
    ([[0, 0, 5, 6], [0, 0, 0, 7]], [[0, 0, 1, 1], [0, 0, 0, 1]])
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

__all__ = ["completions_in_batches", "eos_token_ids", "left_pad", "until_eos"]


def eos_token_ids(model: Any, tokenizer: Any) -> list[int]:
    """Every token id that ends a completion: the generation config's and the tokenizer's EOS.

    Example:
        >>> from types import SimpleNamespace
        >>> eos_token_ids(SimpleNamespace(generation_config=SimpleNamespace(eos_token_id=[5, 7])),
        ...               SimpleNamespace(eos_token_id=5))
        [5, 7]
    """
    configured = model.generation_config.eos_token_id
    ids = list(configured) if isinstance(configured, list | tuple) else [configured]
    ids.append(tokenizer.eos_token_id)
    return sorted({int(i) for i in ids if i is not None})


def left_pad(rows: Sequence[Sequence[int]], pad_id: int, multiple: int) -> tuple[Any, Any]:
    """``(ids, mask)`` long tensors: each row right-aligned, the width rounded up to a multiple of ``multiple``.

    Example:
        >>> left_pad([[1, 2, 3]], pad_id=9, multiple=1)[0].tolist()
        [[1, 2, 3]]
    """
    import torch

    width = max(len(r) for r in rows)
    width = -(-width // multiple) * multiple
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        if row:
            ids[i, width - len(row):] = torch.tensor(list(row))
            mask[i, width - len(row):] = 1
    return ids, mask


def until_eos(ids: Sequence[int], eos: set[int] | Sequence[int], limit: int) -> tuple[list[int], bool]:
    """A completion's tokens up to (not including) its first EOS, and whether it hit ``limit`` without one.

    Example:
        >>> until_eos([4, 5, 2, 0], {2}, 4), until_eos([4, 5, 6], {2}, 3)
        (([4, 5], False), ([4, 5, 6], True))
    """
    ids = list(ids)
    for i, tok in enumerate(ids):
        if tok in eos:
            return ids[:i], False
    return ids, len(ids) >= limit


def completions_in_batches(encoded: Sequence[Sequence[int]], k: int, batch: int,
                           generate: Callable[[list[Sequence[int]]], Sequence[Sequence[int]]], *,
                           eos: set[int] | Sequence[int], limit: int,
                           advance: Callable[[list[int]], None] | None = None) -> list[list[tuple[list[int], bool]]]:
    """``k`` completions per encoded prompt as ``(tokens before the EOS, truncated)``, ``batch`` rows at a time.

    The prompts' ``k`` copies are laid out one after the other and cut into batches of
    ``min(batch, all rows)``; ``generate(rows)`` returns one token list per row (a sampler that
    needs one shape fills the last, shorter batch up itself). ``advance(prompt_indices)`` is
    called after each batch with the prompt index of each of its rows.

    Example:
        >>> completions_in_batches([[1], [2]], 2, 3, lambda rows: [r + [9, 0] for r in rows], eos={0}, limit=4)
        [[([1, 9], False), ([1, 9], False)], [([2, 9], False), ([2, 9], False)]]
    """
    flat = [p for p in range(len(encoded)) for _ in range(k)]
    batch = max(1, min(batch, len(flat)))
    out: list[list[tuple[list[int], bool]]] = [[] for _ in encoded]
    for start in range(0, len(flat), batch):
        chunk = flat[start:start + batch]
        generated = generate([encoded[p] for p in chunk])
        for p, ids in zip(chunk, generated[:len(chunk)], strict=True):
            out[p].append(until_eos(ids, eos, limit))
        if advance is not None:
            advance(chunk)
    return out
