"""Per-completion traces and per-step behaviour metrics, recorded during training.

Every generation step writes ``traces/step-<NNNNNN>.jsonl`` (one JSON object per traced
completion), atomically: a killed run leaves either the whole file or none, and a write that
fails (a full disk) removes its temp file and raises :class:`ahazero.observe.rundir.RunWriteError`.
On resume, trace files after the checkpoint are removed before training continues, so each
step's traces exist exactly once. The same step's behaviour metrics (``behaviour/...``) go through
TRL's logging, so TensorBoard, wandb and ``metrics.jsonl`` all show them; they include the
self-correction aggregates of :mod:`ahazero.observe.self_check`, and each record its completion's
``self_check`` (candidates graded by the task's correctness reward, the writer's ``grader``).

Example:
    >>> import tempfile
    >>> t = TraceWriter(tempfile.mkdtemp())
    >>> t.path_for(12).name
    'step-000012.jsonl'
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ahazero.observe.behaviours import Behaviour, describe, summarize
from ahazero.observe.rundir import write_failure
from ahazero.observe.self_check import measure_self_checks, self_check_metrics

__all__ = ["CORRECTNESS_REWARDS", "FORMAT_REWARDS", "TraceWriter", "build_records", "first_reward", "trace_steps"]

#: Reward names whose value 1.0 means "correct" (the first one present is used).
CORRECTNESS_REWARDS = ("accuracy", "countdown")
#: Reward names whose value 1.0 means "well formatted".
FORMAT_REWARDS = ("think_format",)


def first_reward(funcs: Sequence[Any], names: Sequence[str] = CORRECTNESS_REWARDS) -> Any | None:
    """The first reward among ``funcs`` named in ``names`` (in ``names``' order): by default the one
    that says whether an answer is correct.

    Example:
        >>> from rewards import get_reward
        >>> first_reward([get_reward("think_format"), get_reward("accuracy")]).__name__
        'accuracy'
        >>> first_reward([get_reward("accuracy")], FORMAT_REWARDS) is None
        True
    """
    for name in names:
        for func in funcs:
            if getattr(func, "__name__", None) == name:
                return func
    return None


def trace_steps(traces_dir: str | Path) -> list[int]:
    """Steps that have a trace file, ascending.

    Example:
        >>> import tempfile
        >>> trace_steps(tempfile.mkdtemp())
        []
    """
    steps = []
    for path in Path(traces_dir).glob("step-*.jsonl"):
        suffix = path.stem.removeprefix("step-")
        if suffix.isdigit():
            steps.append(int(suffix))
    return sorted(steps)


def _flag(rewards: dict[str, float | None], names: Sequence[str]) -> bool | None:
    for name in names:
        if name in rewards:
            value = rewards[name]
            return None if value is None else value >= 1.0 - 1e-6
    return None


def _num(value: Any) -> float | None:
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def build_records(
    *,
    step: int,
    rows: Sequence[dict[str, Any]],
    completions: Sequence[str],
    rewards: dict[str, Sequence[float | None]],
    weights: Sequence[float],
    advantages: Sequence[float],
    completion_tokens: Sequence[int],
    truncated: Sequence[bool],
    behaviours: Sequence[Behaviour],
) -> list[dict[str, Any]]:
    """Assemble one trace record per completion (pure; the trainer supplies the pieces).

    Example:
        >>> b = describe("<think>ok</think><answer>4</answer>")
        >>> recs = build_records(step=1, rows=[{"id": "a", "prompt": "p", "answer": "4", "prefill": "<think>"}],
        ...     completions=["ok</think><answer>4</answer>"], rewards={"accuracy": [1.0]}, weights=[1.0],
        ...     advantages=[0.0], completion_tokens=[9], truncated=[False], behaviours=[b])
        >>> recs[0]["correct"], recs[0]["reward"], recs[0]["extracted_answer"]
        (True, 1.0, '4')
    """
    names = list(rewards)
    records = []
    for i, row in enumerate(rows):
        per = {name: _num(rewards[name][i]) for name in names}
        total = sum((w * v) for w, v in zip(weights, per.values()) if v is not None)
        b = behaviours[i]
        records.append({
            "step": step,
            "prompt_id": str(row.get("id", "")),
            "prompt": row.get("prompt", ""),
            "problem": row.get("problem", ""),
            "prefill": row.get("prefill", "") or "",
            "completion": completions[i],
            "thinking": b.thinking,
            "extracted_answer": b.answer,
            "gold": None if row.get("answer") is None else str(row.get("answer")),
            "rewards": per,
            "reward": total,
            "advantage": _num(advantages[i]),
            "thinking_tokens": b.thinking_tokens,
            "answer_tokens": b.answer_tokens,
            "completion_tokens": int(completion_tokens[i]),
            "truncated": bool(truncated[i]),
            "reflections": b.reflections,
            "reflections_drgrpo": b.reflections_drgrpo,
            "language_consistency": b.language_consistency,
            "correct": _flag(per, CORRECTNESS_REWARDS),
            "formatted": _flag(per, FORMAT_REWARDS),
        })
    return records


class TraceWriter:
    """Writes one trace file per step into ``traces_dir``; also computes the step's metrics."""

    def __init__(
        self,
        traces_dir: str | Path,
        *,
        sample_rate: float = 1.0,
        seed: int = 0,
        phrases: Sequence[str] | None = None,
        language: str = "en",
        enabled: bool = True,
        grader: Any | None = None,
    ) -> None:
        self.dir = Path(traces_dir)
        self.grader = grader  #: the correctness reward that grades the self-check's candidates
        self.sample_rate = sample_rate
        self.phrases = tuple(phrases) if phrases else None
        self.language = language
        self.enabled = enabled
        self.seed = seed

    def path_for(self, step: int) -> Path:
        """The trace file of a step."""
        return self.dir / f"step-{step:06d}.jsonl"

    def drop_after(self, step: int) -> list[int]:
        """Delete trace files of steps after ``step`` (a resumed run regenerates them).

        Example:
            >>> import tempfile
            >>> t = TraceWriter(tempfile.mkdtemp())
            >>> t.write(3, [{"step": 3}]); t.write(5, [{"step": 5}])
            >>> t.drop_after(4), trace_steps(t.dir)
            ([5], [3])
        """
        dropped = [s for s in trace_steps(self.dir) if s > step]
        for s in dropped:
            self.path_for(s).unlink(missing_ok=True)
        for tmp in self.dir.glob(".step-*.tmp"):
            tmp.unlink(missing_ok=True)
        return dropped

    def write(self, step: int, records: Sequence[dict[str, Any]]) -> None:
        """Write a step's records atomically (temp file, fsync, rename).

        On failure (a full disk) the temp file is removed, the step's file is left as it was,
        and :class:`~ahazero.observe.rundir.RunWriteError` says what failed.
        """
        final = self.path_for(step)
        tmp = self.dir / f".step-{step:06d}.tmp"
        data = memoryview("".join(json.dumps(rec, ensure_ascii=False) + "\n" for rec in records).encode("utf-8"))
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            try:
                while data:
                    data = data[os.write(fd, data):]
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, final)
        except OSError as err:
            with contextlib.suppress(OSError):
                tmp.unlink(missing_ok=True)
            raise write_failure(final, err) from err

    def observe(
        self,
        *,
        step: int,
        rows: Sequence[dict[str, Any]],
        completions: Sequence[str],
        rewards: dict[str, Sequence[float | None]],
        weights: Sequence[float],
        advantages: Sequence[float],
        completion_tokens: Sequence[int],
        truncated: Sequence[bool],
        tokenizer: Any | None = None,
    ) -> dict[str, float | None]:
        """Measure a generation step, write its traces, return its behaviour metrics."""
        full = [(row.get("prefill") or "") + text for row, text in zip(rows, completions)]
        behaviours = [describe(t, tokenizer=tokenizer, phrases=self.phrases, language=self.language) for t in full]
        records = build_records(
            step=step, rows=rows, completions=completions, rewards=rewards, weights=weights,
            advantages=advantages, completion_tokens=completion_tokens, truncated=truncated,
            behaviours=behaviours,
        )
        graded = bool(records) and records[0]["correct"] is not None
        checks = measure_self_checks(full, rows, grader=self.grader,
                                     correct=[r["correct"] for r in records] if graded else None)
        for record, check in zip(records, checks, strict=True):
            record["self_check"] = check.to_dict()
        metrics = summarize(
            behaviours,
            correct=[bool(r["correct"]) for r in records] if graded else None,
            formatted=[bool(r["formatted"]) for r in records]
            if records and records[0]["formatted"] is not None else None,
            truncated=truncated,
            completion_tokens=completion_tokens,
        )
        metrics.update(self_check_metrics(checks))
        if self.enabled:
            if self.sample_rate < 1.0:  # seeded per step, so a resumed run samples the same completions
                rng = random.Random(f"{self.seed}:{step}")
                records = [r for r in records if rng.random() < self.sample_rate]
            self.write(step, records)
        return metrics
