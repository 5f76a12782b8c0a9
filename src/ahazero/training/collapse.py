"""The collapse alarm during training: one WARNING line when it fires; ``on_collapse: stop`` ends the run.

The detector is :mod:`ahazero.observe.collapse` (format rising while accuracy falls, or thinking
shrinking to the answer's length); this callback feeds it each logged step's metrics. With
``on_collapse: warn`` (the default) each kind of alarm is logged once, when it first holds.
With ``stop`` the run also ends at that step: a checkpoint is saved, the final model is written
as usual, and ``train`` logs why it stopped. ``off`` disables the callback.

Example:
    >>> cb = CollapseAlarmCallback(mode="warn")
    >>> cb.mode, cb.alarms
    ('warn', [])
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from ahazero.config.schema import CollapseSettings
from ahazero.observe.collapse import CollapseAlarm, check_collapse, first_alarms
from ahazero.observe.rundir import read_metrics

__all__ = ["CollapseAlarmCallback"]

logger = logging.getLogger("ahazero.training.assemble")


def _agree(value: Any) -> Any:
    """The main process's ``value`` on every process (the metrics that decide exist only there)."""
    from accelerate import PartialState

    if PartialState().num_processes <= 1:
        return value
    from accelerate.utils import broadcast_object_list

    box = [value]
    broadcast_object_list(box, from_process=0)
    return box[0]


class CollapseAlarmCallback(TrainerCallback):
    """Run the collapse detector on every logged step; warn once per kind, or stop the run (``mode``).

    ``metrics_path`` (the run's ``metrics.jsonl``) lets a resumed run judge against the steps
    it logged before the resume, so the early level stays the run's first steps. An alarm that
    already held before the resume is logged once more at the start and not acted on again
    (a run stopped by ``stop`` and resumed with a changed recipe goes on).

    Example:
        >>> from types import SimpleNamespace
        >>> cb = CollapseAlarmCallback(mode="stop")
        >>> state, control = SimpleNamespace(is_world_process_zero=True, global_step=1), SimpleNamespace()
        >>> cb.on_log(None, state, control, logs={"reward": 0.1, "behaviour/accuracy": 0.1})
        >>> cb.stopped_by is None
        True
    """

    def __init__(self, settings: CollapseSettings | None = None, mode: str = "warn",
                 metrics_path: str | Path | None = None) -> None:
        if mode not in ("warn", "stop"):
            raise ValueError(f"on_collapse must be 'warn', 'stop' or 'off', got {mode!r}")
        self.settings = settings or CollapseSettings()
        self.mode = mode
        self.metrics_path = Path(metrics_path) if metrics_path is not None else None
        self.rows: list[dict[str, Any]] = []
        self.alarms: list[CollapseAlarm] = []  #: each kind's first alarm since training (re)started
        self.stopped_by: CollapseAlarm | None = None

    def on_train_begin(self, args, state, control, **kwargs):  # noqa: D102
        self.rows = []
        if state.is_world_process_zero and self.metrics_path is not None and state.global_step > 0:
            self.rows = [r for r in read_metrics(self.metrics_path)
                         if "reward" in r and int(r.get("step", 0)) <= state.global_step]
            for alarm in first_alarms(self.rows, self.settings):
                if alarm.kind not in {a.kind for a in self.alarms}:
                    self.alarms.append(alarm)
                    logger.warning("before this resume: %s; not acted on again", alarm.message)

    def on_log(self, args, state, control, logs=None, **kwargs):  # noqa: D102
        new: CollapseAlarm | None = None
        if state.is_world_process_zero and logs and "reward" in logs:
            self.rows.append({"step": state.global_step, **logs})
            seen = {a.kind for a in self.alarms}
            for alarm in check_collapse(self.rows, self.settings):
                if alarm.kind not in seen:
                    self.alarms.append(alarm)
                    new = new or alarm
                    logger.warning("%s (on_collapse: %s)", alarm.message, self.mode)
        if self.mode != "stop":
            return
        new = _agree(new)
        if new is not None and self.stopped_by is None:
            self.stopped_by = new
            control.should_training_stop = True
            control.should_save = True  # the checkpoint of this step is written right after the logs
