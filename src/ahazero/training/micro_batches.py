"""Length-sorted micro-batches for the policy update: the same gradient with less padding computed.

TRL pads every completion of a generation batch to the longest one and splits the batch into
micro-batches at random, so every micro-batch runs its forward and backward pass over the
longest completion of the whole step: a step of 1,024 completions averaging 90 tokens, one of
them 512 long, computes over about five times the positions it needs.

:func:`regroup_by_length` sorts the rows of each optimizer step (``window`` consecutive
micro-batches: one gradient-accumulation window) by completion length, longest first, into
micro-batches of the same sizes, and :func:`trim_padding` cuts each micro-batch's trailing
columns that are padding in all its rows. Cutting right padding changes no kept position's
logits (attention is causal), and the window's summed gradient is the same when no part of
the loss is normalised per micro-batch (:func:`ahazero.config.throughput.sort_by_length_blocker`
names the TRL settings where it would be, and validation refuses them). A trimmed width that
is an odd multiple of 64 keeps one more padding column, as
:func:`ahazero.training.trainer.avoid_unstable_length` does for the whole batch.

Example:
    >>> mask = torch.tensor([[1, 0, 0], [1, 1, 1], [1, 1, 0], [1, 0, 0]])
    >>> batch = {"prompt_ids": torch.zeros(4, 2, dtype=torch.long), "completion_ids": mask * 7,
    ...          "completion_mask": mask, "advantages": torch.arange(4.0), "num_items_in_batch": torch.tensor(7)}
    >>> first, second = regroup_by_length(split(batch, 2), window=2)
    >>> first["completion_mask"].tolist(), second["completion_mask"].tolist(), second["advantages"].tolist()
    ([[1, 1, 1], [1, 1, 0]], [[1], [1]], [0.0, 3.0])
"""

from __future__ import annotations

import logging
from typing import Any

import torch

from ahazero.training.packing import prompt_keys

__all__ = ["regroup_by_length", "regroup_by_prompt", "split", "trim_padding"]

logger = logging.getLogger("ahazero.training.micro_batches")

#: Per-completion-token tensors of TRL's batch: cut with the completion.
COMPLETION_ALIGNED = ("completion_ids", "completion_mask", "tool_mask", "old_per_token_logps",
                      "ref_per_token_logps", "sampling_per_token_logps", "importance_sampling_ratio", "advantages")
#: Per-prompt-token tensors: left as they are.
PROMPT_ALIGNED = ("prompt_ids", "prompt_mask")
#: Keys of vision-language batches (image patches are not one per row): such batches are left alone.
MULTIMODAL = ("pixel_values", "image_grid_thw", "pixel_attention_mask", "image_sizes", "spatial_shapes",
              "num_images", "token_type_ids", "mm_token_type_ids", "image_position_ids")

_warned: set[str] = set()


def split(batch: dict[str, Any], parts: int) -> list[dict[str, Any]]:
    """Split a batch's rows into ``parts`` equal micro-batches in order (TRL's ``split_tensor_dict``).

    Example:
        >>> [b["x"].tolist() for b in split({"x": torch.arange(4), "n": torch.tensor(4)}, 2)]
        [[0, 1], [2, 3]]
    """
    rows = _rows(batch)
    size = rows // parts
    return [{key: _take(value, rows, slice(i * size, (i + 1) * size)) for key, value in batch.items()}
            for i in range(parts)]


def regroup_by_length(batches: list[dict[str, Any]], window: int) -> list[dict[str, Any]]:
    """Within each ``window`` of micro-batches, sort rows by completion length into micro-batches, trimmed.

    Each micro-batch keeps its number of rows; values that are not per row (the step's
    token count ``num_items_in_batch``) are kept as they are. A batch this cannot regroup
    exactly (vision-language inputs, a per-row value of unknown layout) is returned unchanged,
    with a warning the first time.

    Example:
        >>> regroup_by_length([], window=4)
        []
    """
    return _regroup(batches, window, _longest_first, "update.sort_by_length")


def regroup_by_prompt(batches: list[dict[str, Any]], window: int) -> list[dict[str, Any]]:
    """Within each ``window`` of micro-batches, put the completions of one prompt next to each other.

    Packed micro-batches with shared prompts (``update.share_prompts``) compute a prompt once
    for all of its completions in the micro-batch, so the fewer micro-batches a prompt's
    completions spread over, the less is computed. Prompts keep the order they first appear
    in; each micro-batch keeps its number of rows (the same exactness conditions as
    :func:`regroup_by_length`), trimmed of padding columns.

    Example:
        >>> b = {"prompt_ids": torch.tensor([[1], [2], [1], [2]]), "prompt_mask": torch.ones(4, 1),
        ...      "completion_ids": torch.ones(4, 2), "completion_mask": torch.ones(4, 2), "advantages": torch.arange(4.0)}
        >>> [m["advantages"].tolist() for m in regroup_by_prompt(split(b, 2), window=2)]
        [[0.0, 2.0], [1.0, 3.0]]
    """
    return _regroup(batches, window, _by_prompt, "update.share_prompts")


