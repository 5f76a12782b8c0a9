"""Reading a run's traces: load, filter, sort and summarise the per-completion records.

The trainer writes ``runs/<name>/traces/step-NNNNNN.jsonl`` (see :mod:`ahazero.observe.tracing`). This
module only reads them, so it works on a run that is still training: files that are being
written (``.step-*.tmp``) are ignored, a line that does not decode (a torn write, a file
copied half-way) or holds a field of the wrong type (``"thinking_tokens": "abc"``, see
:func:`ahazero.observe.records.check_trace_record`) is skipped, and a file deleted between
listing and reading (a resumed run drops later steps) is treated as empty. The readers take
an optional ``problems`` list that collects every skipped line (file, line number, reason).
Files a resume set aside (``traces/damaged/``) are not read.

Everything here is pure Python; :func:`to_dataframe` is the only function that needs pandas.

Example:
    >>> import json, tempfile, pathlib
    >>> run = pathlib.Path(tempfile.mkdtemp())
    >>> (run / "traces").mkdir()
    >>> recs = [{"step": 1, "reward": 1.0, "reflections": ["wait"], "correct": True, "thinking_tokens": 9},
    ...         {"step": 1, "reward": 0.0, "reflections": [], "correct": False, "thinking_tokens": 3}]
    >>> _ = (run / "traces" / "step-000001.jsonl").write_text("\\n".join(map(json.dumps, recs)) + '\\n{"torn')
    >>> [r["reward"] for r in load_traces(run)]
    [1.0, 0.0]
    >>> [r["reward"] for r in filter_traces(load_traces(run), reflective=True)]
    [1.0]
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, NamedTuple

from ahazero.observe.behaviours import Behaviour, find_drgrpo_reflections, reflection_text, summarize
from ahazero.observe.records import Problem, check_trace_record, read_checked
from ahazero.observe.self_check import checks_of, self_check_metrics
from ahazero.observe.tracing import trace_steps

__all__ = [
    "SORT_KEYS",
    "StepCount",
    "filter_traces",
    "full_text",
    "group_by_step",
    "is_reflective",
    "iter_traces",
    "load_traces",
    "read_trace_file",
    "reflection_counts",
    "set_aside_note",
    "set_aside_traces",
    "sort_traces",
    "step_metrics",
    "steps_with_traces",
    "summarize_records",
    "to_dataframe",
    "traces_dir",
]

#: ``sort_traces`` keys and the record field each one sorts by.
SORT_KEYS: dict[str, str] = {
    "thinking": "thinking_tokens",
    "thinking_tokens": "thinking_tokens",
    "reward": "reward",
    "length": "completion_tokens",
    "completion_tokens": "completion_tokens",
    "advantage": "advantage",
    "step": "step",
}


def traces_dir(run_dir: str | Path) -> Path:
    """The traces folder of a run: ``run_dir/traces``, or ``run_dir`` itself when it holds the step files.

    Example:
        >>> traces_dir("runs/demo").as_posix()
        'runs/demo/traces'
    """
    path = Path(run_dir)
    if path.name == "traces" or (not (path / "traces").is_dir() and any(path.glob("step-*.jsonl"))):
        return path
    return path / "traces"


def steps_with_traces(run_dir: str | Path) -> list[int]:
    """Steps that have a (complete) trace file, ascending; [] when there is no traces folder.

    Example:
        >>> import tempfile
        >>> steps_with_traces(tempfile.mkdtemp())
        []
    """
    folder = traces_dir(run_dir)
    return trace_steps(folder) if folder.is_dir() else []


def set_aside_traces(run_dir: str | Path) -> list[Path]:
    """Trace files a resume found damaged and set aside (``traces/damaged/``), by name.

    Example:
        >>> import tempfile
        >>> set_aside_traces(tempfile.mkdtemp())
        []
    """
    folder = traces_dir(run_dir) / "damaged"
    return sorted(folder.glob("*.jsonl")) if folder.is_dir() else []


def set_aside_note(files: Sequence[Path]) -> str:
    """What to tell a reader about trace files a resume set aside.

    Example:
        >>> set_aside_note([Path("runs/x/traces/damaged/step-000003.jsonl")])
        '1 damaged trace file was set aside by a resume (in runs/x/traces/damaged)'
    """
    n = len(files)
    was = "file was" if n == 1 else "files were"
    return f"{n} damaged trace {was} set aside by a resume (in {files[0].parent})" if files else ""


def read_trace_file(path: str | Path, problems: list[Problem] | None = None) -> list[dict[str, Any]]:
    """Records of one trace file; bad lines are skipped (and added to ``problems``), a missing file is [].

    Example:
        >>> import tempfile, pathlib
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "step-000003.jsonl"
        >>> _ = p.write_text('{"step": 3}\\nnot json\\n[1]\\n{"step": 3, "thinking_tokens": "abc"}\\n')
        >>> found = []
        >>> read_trace_file(p, found), [(q.line, q.reason) for q in found]  # doctest: +NORMALIZE_WHITESPACE
        ([{'step': 3}], [(2, 'not JSON (a torn or garbled line)'), (3, 'not a JSON object (a list)'),
                         (4, "'thinking_tokens' is 'abc', not a number")])
    """
    return read_checked(path, check_trace_record, problems)


def iter_traces(run_dir: str | Path, steps: Iterable[int] | None = None,
                problems: list[Problem] | None = None) -> Iterator[dict[str, Any]]:
    """Stream the records of the given steps (default: every step), step by step, ascending.

    A record without a ``step`` field gets the step of its file. Steps without a file are skipped;
    so are bad lines, which are added to ``problems`` when given.

    Example:
        >>> import tempfile
        >>> list(iter_traces(tempfile.mkdtemp(), steps=[1, 2]))
        []
    """
    folder = traces_dir(run_dir)
    available = steps_with_traces(run_dir)
    wanted = available if steps is None else sorted(set(steps) & set(available))
    for step in wanted:
        for record in read_trace_file(folder / f"step-{step:06d}.jsonl", problems):
            record.setdefault("step", step)
            yield record


def load_traces(run_dir: str | Path, steps: Iterable[int] | None = None,
                problems: list[Problem] | None = None) -> list[dict[str, Any]]:
    """All records of the given steps (default: every step), in step order, as a list.

    ``run_dir`` is a run directory (``runs/<name>``) or its ``traces`` folder; bad lines are
    skipped and added to ``problems`` when given.

    Example:
        >>> import tempfile
        >>> load_traces(tempfile.mkdtemp())
        []
    """
    return list(iter_traces(run_dir, steps, problems))


def is_reflective(record: dict[str, Any]) -> bool:
    """True when the record has at least one reflection phrase (the definition of the reflection rate).

    Example:
        >>> is_reflective({"reflections": ["wait"]}), is_reflective({"reflections": []})
        (True, False)
    """
    return bool(record.get("reflections"))


def full_text(record: dict[str, Any]) -> str:
    """What the model saw and wrote after the prompt: the prefill (e.g. ``<think>``) plus the completion.

    Example:
        >>> full_text({"prefill": "<think>", "completion": "2+2=4</think>4"})
        '<think>2+2=4</think>4'
    """
    return (record.get("prefill") or "") + (record.get("completion") or "")


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return out if math.isfinite(out) else None


def filter_traces(
    records: Iterable[dict[str, Any]],
    *,
    correct: bool | None = None,
    reflective: bool | None = None,
    truncated: bool | None = None,
    formatted: bool | None = None,
    min_reward: float | None = None,
    max_reward: float | None = None,
    search: str | None = None,
    prompt_id: str | None = None,
    revised: bool | None = None,
    checked: bool | None = None,
) -> list[dict[str, Any]]:
    """Records that pass every given filter (None = no filter on that field).

    ``correct``/``formatted`` compare with the record's flag (a record whose flag is None never
    matches ``True`` or ``False``); ``reflective`` means at least one reflection phrase;
    ``revised``/``checked`` read the record's ``self_check`` (a record without one matches neither);
    ``min_reward``/``max_reward`` bound the weighted total reward (inclusive); ``search`` is a
    case-insensitive substring of the problem, the prefill + completion or the extracted answer.

    Example:
        >>> recs = [{"reward": 1.5, "correct": True, "completion": "Wait, 4", "reflections": ["wait"]},
        ...         {"reward": 0.2, "correct": False, "completion": "5", "reflections": []}]
        >>> len(filter_traces(recs, correct=True)), len(filter_traces(recs, min_reward=1.0, search="WAIT"))
        (1, 1)
        >>> filter_traces(recs, reflective=False)[0]["completion"]
        '5'
    """
    needle = search.lower() if search else None
    out = []
    for r in records:
        if correct is not None and r.get("correct") is not correct:
            continue
        if formatted is not None and r.get("formatted") is not formatted:
            continue
        if reflective is not None and is_reflective(r) != reflective:
            continue
        if truncated is not None and bool(r.get("truncated")) != truncated:
            continue
        if revised is not None and _self_check_flag(r, "revised") is not revised:
            continue
        if checked is not None and _self_check_flag(r, "checked") is not checked:
            continue
        if prompt_id is not None and str(r.get("prompt_id")) != prompt_id:
            continue
        if min_reward is not None or max_reward is not None:
            reward = _number(r.get("reward"))
            if reward is None:
                continue
            if min_reward is not None and reward < min_reward:
                continue
            if max_reward is not None and reward > max_reward:
                continue
        if needle is not None:
            haystack = "\n".join(
                str(x) for x in (r.get("problem"), full_text(r), r.get("extracted_answer")) if x is not None
            ).lower()
            if needle not in haystack:
                continue
        out.append(r)
    return out


def _self_check_flag(record: dict[str, Any], key: str) -> bool | None:
    sc = record.get("self_check")
    return bool(sc.get(key)) if isinstance(sc, dict) else None


def sort_traces(records: Iterable[dict[str, Any]], key: str, *, descending: bool = True) -> list[dict[str, Any]]:
    """Records sorted by ``key`` (see :data:`SORT_KEYS`: thinking, reward, length, ...), largest first.

    Records missing the value go last; ties keep their order (step, then file order).

    Example:
        >>> recs = [{"reward": 0.5}, {"reward": None}, {"reward": 2.0}]
        >>> [r["reward"] for r in sort_traces(recs, "reward")]
        [2.0, 0.5, None]
        >>> [r["reward"] for r in sort_traces(recs, "reward", descending=False)]
        [0.5, 2.0, None]
    """
    if key not in SORT_KEYS:
        raise ValueError(f"unknown sort key {key!r}; valid choices: {', '.join(SORT_KEYS)}")
    field = SORT_KEYS[key]
    records = list(records)
    present = [r for r in records if _number(r.get(field)) is not None]
    missing = [r for r in records if _number(r.get(field)) is None]
    present.sort(key=lambda r: _number(r.get(field)), reverse=descending)
    return present + missing


def group_by_step(records: Iterable[dict[str, Any]]) -> dict[int, list[dict[str, Any]]]:
    """Records grouped by step, steps ascending.

    Example:
        >>> list(group_by_step([{"step": 2}, {"step": 1}, {"step": 2}]).items())
        [(1, [{'step': 1}]), (2, [{'step': 2}, {'step': 2}])]
    """
    groups: dict[int, list[dict[str, Any]]] = {}
    for r in records:
        groups.setdefault(int(r.get("step", 0)), []).append(r)
    return dict(sorted(groups.items()))


def _behaviour(record: dict[str, Any]) -> Behaviour:
    drgrpo = record.get("reflections_drgrpo")
    if drgrpo is None:  # traces written before the Dr. GRPO measure: the same definition, from the text
        drgrpo = find_drgrpo_reflections(reflection_text(full_text(record)))
    return Behaviour(
        thinking=record.get("thinking"),
        answer=record.get("extracted_answer"),
        thinking_tokens=int(record.get("thinking_tokens") or 0),
        answer_tokens=int(record.get("answer_tokens") or 0),
        reflections=list(record.get("reflections") or []),
        language_consistency=record.get("language_consistency"),
        reflections_drgrpo=list(drgrpo),
    )


def summarize_records(records: Sequence[dict[str, Any]]) -> dict[str, float | None]:
    """The ``behaviour/...`` metrics of a group of records (the same numbers training logs), plus ``n``.

    Uses :func:`ahazero.observe.behaviours.summarize`, so the definitions match ``metrics.jsonl``.

    Example:
        >>> m = summarize_records([{"thinking_tokens": 10, "reflections": ["wait"], "correct": True},
        ...                        {"thinking_tokens": 20, "reflections": [], "correct": False}])
        >>> m["n"], m["behaviour/reflection_rate"], m["behaviour/accuracy"], m["behaviour/think_tokens_mean"]
        (2, 0.5, 0.5, 15.0)
    """
    if not records:
        return {"n": 0}
    behaviours = [_behaviour(r) for r in records]

    def flags(name: str) -> list[bool] | None:
        values = [r.get(name) for r in records]
        return None if all(v is None for v in values) else [bool(v) for v in values]

    tokens = [r.get("completion_tokens") for r in records]
    out: dict[str, float | None] = {"n": len(records)}
    out.update(summarize(
        behaviours,
        correct=flags("correct"),
        formatted=flags("formatted"),
        truncated=flags("truncated"),
        completion_tokens=None if any(t is None for t in tokens) else [int(t) for t in tokens],
    ))
    checks = checks_of(records)
    if checks is not None:  # traces written before the measure have none: no numbers, not zeros
        out.update(self_check_metrics(checks))
    return out


def step_metrics(run_dir: str | Path, steps: Iterable[int] | None = None,
                 problems: list[Problem] | None = None) -> list[dict[str, Any]]:
    """Per-step metrics rebuilt from the traces, in the shape of ``metrics.jsonl`` rows.

    Each row has ``step``, ``n``, ``reward`` (mean weighted total), ``rewards/<name>/mean`` and the
    ``behaviour/...`` metrics. Streams one step at a time. Useful when ``metrics.jsonl`` is
    missing, and for the viewer's summary table. Bad lines are skipped (and added to ``problems``).

    Example:
        >>> import tempfile
        >>> step_metrics(tempfile.mkdtemp())
        []
    """
    folder = traces_dir(run_dir)
    available = steps_with_traces(run_dir)
    wanted = available if steps is None else sorted(set(steps) & set(available))
    rows = []
    for step in wanted:
        records = read_trace_file(folder / f"step-{step:06d}.jsonl", problems)
        if not records:
            continue
        row: dict[str, Any] = {"step": step}
        row.update(summarize_records(records))
        totals = [v for v in (_number(r.get("reward")) for r in records) if v is not None]
        row["reward"] = sum(totals) / len(totals) if totals else None
        names: dict[str, list[float]] = {}
        for r in records:
            for name, value in (r.get("rewards") or {}).items():
                v = _number(value)
                if v is not None:
                    names.setdefault(name, []).append(v)
        for name, values in names.items():
            row[f"rewards/{name}/mean"] = sum(values) / len(values)
        rows.append(row)
    return rows


class StepCount(NamedTuple):
    """Completions traced at a step (``n``) and how many had at least one reflection phrase."""

    step: int
    n: int
    reflective: int


def reflection_counts(run_dir: str | Path, problems: list[Problem] | None = None) -> list[StepCount]:
    """Per step: how many completions were traced and how many were reflective (streamed).

    Bad lines are skipped (and added to ``problems`` when given).

    Example:
        >>> import json, tempfile, pathlib
        >>> d = pathlib.Path(tempfile.mkdtemp())
        >>> _ = (d / "step-000004.jsonl").write_text(json.dumps({"reflections": ["wait"]}) + "\\n{}\\n")
        >>> reflection_counts(d)
        [StepCount(step=4, n=2, reflective=1)]
    """
    folder = traces_dir(run_dir)
    out = []
    for step in steps_with_traces(run_dir):
        records = read_trace_file(folder / f"step-{step:06d}.jsonl", problems)
        if records:
            out.append(StepCount(step, len(records), sum(map(is_reflective, records))))
    return out


def to_dataframe(records: Iterable[dict[str, Any]]) -> Any:
    """A pandas DataFrame of the records, one row each; ``rewards`` become ``reward/<name>`` columns.

    Also adds ``reflective`` (bool) and ``n_reflections``. Needs pandas (not a dependency).

    Example:
        >>> df = to_dataframe([{"step": 1, "rewards": {"accuracy": 1.0}, "reflections": ["wait", "check"]}])
        >>> float(df.loc[0, "reward/accuracy"]), bool(df.loc[0, "reflective"]), int(df.loc[0, "n_reflections"])
        (1.0, True, 2)
    """
    try:
        import pandas as pd
    except ImportError as err:  # pragma: no cover - depends on the environment
        raise ImportError("to_dataframe needs pandas: pip install pandas") from err
    rows = []
    for r in records:
        row = {k: v for k, v in r.items() if k != "rewards"}
        for name, value in (r.get("rewards") or {}).items():
            row[f"reward/{name}"] = value
        row["reflective"] = is_reflective(r)
        row["n_reflections"] = len(r.get("reflections") or [])
        rows.append(row)
    return pd.DataFrame(rows)
