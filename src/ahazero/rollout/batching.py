"""Token rows into a sampler batch: the ids that end a completion, and left padding to a bucket.

Shared by every caller that decodes outside GRPO training: ``ahazero sample`` and
``coldstart`` stages, ``ahazero calibrate`` and ``ahazero eval``.

Example:
    >>> ids, mask = left_pad([[5, 6], [7]], pad_id=0, multiple=4)
    >>> ids.tolist(), mask.tolist()
    ([[0, 0, 5, 6], [0, 0, 0, 7]], [[0, 0, 1, 1], [0, 0, 0, 1]])
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = ["eos_token_ids", "left_pad"]


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
