"""Checking the lines of a run's JSON-lines files, and naming what is wrong with a bad one.

``metrics.jsonl`` and ``traces/step-*.jsonl`` are read line by line through :func:`scan_lines`
and :func:`read_checked`: a line that is not JSON, not a JSON object, or holds a field of the
wrong type (``"step": "x"``, ``"thinking_tokens": "abc"``) is skipped and, when the caller
passes a list, reported there as a :class:`Problem` (file, line number, reason). Lines are
split on ``\\n`` only, so a completion holding U+2028 or U+0085 stays one record.

Example:
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "step-000001.jsonl"
    >>> _ = p.write_text('{"step": 1, "reward": 1.0}\\n{"step": "x"}\\n[1]\\n')
    >>> problems = []
    >>> [r["reward"] for r in read_checked(p, check_trace_record, problems)]
    [1.0]
    >>> [(q.line, q.reason) for q in problems]
    [(2, "'step' is 'x', not an integer"), (3, 'not a JSON object (a list)')]
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, NamedTuple

__all__ = [
    "NOT_JSON",
    "Line",
    "Problem",
    "check_metrics_row",
    "check_object",
    "check_trace_record",
    "describe_problems",
    "read_checked",
    "scan_lines",
]

Check = Callable[[Any], "str | None"]

#: The reason given for a line that does not parse.
NOT_JSON = "not JSON (a torn or garbled line)"


class Problem(NamedTuple):
    """One line of a run file that could not be used: the file, its 1-based line number, why."""

    path: str
    line: int
    reason: str

    def __str__(self) -> str:
        return f"{self.path} line {self.line}: {self.reason}"


class Line(NamedTuple):
    """One non-blank line of a JSON-lines file: its number, its text, the object or why it is bad."""

    number: int
    text: str
    record: dict[str, Any] | None
    reason: str | None
    terminated: bool  #: False for a last line without its newline (being written, or torn)


def _kind(value: Any) -> str:
    if isinstance(value, list):
        return "a list"
    if value is None:
        return "null"
    return type(value).__name__


def _show(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=True) if not isinstance(value, str) else repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def check_object(obj: Any) -> str | None:
    """None for a JSON object, else why not (the only check a generic JSON-lines reader makes).

    Example:
        >>> check_object({"a": 1}), check_object([1, 2])
        (None, 'not a JSON object (a list)')
    """
    return None if isinstance(obj, dict) else f"not a JSON object ({_kind(obj)})"


def _int_step(obj: dict[str, Any], *, required: bool) -> str | None:
    if "step" not in obj:
        return "no 'step'" if required else None
    step = obj["step"]
    if isinstance(step, bool) or not isinstance(step, int):
        return f"'step' is {_show(step)}, not an integer"
    return None if step >= 0 else f"'step' is {step}, not a step number"


def check_metrics_row(obj: Any) -> str | None:
    """None for a usable ``metrics.jsonl`` row: an object with an integer ``step`` and numbers (or null) as values.

    Example:
        >>> check_metrics_row({"step": 3, "reward": 0.5, "grad_norm": None})
        >>> check_metrics_row({"step": None})
        "'step' is null, not an integer"
        >>> check_metrics_row({"step": 1, "reward": "abc"})
        "'reward' is 'abc', not a number"
    """
    problem = check_object(obj) or _int_step(obj, required=True)
    if problem:
        return problem
    for key, value in obj.items():
        if key != "step" and value is not None and not isinstance(value, int | float):
            return f"{key!r} is {_show(value)}, not a number"
    return None


_TEXT_FIELDS = ("prompt", "problem", "prefill", "completion", "thinking", "extracted_answer", "gold")
_NUMBER_FIELDS = ("reward", "advantage", "thinking_tokens", "answer_tokens", "completion_tokens",
                  "language_consistency")
_FLAG_FIELDS = ("correct", "formatted", "truncated")


def _number_problem(key: str, value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        return f"{key!r} is {_show(value)}, not a number"
    return None if math.isfinite(value) else f"{key!r} is {value}, not a finite number"


def check_trace_record(obj: Any) -> str | None:
    """None for a usable trace record, else the first field of the wrong type.

    Every field is optional (readers fill in what is missing); present fields must have the
    types the trainer writes: texts are strings, counts and rewards finite numbers, flags
    booleans, ``reflections`` a list of strings, ``rewards`` an object of numbers (each may be null),
    ``self_check`` an object.

    Example:
        >>> check_trace_record({"step": 2, "thinking_tokens": 12, "correct": True, "rewards": {"accuracy": None}})
        >>> check_trace_record({"thinking_tokens": "abc"})
        "'thinking_tokens' is 'abc', not a number"
        >>> check_trace_record(["step", 1])
        'not a JSON object (a list)'
    """
    problem = check_object(obj) or _int_step(obj, required=False)
    if problem:
        return problem
    pid = obj.get("prompt_id")
    if pid is not None and (isinstance(pid, bool) or not isinstance(pid, str | int)):
        return f"'prompt_id' is {_show(pid)}, not a string"
    for key in _TEXT_FIELDS:
        value = obj.get(key)
        if value is not None and not isinstance(value, str):
            return f"{key!r} is {_show(value)}, not a string"
    for key in _NUMBER_FIELDS:
        problem = _number_problem(key, obj.get(key))
        if problem:
            return problem
    for key in _FLAG_FIELDS:
        value = obj.get(key)
        if value is not None and not isinstance(value, bool):
            return f"{key!r} is {_show(value)}, not true/false"
    reflections = obj.get("reflections")
    if reflections is not None and (not isinstance(reflections, list)
                                    or not all(isinstance(p, str) for p in reflections)):
        return f"'reflections' is {_show(reflections)}, not a list of phrases"
    rewards = obj.get("rewards")
    if rewards is not None:
        if not isinstance(rewards, dict):
            return f"'rewards' is {_show(rewards)}, not an object"
        for name, value in rewards.items():
            problem = _number_problem(f"rewards.{name}", value)
            if problem:
                return problem
    self_check = obj.get("self_check")
    if self_check is not None and not isinstance(self_check, dict):
        return f"'self_check' is {_show(self_check)}, not an object"
    return None


def scan_lines(path: str | Path, check: Check = check_object) -> Iterator[Line]:
    """Every non-blank line of a JSON-lines file, parsed and checked; a missing file has none.

    Example:
        >>> import tempfile, pathlib
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "m.jsonl"
        >>> _ = p.write_text('{"step": 1}\\n\\n{"step": 2, "rew')
        >>> [(x.number, x.reason, x.terminated) for x in scan_lines(p)]
        [(1, None, True), (3, 'not JSON (a torn or garbled line)', False)]
    """
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        return
    lines = text.split("\n")
    last = len(lines)
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        try:
            obj = json.loads(raw)
        except (json.JSONDecodeError, RecursionError):
            yield Line(number, raw, None, NOT_JSON, number < last)
            continue
        reason = check(obj)
        yield Line(number, raw, None if reason else obj, reason, number < last)


def read_checked(path: str | Path, check: Check = check_object, problems: list[Problem] | None = None, *,
                 report_unfinished: bool = True) -> list[dict[str, Any]]:
    """The good records of a JSON-lines file; each bad line is appended to ``problems`` when given.

    With ``report_unfinished=False`` a last line that is cut short (no newline, not JSON), as
    in a file another process is appending to right now, is skipped without a report.

    Example:
        >>> import tempfile, pathlib
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "m.jsonl"
        >>> _ = p.write_text('{"step": null}\\n{"step": 2}\\n{"step": 3, "rew')
        >>> found = []
        >>> read_checked(p, check_metrics_row, found, report_unfinished=False), [q.line for q in found]
        ([{'step': 2}], [1])
    """
    out = []
    for line in scan_lines(path, check):
        if line.record is not None:
            out.append(line.record)
        elif problems is not None and (report_unfinished or line.terminated or line.reason != NOT_JSON):
            problems.append(Problem(str(path), line.number, line.reason or "unusable"))
    return out


def describe_problems(problems: Sequence[Problem], *, limit: int = 5) -> str:
    """A one-line account of skipped lines: how many, then the first ``limit`` of them (file, line, reason).

    Example:
        >>> describe_problems([Problem("m.jsonl", 3, "not JSON (a torn or garbled line)")])
        '1 damaged line skipped: m.jsonl line 3 (not JSON (a torn or garbled line))'
    """
    unique = sorted(set(problems), key=lambda p: (p.path, p.line))
    if not unique:
        return "no damaged lines"
    shown = "; ".join(f"{p.path} line {p.line} ({p.reason})" for p in unique[:limit])
    more = f"; and {len(unique) - limit} more" if len(unique) > limit else ""
    noun = "line" if len(unique) == 1 else "lines"
    return f"{len(unique)} damaged {noun} skipped: {shown}{more}"
