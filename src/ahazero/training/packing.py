"""Packed micro-batches for the policy update: every real token computed once, no padding.

TRL scores a micro-batch as a ``[rows, prompt width + completion width]`` block: every row is
left-padded to the longest prompt and right-padded to the longest completion, and every row
carries its own copy of its prompt. In a GRPO step each prompt appears ``num_generations``
times, and with the default recipe's 111-token prompts and ~80-token completions the prompt
copies alone are more than half the tokens the update computes.

:func:`pack_rows` lays a micro-batch's tokens end to end in one row (``update.packing``).
With ``share_prompts`` the rows of one prompt share one copy of it: the prompt without its
last token (the *prefix*) appears once, and each completion follows a copy of the prompt's
last token (whose next-token prediction is the completion's first log-prob). Every token
keeps the position it has in the padded batch, so rotary embeddings see the same positions.

Which token attends to which is held apart from the token order, in attention *blocks*
(:class:`AttentionBlock`): each block row lists its queries and the keys they may see, and
:mod:`ahazero.training.packed_attention` computes attention per block row (prefix rows:
causal over the prefix; completion rows: the prefix, then causal over the row's own tokens).
The linear layers, norms and the LM head run on the packed tokens only.

The result is exact: each completion token attends to exactly the tokens it attends to in
the padded batch, at the same positions, so the per-token log-probs and the loss's gradient
match TRL's padded path up to floating-point rounding (``tests/training/test_packing.py``).

Example:
    >>> ids = torch.tensor([[0, 5, 6, 7, 8, 0], [0, 5, 6, 9, 0, 0]])   # one prompt [5, 6] twice
    >>> mask = torch.tensor([[0, 1, 1, 1, 1, 0], [0, 1, 1, 1, 0, 0]])
    >>> layout = pack_rows(ids, mask, completion_width=3, share_prompts=True)
    >>> layout.input_ids.tolist(), layout.position_ids.tolist()
    ([[5, 6, 7, 8, 6, 9]], [[1, 2, 3, 4, 2, 3]])
    >>> layout.shift_labels.tolist()
    [[-100, 7, 8, -100, 9, -100]]
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

__all__ = ["AttentionBlock", "PackedLayout", "pack_rows", "prompt_keys", "stable_width", "unpack"]

#: A label the fused LM head skips (TRL's ignore index).
IGNORE = -100


def stable_width(width: int) -> int:
    """``width``, or one more when it is an odd multiple of 64 (widths that gave NaN gradients with SDPA).

    See :func:`ahazero.training.trainer.avoid_unstable_length`.

    Example:
        >>> stable_width(192), stable_width(191), stable_width(256)
        (193, 191, 256)
    """
    return width + 1 if width % 128 == 64 else width


@dataclass
class AttentionBlock:
    """Rows of queries and the keys each may see, as indices into the packed tokens.

    ``query_index`` is ``(R, Lq)`` and ``key_index`` ``(R, Lk)`` (padding points at token 0);
    ``allowed`` is ``(R, Lq, Lk)``: whether a query sees a key (a padding query sees key 0
    only, so no softmax row is empty).
    """

    query_index: torch.Tensor
    key_index: torch.Tensor
    allowed: torch.Tensor


@dataclass
class PackedLayout:
    """One micro-batch packed into a single row, with what is needed to compute and unpack it."""

    input_ids: torch.Tensor  # (1, T)
    position_ids: torch.Tensor  # (1, T): each token's column in the padded batch
    shift_labels: torch.Tensor  # (1, T): the next token where it is a completion token, else -100
    blocks: list[AttentionBlock]
    output_index: torch.Tensor  # (T,): where each token's attention output lies in the blocks' outputs
    unpack_index: torch.Tensor  # (rows * completion_width,): packed position of each completion token's log-prob
    rows: int
    completion_width: int
    counts: dict[str, int] = field(default_factory=dict)


def pack_rows(input_ids: torch.Tensor, attention_mask: torch.Tensor, completion_width: int, *,
              share_prompts: bool = False) -> PackedLayout | None:
    """Pack a left-padded prompt + right-padded completion batch; None when there is nothing to score.

    ``input_ids`` and ``attention_mask`` are TRL's ``(rows, prompt width + completion_width)``
    loss batch. Rows without a completion token in the mask (dropped groups, masked
    truncations) are left out: they add nothing to the loss. A batch whose real tokens are
    not one left-padded prompt followed by one right-padded completion per row raises
    :class:`ValueError`.

    Example:
        >>> pack_rows(torch.ones(2, 4, dtype=torch.long), torch.tensor([[1, 1, 0, 0]] * 2), 2) is None
        True
    """
    rows, width = input_ids.shape
    prompt_width = width - completion_width
    if prompt_width < 1:
        raise ValueError(f"no prompt columns: width {width}, completion width {completion_width}")
    real = attention_mask.ne(0)
    prompt_len = real[:, :prompt_width].sum(1)
    completion_len = real[:, prompt_width:].sum(1)
    columns = torch.arange(width, device=real.device)
    expected = (columns >= prompt_width - prompt_len[:, None]) & (columns < prompt_width + completion_len[:, None])
    if not torch.equal(expected, real):
        raise ValueError("packing needs each row to be one left-padded prompt followed by one right-padded completion")
    if bool((prompt_len == 0).any()):
        raise ValueError("packing needs at least one prompt token in every row")
    lengths = completion_len.tolist()
    starts = (prompt_width - prompt_len).tolist()
    kept = [r for r in range(rows) if lengths[r] > 0]
    if not kept:
        return None
    groups = _prompt_groups(input_ids[:, :prompt_width], real[:, :prompt_width], kept, share_prompts)
    return _build(input_ids, groups, starts, lengths, prompt_width, completion_width, rows)


def unpack(values: torch.Tensor, layout: PackedLayout) -> torch.Tensor:
    """Per-token values of the packed row ``(1, T)`` as the padded batch's ``(rows, completion_width)``.

    Positions without a label come from the packed row's last token, which never has one
    (the fused LM head leaves 0 there), so they are 0 as in TRL's padded path.

    Example:
        >>> ids = torch.tensor([[5, 6, 7, 8]]); mask = torch.ones(1, 4, dtype=torch.long)
        >>> layout = pack_rows(ids, mask, completion_width=2)
        >>> unpack(torch.tensor([[0.0, -1.0, -2.0, 0.0]]), layout).tolist()
        [[-1.0, -2.0]]
    """
    return values[0].index_select(0, layout.unpack_index).view(layout.rows, layout.completion_width)


def prompt_keys(prompt_ids: torch.Tensor, prompt_mask: torch.Tensor) -> torch.Tensor:
    """One id per row, equal for rows with the same prompt (the same tokens, left-padded alike).

    Example:
        >>> prompt_keys(torch.tensor([[0, 7], [0, 7], [5, 7]]), torch.tensor([[0, 1], [0, 1], [1, 1]])).tolist()
        [0, 0, 1]
    """
    marked = prompt_ids.masked_fill(prompt_mask == 0, -1)
    return torch.unique(marked, dim=0, return_inverse=True)[1]


def _prompt_groups(prompt_ids: torch.Tensor, prompt_real: torch.Tensor, kept: list[int],
                   share: bool) -> list[list[int]]:
    """The kept rows in groups that share one prompt copy (each row alone unless ``share``), in first-seen order."""
    if not share:
        return [[r] for r in kept]
    inverse = prompt_keys(prompt_ids, prompt_real.long())[kept]
    groups: dict[int, list[int]] = {}
    for row, key in zip(kept, inverse.tolist(), strict=True):
        groups.setdefault(key, []).append(row)
    return list(groups.values())


def _build(input_ids: torch.Tensor, groups: list[list[int]], starts: list[int], lengths: list[int],
           prompt_width: int, completion_width: int, rows: int) -> PackedLayout:
    """The packed token order, labels, attention blocks and unpacking index for ``groups``.

    The packed row is a list of segments: per group its prefix (the prompt without its last
    token), then per row the prompt's last token and the row's completion. Everything per
    token is computed from the segments with tensor operations on the batch's device.
    """
    device = input_ids.device
    seg_row, seg_col, seg_len, seg_prefix = [], [], [], []  # per segment; seg_prefix: its group's prefix segment
    for group in groups:
        first = group[0]
        prefix = len(seg_row)
        seg_row.append(first)
        seg_col.append(starts[first])
        seg_len.append(prompt_width - 1 - starts[first])
        seg_prefix.append(-1)
        for row in group:
            seg_row.append(row)
            seg_col.append(prompt_width - 1)
            seg_len.append(1 + lengths[row])
            seg_prefix.append(prefix)
    seg = {name: torch.tensor(values, device=device)
           for name, values in (("row", seg_row), ("col", seg_col), ("len", seg_len), ("prefix", seg_prefix))}
    seg["offset"] = torch.cumsum(seg["len"], 0) - seg["len"]
    total = int(sum(seg_len))
    seg_of = torch.repeat_interleave(torch.arange(len(seg_row), device=device), seg["len"])  # (T,)
    within = torch.arange(total, device=device) - seg["offset"][seg_of]
    columns = seg["col"][seg_of] + within
    packed_ids = input_ids[seg["row"][seg_of], columns]
    # a completion segment's token k < its completion length predicts the next token of the same segment
    predicts = (seg["prefix"][seg_of] >= 0) & (within < seg["len"][seg_of] - 1)
    labels = torch.full((total,), IGNORE, dtype=input_ids.dtype, device=device)
    where = predicts.nonzero().squeeze(1)
    labels[where] = packed_ids[where + 1]
    unpack_index = torch.full((rows * completion_width,), total - 1, dtype=torch.long, device=device)
    unpack_index[seg["row"][seg_of[where]] * completion_width + within[where]] = where
    blocks, output_index = _blocks(seg, seg_of, within, columns, total)
    counts = {
        "rows": rows,
        "scored_rows": sum(len(g) for g in groups),
        "prompt_groups": len(groups),
        "packed_tokens": total,
        "loss_tokens": int(where.numel()),
        "attention_queries": sum(b.query_index.numel() for b in blocks),
        "attention_pairs": sum(b.query_index.numel() * b.key_index.shape[1] for b in blocks),
    }
    return PackedLayout(input_ids=packed_ids[None], position_ids=columns[None], shift_labels=labels[None],
                        blocks=blocks, output_index=output_index, unpack_index=unpack_index, rows=rows,
                        completion_width=completion_width, counts=counts)


def _blocks(seg: dict[str, torch.Tensor], seg_of: torch.Tensor, within: torch.Tensor, positions: torch.Tensor,
            total: int) -> tuple[list[AttentionBlock], torch.Tensor]:
    """Attention blocks (prefix rows: causal over the prefix; completion rows: the prefix, then causal) and
    each packed token's place in their outputs."""
    device = positions.device
    big = torch.iinfo(torch.long).max
    is_prefix = seg["prefix"] < 0
    blocks: list[AttentionBlock] = []
    block_of = torch.zeros_like(seg["len"])  # per segment: its row in its block
    place = torch.zeros_like(seg["len"])  # per segment: where its block's outputs start, and its row's stride
    stride = torch.zeros_like(seg["len"])
    offset = 0
    for kind in (is_prefix & (seg["len"] > 0), ~is_prefix):
        members = kind.nonzero().squeeze(1)
        if members.numel() == 0:
            continue
        lengths = seg["len"][members]
        lq = stable_width(int(lengths.max()))
        steps = torch.arange(lq, device=device)
        q_valid = steps[None] < lengths[:, None]
        q_idx = torch.where(q_valid, seg["offset"][members][:, None] + steps[None], 0)
        if bool(is_prefix[members[0]]):
            k_idx, k_valid = q_idx, q_valid
        else:  # the group's prefix, then the row's own tokens
            prefix = seg["prefix"][members]
            plen = seg["len"][prefix]
            lk = stable_width(int((plen + lengths).max()))
            steps_k = torch.arange(lk, device=device)[None]
            in_prefix = steps_k < plen[:, None]
            k_valid = steps_k < (plen + lengths)[:, None]
            k_idx = torch.where(in_prefix, seg["offset"][prefix][:, None] + steps_k,
                                seg["offset"][members][:, None] + steps_k - plen[:, None])
            k_idx = torch.where(k_valid, k_idx, 0)
        q_pos = torch.where(q_valid, positions[q_idx], -1)
        k_pos = torch.where(k_valid, positions[k_idx], big)
        allowed = k_pos[:, None, :] <= q_pos[:, :, None]  # (R, Lq, Lk): causal by position, own keys only
        allowed[:, :, 0] |= q_pos < 0  # a padding query sees key 0 (never an empty softmax row)
        blocks.append(AttentionBlock(q_idx, k_idx, allowed))
        block_of[members] = torch.arange(members.numel(), device=device)
        place[members] = offset
        stride[members] = lq
        offset += members.numel() * lq
    output_index = place[seg_of] + block_of[seg_of] * stride[seg_of] + within
    return blocks, output_index
