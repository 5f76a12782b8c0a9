"""Trainer callbacks that write the run directory: ``metrics.jsonl`` and a one-line step summary.

Example:
    >>> import tempfile, pathlib
    >>> cb = MetricsJsonlCallback(pathlib.Path(tempfile.mkdtemp()) / "metrics.jsonl")
    >>> cb.path.name
    'metrics.jsonl'
"""

from __future__ import annotations

import json
import logging
import math
import time
from pathlib import Path
from typing import Any

from transformers import TrainerCallback
from transformers.trainer_callback import ProgressCallback

from ahazero.observe.rundir import write_failure

__all__ = ["MetricsJsonlCallback", "NonFiniteGradientGuard", "QuietProgressCallback", "StepSummaryCallback",
           "TimeLimitCallback"]

logger = logging.getLogger("ahazero.training.assemble")


def _clean(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


class MetricsJsonlCallback(TrainerCallback):
    """Append every log event to ``metrics.jsonl`` as ``{"step": N, ...}``, flushed at once.

    Lines of steps after a resumed checkpoint are dropped before training starts
    (:func:`ahazero.observe.run_repair.repair_metrics`), so each step appears exactly once. A
    failed append (a full disk) ends training with :class:`~ahazero.observe.rundir.RunWriteError`.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def on_log(self, args, state, control, logs=None, **kwargs):  # noqa: D102
        if not state.is_world_process_zero or not logs:
            return
        row = {"step": state.global_step, **{k: _clean(v) for k, v in logs.items()}}
        try:
            with self.path.open("a", encoding="utf-8") as fh:
                fh.write(json.dumps(row) + "\n")
                fh.flush()
        except OSError as err:
            raise write_failure(self.path, err) from err


class QuietProgressCallback(ProgressCallback):
    """The usual progress bar, without dumping every log dict (metrics.jsonl has them)."""

    def on_log(self, args, state, control, logs=None, **kwargs):  # noqa: D102
        return


_SHORT = {"accuracy": "acc", "think_format": "fmt", "language_consistency": "lang"}


class StepSummaryCallback(TrainerCallback):
    """Log one short line per logged step: reward, its components, thinking length, speed."""

    def on_log(self, args, state, control, logs=None, **kwargs):  # noqa: D102
        if not state.is_world_process_zero or not logs or "reward" not in logs:
            return
        parts = [f"step {state.global_step}/{state.max_steps}", f"reward {logs['reward']:.2f}"]
        for key, value in logs.items():
            if key.startswith("rewards/") and key.endswith("/mean") and value is not None:
                name = key.split("/")[1]
                parts.append(f"{_SHORT.get(name, name)} {value:.2f}")
        if logs.get("behaviour/think_tokens_mean") is not None:
            parts.append(f"think {logs['behaviour/think_tokens_mean']:.0f} tok")
        if logs.get("behaviour/reflection_rate") is not None:
            parts.append(f"reflect {logs['behaviour/reflection_rate']:.2f}")
        if logs.get("updates_skipped"):
            parts.append("update skipped (non-finite gradient)")
        if logs.get("step_time") is not None:
            parts.append(f"{logs['step_time']:.1f} s")
        logger.info(" | ".join(parts))


class NonFiniteGradientGuard(TrainerCallback):
    """Never apply a NaN/inf gradient: skip that optimizer step, or stop the run (``on_nonfinite``).

    Runs after clipping, before the optimizer step. A skipped step still logs its metrics
    and traces (``traces/step-N.jsonl`` holds the samples involved); ``skipped_steps``
    lists the steps whose update was dropped, and each logged line gets ``updates_skipped``,
    the number of updates dropped since the previous line (put this callback before the
    ones that write the logs).

    Example:
        >>> guard = NonFiniteGradientGuard("skip")
        >>> logs = {"reward": 0.5}
        >>> guard.on_log(None, None, None, logs=logs)
        >>> logs["updates_skipped"]
        0
    """

    def __init__(self, mode: str = "skip") -> None:
        if mode not in ("skip", "stop"):
            raise ValueError(f"on_nonfinite must be 'skip' or 'stop', got {mode!r}")
        self.mode = mode
        self.skipped_steps: list[int] = []
        self.stopped = False
        self._unlogged = 0

    def on_pre_optimizer_step(self, args, state, control, model=None, **kwargs):  # noqa: D102
        import torch

        if model is None:
            return
        grads = [p.grad for p in model.parameters() if p.grad is not None]
        if all(bool(torch.isfinite(g).all()) for g in grads):
            return
        step = state.global_step + 1
        for p in model.parameters():
            p.grad = None  # the optimizer skips parameters without gradients
        self.skipped_steps.append(step)
        self._unlogged += 1
        if self.mode == "stop":
            self.stopped = True
            control.should_training_stop = True
            logger.error("step %d: non-finite gradient; update not applied, stopping (on_nonfinite: stop). "
                         "Samples: traces/step-%06d.jsonl", step, step)
        else:
            logger.warning("step %d: non-finite gradient; update skipped (on_nonfinite: skip). "
                           "Samples: traces/step-%06d.jsonl", step, step)

    def on_log(self, args, state, control, logs=None, **kwargs):  # noqa: D102
        if logs is None:
            return
        logs["updates_skipped"] = self._unlogged
        self._unlogged = 0


class TimeLimitCallback(TrainerCallback):
    """End training before a step would end past ``seconds`` of training in this session (``max_train_seconds``).

    At each step's end the next step is assumed to take as long as this one; when it would end
    at or past the budget, training stops there. So ``train_runtime`` stays within the budget
    unless a step runs much longer than the one before it (the first step, with its warm-up,
    over-estimates). The run then ends as if ``max_steps`` were reached: ``train_runtime`` is
    logged and the final model written; no extra checkpoint is saved. Every process stops at
    the same step (the main process's clock decides). ``stopped_at`` is that step (None: not
    stopped).

    Example:
        >>> from types import SimpleNamespace
        >>> cb = TimeLimitCallback(0.0)
        >>> state, control = SimpleNamespace(global_step=3), SimpleNamespace(should_training_stop=False)
        >>> cb.on_train_begin(None, state, control)
        >>> cb.on_step_end(None, state, control)
        >>> control.should_training_stop, cb.stopped_at
        (True, 3)
    """

    def __init__(self, seconds: float) -> None:
        self.seconds = float(seconds)
        self.start: float | None = None
        self.last: float | None = None
        self.stopped_at: int | None = None
        self.elapsed: float | None = None

    def on_train_begin(self, args, state, control, **kwargs):  # noqa: D102
        self.start = self.last = time.monotonic()

    def on_step_end(self, args, state, control, **kwargs):  # noqa: D102
        from ahazero.training.collapse import _agree

        if self.start is None or self.last is None or self.stopped_at is not None:
            return
        now = time.monotonic()
        elapsed, step = now - self.start, now - self.last
        self.last = now
        stop = _agree(elapsed + step >= self.seconds)
        if stop and not getattr(control, "should_training_stop", False):
            self.stopped_at, self.elapsed = state.global_step, elapsed
            control.should_training_stop = True
