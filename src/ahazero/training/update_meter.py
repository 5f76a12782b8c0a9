"""What the policy update of each optimizer step cost: its time (forward apart) and the tokens it computed.

The trainer calls :meth:`UpdateMeter.begin` once a micro-batch's inputs are ready (after any
generation), :meth:`~UpdateMeter.forward_done` when the loss is computed and
:meth:`~UpdateMeter.end` after the backward pass, with the GPU synchronised at each, and
:meth:`~UpdateMeter.count` with the micro-batch's token counts. :meth:`~UpdateMeter.finish_step`
turns one optimizer step's sums into the ``timing/update_*`` metrics:

- ``update_seconds``: forward + backward of every micro-batch (the optimizer step not included),
- ``update_forward_seconds``: of it, the log-prob forward and the loss,
- ``update_tokens``: the tokens the update computed (packed: each token once; padded: every
  position of every row, padding included), ``update_real_tokens`` those that are not
  padding, ``update_loss_tokens`` the completion tokens scored, and ``update_padding_share``,
- ``update_tokens_per_second``: computed tokens per second of the update.

Example:
    >>> meter = UpdateMeter(cuda=False)
    >>> meter.begin(); meter.count(computed=100, real=80, loss=40); meter.forward_done(); meter.end()
    >>> stats = meter.finish_step()
    >>> stats["update_tokens"], stats["update_padding_share"]
    (100.0, 0.2)
"""

from __future__ import annotations

import time
from collections import defaultdict
from typing import Any

import torch

__all__ = ["UpdateMeter", "padded_counts"]


def padded_counts(inputs: dict[str, Any]) -> dict[str, float]:
    """Token counts of a padded loss micro-batch: positions computed, real (unmasked) tokens, loss tokens.

    Example:
        >>> padded_counts({"prompt_mask": torch.tensor([[0, 1], [1, 1]]),
        ...                "completion_mask": torch.tensor([[1, 0, 0], [1, 1, 1]])})
        {'computed': 10.0, 'real': 7.0, 'loss': 4.0}
    """
    prompt, completion = inputs["prompt_mask"], inputs["completion_mask"]
    rows = prompt.shape[0]
    loss = float(completion.sum())
    return {"computed": float(rows * (prompt.shape[1] + completion.shape[1])),
            "real": float(prompt.sum()) + loss, "loss": loss}


class UpdateMeter:
    """Per-optimizer-step sums of the update's time and token counts (see the module docstring)."""

    def __init__(self, *, cuda: bool, device: Any = None) -> None:
        self.cuda, self.device = cuda, device
        self._sums: defaultdict[str, float] = defaultdict(float)
        self._start: float | None = None
        self._forward_start: float | None = None

    def _now(self) -> float:
        if self.cuda:
            torch.cuda.synchronize(self.device)
        return time.perf_counter()

    def begin(self) -> None:
        """A micro-batch's update starts (its inputs are ready)."""
        self._start = self._forward_start = self._now()

    def forward_done(self) -> None:
        """The micro-batch's loss is computed."""
        if self._forward_start is not None:
            self._sums["update_forward_seconds"] += self._now() - self._forward_start
            self._forward_start = None

    def end(self) -> None:
        """The micro-batch's backward pass is done."""
        if self._start is not None:
            self._sums["update_seconds"] += self._now() - self._start
            self._sums["update_micro_batches"] += 1
            self._start = None

    def count(self, *, computed: float, real: float, loss: float) -> None:
        """Add a micro-batch's tokens: computed (padding included), real, and scored by the loss."""
        self._sums["update_tokens"] += computed
        self._sums["update_real_tokens"] += real
        self._sums["update_loss_tokens"] += loss

    def finish_step(self) -> dict[str, float]:
        """This step's sums with the padding share and tokens per second added; the sums start again."""
        stats, self._sums = dict(self._sums), defaultdict(float)
        tokens = stats.get("update_tokens", 0.0)
        if tokens:
            stats["update_padding_share"] = round(1.0 - stats.get("update_real_tokens", 0.0) / tokens, 4)
        if stats.get("update_seconds"):
            stats["update_tokens_per_second"] = tokens / stats["update_seconds"]
        return stats