def _regroup(batches: list[dict[str, Any]], window: int, order: Any, setting: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for start in range(0, len(batches), max(window, 1)):
        out += _regroup_window(batches[start:start + max(window, 1)], order, setting)
    return out


def _longest_first(merged: dict[str, Any]) -> torch.Tensor:
    return torch.argsort(_lengths(merged["completion_mask"]), descending=True, stable=True)


def _by_prompt(merged: dict[str, Any]) -> torch.Tensor:
    """Rows ordered by the first appearance of their prompt (its tokens and padding), stable within a prompt."""
    inverse = prompt_keys(merged["prompt_ids"], merged["prompt_mask"])
    rows = torch.arange(inverse.numel(), device=inverse.device)
    first = torch.full((int(inverse.max()) + 1,), inverse.numel(), device=inverse.device).scatter_reduce(
        0, inverse, rows, reduce="amin")
    return torch.argsort(first[inverse] * inverse.numel() + rows)


def trim_padding(batch: dict[str, Any]) -> dict[str, Any]:
    """Cut the completion columns that are padding in every row (one kept when the width would be 64 x odd).

    Example:
        >>> b = {"prompt_ids": torch.zeros(2, 62, dtype=torch.long), "completion_ids": torch.ones(2, 8),
        ...      "completion_mask": torch.tensor([[1, 1, 0, 0, 0, 0, 0, 0], [1, 0, 0, 0, 0, 0, 0, 0]])}
        >>> trim_padding(b)["completion_mask"].shape[1]   # 62 + 2 = 64 is avoided: 3 columns kept
        3
    """
    mask = batch["completion_mask"]
    full = mask.shape[1]
    width = max(int(_lengths(mask).max()) if mask.numel() else 0, 1)
    if (batch["prompt_ids"].shape[1] + width) % 128 == 64 and width < full:
        width += 1
    if width >= full:
        return batch
    unknown = [key for key, value in batch.items() if key not in COMPLETION_ALIGNED and key not in PROMPT_ALIGNED
               and isinstance(value, torch.Tensor) and value.ndim == 2 and value.shape[1] == full]
    if unknown:
        _warn_once(f"update.sort_by_length: micro-batch key '{unknown[0]}' has one column per completion token "
                   "and is not one this version knows; the micro-batches keep their padding")
        return batch
    return {key: value[:, :width] if key in COMPLETION_ALIGNED and isinstance(value, torch.Tensor)
            and value.ndim == 2 and value.shape[1] == full else value for key, value in batch.items()}


def _regroup_window(batches: list[dict[str, Any]], order_of: Any, setting: str) -> list[dict[str, Any]]:
    if not batches:
        return []
    blocked = [key for key in batches[0] if key in MULTIMODAL and batches[0][key] is not None]
    if blocked:
        _warn_once(f"{setting}: batches with '{blocked[0]}' are not regrouped")
        return batches
    sizes = [_rows(b) for b in batches]
    merged: dict[str, Any] = {}
    for key, first in batches[0].items():
        values = [b.get(key) for b in batches]
        if all(_per_row(v, n) for v, n in zip(values, sizes)):
            merged[key] = torch.cat(values) if isinstance(first, torch.Tensor) else [x for v in values for x in v]
        elif all(_shared(v) for v in values):
            merged[key] = first
        else:
            _warn_once(f"{setting}: micro-batch key '{key}' is neither per row nor shared; "
                       "the micro-batches are left as TRL made them")
            return batches
    order = order_of(merged)
    total = sum(sizes)
    out, start = [], 0
    for size in sizes:
        rows = order[start:start + size]
        out.append(trim_padding({key: _take(value, total, rows) for key, value in merged.items()}))
        start += size
    return out


def _lengths(mask: torch.Tensor) -> torch.Tensor:
    """Per row: one past the last unmasked completion position (0 for an empty row)."""
    positions = torch.arange(1, mask.shape[1] + 1, device=mask.device)
    return (mask.ne(0).long() * positions).amax(dim=1) if mask.shape[1] else mask.new_zeros(mask.shape[0])


def _rows(batch: dict[str, Any]) -> int:
    return int(batch["completion_ids"].shape[0]) if "completion_ids" in batch else len(
        next(v for v in batch.values() if isinstance(v, list) or (isinstance(v, torch.Tensor) and v.ndim)))


def _per_row(value: Any, rows: int) -> bool:
    if isinstance(value, torch.Tensor):
        return value.ndim >= 1 and value.shape[0] == rows
    return isinstance(value, list) and len(value) == rows


def _shared(value: Any) -> bool:
    if isinstance(value, torch.Tensor):
        return value.ndim == 0
    return not isinstance(value, list)


def _take(value: Any, rows: int, index: slice | torch.Tensor) -> Any:
    if not _per_row(value, rows):
        return value
    if isinstance(value, torch.Tensor):
        return value[index] if isinstance(index, slice) else value.index_select(0, index.to(value.device))
    picked = range(rows)[index] if isinstance(index, slice) else index.tolist()
    return [value[i] for i in picked]


def _warn_once(message: str) -> None:
    if message not in _warned:
        _warned.add(message)
        logger.warning(message)
