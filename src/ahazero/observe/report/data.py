"""What the report reads from a run directory, and the numbers it computes from it (no plotting, no HTML).

Example:
    >>> import tempfile
    >>> rd = load_run(tempfile.mkdtemp(), name="empty")
    >>> rd.rows, rd.evals, rd.aha.aha_step
    ([], {}, None)
"""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ahazero.observe.aha import AhaResult, aha_from_run
from ahazero.observe.records import Problem
from ahazero.observe.rundir import RunDir, read_metrics
from ahazero.observe.trace_store import is_reflective, set_aside_traces, step_metrics

__all__ = ["RunData", "eval_order", "load_run", "mean", "phrase_counts", "pick_examples", "slug", "train_mean"]


@dataclass
class RunData:
    """What the report reads from one run directory."""

    name: str
    root: Path
    rows: list[dict[str, Any]]  #: one per training step (metrics.jsonl, else rebuilt from traces)
    metrics_source: str
    evals: dict[str, dict[str, Any]]  #: eval tag -> eval/<tag>.json
    aha: AhaResult
    config: dict[str, Any] = field(default_factory=dict)
    finished: bool = False
    runtime_s: float | None = None
    #: lines of metrics.jsonl and traces/ that were skipped as damaged (file, line, reason)
    skipped: list[Problem] = field(default_factory=list)
    #: trace files a resume set aside as damaged (traces/damaged/)
    set_aside: list[Path] = field(default_factory=list)

    def series(self, key: str) -> tuple[list[int], list[float]]:
        """Steps and finite values of one metric.

        Example:
            >>> from ahazero.observe.aha import detect_aha
            >>> rd = RunData("r", Path("."), [{"step": 1, "x": 0.5}, {"step": 2, "x": None}], "m", {}, detect_aha([]))
            >>> rd.series("x")
            ([1], [0.5])
        """
        xs, ys = [], []
        for row in self.rows:
            v = row.get(key)
            if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v):
                xs.append(int(row["step"]))
                ys.append(float(v))
        return xs, ys

    @property
    def updates_skipped(self) -> int | None:
        """Optimizer updates dropped for a non-finite gradient, or None when unknown.

        Read from the ``updates_skipped`` metric; for runs logged before it existed, a step
        whose loss was logged without a ``grad_norm`` (NaN is written as null) counts.

        Example:
            >>> from ahazero.observe.aha import detect_aha
            >>> rows = [{"step": 1, "loss": 0.1, "grad_norm": 2.0}, {"step": 2, "loss": 0.2, "grad_norm": None}]
            >>> RunData("r", Path("."), rows, "metrics.jsonl", {}, detect_aha([])).updates_skipped
            1
        """
        if self.metrics_source != "metrics.jsonl":
            return None
        if any("updates_skipped" in row for row in self.rows):
            return int(sum(v for row in self.rows if _is_number(v := row.get("updates_skipped"))))
        return sum(1 for row in self.rows if "loss" in row and row.get("grad_norm") is None)

    @property
    def base(self) -> dict[str, Any] | None:
        """``eval/base.json`` (the untrained model), when present."""
        return self.evals.get("base")


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def eval_order(tag: str) -> tuple[int, int, str]:
    if tag == "base":
        return (0, 0, tag)
    m = re.fullmatch(r"step-(\d+)", tag)
    if m:
        return (1, int(m.group(1)), tag)
    return (3, 0, tag) if tag == "final" else (2, 0, tag)


def load_run(run_dir: str | Path, *, name: str | None = None) -> RunData:
    """Read a run directory for the report (works on a run still in progress).

    Example:
        >>> import tempfile
        >>> rd = load_run(tempfile.mkdtemp(), name="empty")
        >>> rd.rows, rd.evals, rd.aha.aha_step
        ([], {}, None)
    """
    root = Path(run_dir)
    rd = RunDir(root)
    problems: list[Problem] = []
    raw = read_metrics(rd.metrics, problems)
    rows = [r for r in raw if any(k == "reward" or k.startswith("behaviour/") for k in r)]
    source = "metrics.jsonl"
    if not rows:
        rows, source = step_metrics(root, problems=problems), "traces"
    last: dict[int, dict[str, Any]] = {}
    for r in rows:  # a resumed run may log a step twice: keep the last
        last[int(r["step"])] = r
    rows = [last[s] for s in sorted(last)]
    evals = {}
    eval_dir = root / "eval"
    if eval_dir.is_dir():
        for path in eval_dir.glob("*.json"):
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
            except (json.JSONDecodeError, OSError):
                continue
            if isinstance(data, dict):
                evals[str(data.get("tag") or path.stem)] = data
    evals = dict(sorted(evals.items(), key=lambda kv: eval_order(kv[0])))
    config: dict[str, Any] = {}
    if rd.config.is_file():
        try:
            config = yaml.safe_load(rd.config.read_text(encoding="utf-8")) or {}
        except (yaml.YAMLError, OSError):
            config = {}
    runtime = next((r["train_runtime"] for r in reversed(raw) if _is_number(r.get("train_runtime"))), None)
    aha = aha_from_run(root, problems=problems)
    return RunData(name=name or root.name, root=root, rows=rows, metrics_source=source, evals=evals,
                   aha=aha, config=config if isinstance(config, dict) else {},
                   finished=runtime is not None, runtime_s=runtime,
                   skipped=sorted(set(problems), key=lambda p: (p.path, p.line)), set_aside=set_aside_traces(root))


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "plot"


def mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def train_mean(rd: RunData, key: str, *, first: bool, k: int) -> float | None:
    ys = rd.series(key)[1]
    return mean(ys[:k] if first else ys[-k:])


def pick_examples(records: Sequence[dict[str, Any]], k: int) -> list[dict[str, Any]]:
    """Up to ``k`` records, reflective ones first (one per prompt), spread over the given steps."""
    reflective = [r for r in records if is_reflective(r)]
    others = [r for r in records if not is_reflective(r)]
    picked: list[dict[str, Any]] = []
    seen: set[Any] = set()
    for pool in (reflective, others):
        by_step: dict[int, list[dict[str, Any]]] = {}
        for r in pool:
            by_step.setdefault(int(r.get("step", 0)), []).append(r)
        queues = list(by_step.values())
        while len(picked) < k and any(queues):
            for q in queues:
                while q and q[0].get("prompt_id") in seen:
                    q.pop(0)
                if q and len(picked) < k:
                    r = q.pop(0)
                    seen.add(r.get("prompt_id"))
                    picked.append(r)
    return picked


def phrase_counts(records: Sequence[dict[str, Any]]) -> str:
    counts = Counter(p for r in records for p in (r.get("reflections") or []))
    return ", ".join(f"{p} ×{c}" for p, c in counts.most_common(6)) or "none"
