"""The collapse alarm: format rising while accuracy falls, or thinking shrinking to the answer's length.

A pure detector on per-step metric rows (``metrics.jsonl``, or rows rebuilt from traces); the
training callback (:mod:`ahazero.training.collapse`), ``ahazero traces`` and ``ahazero report``
all call it. It compares the **early level** (the mean over the first ``baseline_steps`` logged
steps) with the **window** (the mean over the last ``window`` steps; the two never overlap, so
nothing is judged before ``baseline_steps + window`` steps: 10 + 20 by default). With the defaults of
:class:`~ahazero.config.schema.CollapseSettings` (the config's ``collapse`` section):

- **format collapse**: the format rate (``behaviour/format_rate``) rose by at least
  ``format_rise`` (0.2) *and* accuracy (``behaviour/accuracy``) fell below ``1 - accuracy_drop``
  (75%) of its early level, by at least ``min_z`` (3) standard errors of the difference of the
  two means (from the step-to-step spread in each). The model is being paid for the format
  while it gets worse at the task: the GSM8K failure where a model learned to restate the
  problem and guess.
- **thinking collapse**: closed think blocks (``behaviour/think_tokens_closed_mean``) got
  shorter than ``think_drop`` (50%) of their early length *and* are at most
  ``think_answer_ratio`` (4) times as long as what follows ``</think>``
  (``behaviour/answer_tokens_closed_mean``; this second test is skipped for runs logged before
  that metric existed). Shorter thinking that is still several times the answer (terse but
  real steps on easy problems) does not count.

The defaults were chosen on simulated runs (128 completions a step, format rising): with
accuracy flat at 3%, 1 of 20 runs of 200 steps raised a false alarm (none of 20 at 5% or 30%);
a fall from 5.5% to 3% after step 10 (the GSM8K failure) was caught in 19 of 20 runs of 100
steps, 12 of them at step 30, the first step judged.

Example:
    >>> rows = [{"step": s, "behaviour/format_rate": 0.3, "behaviour/accuracy": 0.10 + 0.01 * (s % 2)}
    ...         for s in range(1, 11)]
    >>> rows += [{"step": s, "behaviour/format_rate": 0.95, "behaviour/accuracy": 0.03 + 0.01 * (s % 2)}
    ...          for s in range(11, 31)]
    >>> [alarm.kind for alarm in check_collapse(rows)]
    ['format']
    >>> print(check_collapse(rows)[0].message)  # doctest: +ELLIPSIS
    format collapse at step 30: format rate 0.30 -> 0.95 (steps 1-10 -> 11-30) while accuracy fell 0.105 -> 0.035 ...
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml

from ahazero.config.schema import CollapseSettings

__all__ = ["ACCURACY", "ANSWER", "FORMAT", "THINK", "CollapseAlarm", "check_collapse", "collapse_from_run",
           "first_alarms", "settings_from_config"]

ACCURACY = "behaviour/accuracy"
FORMAT = "behaviour/format_rate"
THINK = "behaviour/think_tokens_closed_mean"
ANSWER = "behaviour/answer_tokens_closed_mean"


@dataclass(frozen=True)
class CollapseAlarm:
    """One alarm: which kind, the step at which it held, and a one-line explanation."""

    kind: Literal["format", "thinking"]
    step: int
    message: str


def _series(rows: Sequence[dict[str, Any]], key: str) -> list[tuple[int, float]]:
    out = []
    for row in rows:
        value = row.get(key)
        if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
            out.append((int(row.get("step", len(out) + 1)), float(value)))
    return out


def _split(series: list[tuple[int, float]], s: CollapseSettings) -> tuple[list, list] | None:
    if len(series) < s.baseline_steps + s.window:
        return None
    return series[:s.baseline_steps], series[-s.window:]


def _mean(points: list[tuple[int, float]]) -> float:
    return statistics.fmean(v for _, v in points)


def _spread(points: list[tuple[int, float]]) -> float:
    values = [v for _, v in points]
    return statistics.variance(values) / len(values) if len(values) > 1 else 0.0


def _span(points: list[tuple[int, float]]) -> str:
    return f"{points[0][0]}-{points[-1][0]}"


def _format_alarm(rows: Sequence[dict[str, Any]], s: CollapseSettings) -> CollapseAlarm | None:
    fmt, acc = _split(_series(rows, FORMAT), s), _split(_series(rows, ACCURACY), s)
    if fmt is None or acc is None:
        return None
    f0, f1, a0, a1 = _mean(fmt[0]), _mean(fmt[1]), _mean(acc[0]), _mean(acc[1])
    if f1 - f0 < s.format_rise or a0 <= 0 or a1 >= (1 - s.accuracy_drop) * a0:
        return None
    se = math.sqrt(_spread(acc[0]) + _spread(acc[1]))
    z = (a0 - a1) / se if se > 0 else math.inf
    if z < s.min_z:
        return None
    step = acc[1][-1][0]
    return CollapseAlarm("format", step, (
        f"format collapse at step {step}: format rate {f0:.2f} -> {f1:.2f} (steps {_span(fmt[0])} -> "
        f"{_span(fmt[1])}) while accuracy fell {a0:.3f} -> {a1:.3f} (below {1 - s.accuracy_drop:.0%} of its "
        f"early level, z = {z:.1f}): the format is paid for while the task gets worse"))


def _thinking_alarm(rows: Sequence[dict[str, Any]], s: CollapseSettings) -> CollapseAlarm | None:
    think = _split(_series(rows, THINK), s)
    if think is None:
        return None
    t0, t1 = _mean(think[0]), _mean(think[1])
    if t0 <= 0 or t1 >= s.think_drop * t0:
        return None
    answer = [v for step, v in _series(rows, ANSWER) if think[1][0][0] <= step <= think[1][-1][0]]
    ratio = ""
    if answer:
        a = statistics.fmean(answer)
        if a > 0 and t1 > s.think_answer_ratio * a:
            return None
        ratio = f" and only {t1 / a:.1f}x the {a:.0f} tokens after </think>" if a > 0 else ""
    step = think[1][-1][0]
    return CollapseAlarm("thinking", step, (
        f"thinking collapse at step {step}: closed think blocks {t0:.0f} -> {t1:.0f} tokens (steps "
        f"{_span(think[0])} -> {_span(think[1])}; below {s.think_drop:.0%} of their early length{ratio})"))


def check_collapse(rows: Sequence[dict[str, Any]], settings: CollapseSettings | None = None) -> list[CollapseAlarm]:
    """The alarms that hold at the last of ``rows`` (per-step metric rows, in step order).

    Example:
        >>> rows = [{"step": s, "behaviour/think_tokens_closed_mean": 90.0 if s <= 10 else 20.0,
        ...          "behaviour/answer_tokens_closed_mean": 9.0} for s in range(1, 31)]
        >>> check_collapse(rows)[0].message  # doctest: +ELLIPSIS
        'thinking collapse at step 30: closed think blocks 90 -> 20 tokens (steps 1-10 -> 11-30; below 50% ... 2.2x the 9 tokens after </think>)'
        >>> check_collapse(rows[:29])
        []
    """
    s = settings or CollapseSettings()
    return [a for a in (_format_alarm(rows, s), _thinking_alarm(rows, s)) if a is not None]


def first_alarms(rows: Sequence[dict[str, Any]], settings: CollapseSettings | None = None) -> list[CollapseAlarm]:
    """Each kind's first alarm over a whole run: the detector run at every step, as training runs it.

    Example:
        >>> rows = [{"step": s, "behaviour/think_tokens_closed_mean": 90.0 if s <= 15 else 20.0}
        ...         for s in range(1, 61)]
        >>> [(a.kind, a.step) for a in first_alarms(rows)]
        [('thinking', 30)]
    """
    s = settings or CollapseSettings()
    ordered = sorted(rows, key=lambda r: int(r.get("step", 0)))
    found: dict[str, CollapseAlarm] = {}
    for end in range(s.baseline_steps + s.window, len(ordered) + 1):
        for alarm in check_collapse(ordered[:end], s):
            found.setdefault(alarm.kind, alarm)
        if len(found) == 2:
            break
    return sorted(found.values(), key=lambda a: a.step)


def settings_from_config(config: dict[str, Any] | None) -> CollapseSettings:
    """The ``collapse`` section of a run's resolved config (defaults where it has none or a bad one).

    Example:
        >>> settings_from_config({"collapse": {"window": 30}}).window, settings_from_config(None).window
        (30, 20)
    """
    section = (config or {}).get("collapse")
    if not isinstance(section, dict):
        return CollapseSettings()
    try:
        return CollapseSettings(**section)
    except ValueError:
        return CollapseSettings()


def collapse_from_run(run_dir: str | Path, rows: Sequence[dict[str, Any]] | None = None) -> list[CollapseAlarm]:
    """First alarms of a run directory, from ``metrics.jsonl`` (else ``rows``) and its config's thresholds.

    Example:
        >>> import tempfile
        >>> collapse_from_run(tempfile.mkdtemp())
        []
    """
    from ahazero.observe.rundir import RunDir, read_metrics

    rd = RunDir(Path(run_dir))
    metrics = [r for r in read_metrics(rd.metrics) if "step" in r and any(k.startswith("behaviour/") for k in r)]
    config: dict[str, Any] | None = None
    if rd.config.is_file():
        try:
            loaded = yaml.safe_load(rd.config.read_text(encoding="utf-8"))
            config = loaded if isinstance(loaded, dict) else None
        except yaml.YAMLError:
            config = None
    last: dict[int, dict[str, Any]] = {int(r["step"]): r for r in (metrics or rows or [])}  # a resume may repeat
    return first_alarms([last[s] for s in sorted(last)], settings_from_config(config))
