"""``ahazero behaviours FILE.jsonl``: the self-check measure on completions from any source.

Each line of the file is a JSON object with ``completion`` (a string; a ``prefill`` such as
``<think>`` is put in front of it when given) and, for grading, ``gold`` (the answer, or
``answer``) and ``problem``; a Countdown record needs ``numbers`` and ``target``. Eval samples
(``runs/<name>/eval/<tag>-samples.jsonl``) and trace files (``traces/step-*.jsonl``) are such
files. For every record one JSON line is printed: the :class:`~ahazero.observe.self_check.SelfCheck`
fields (``candidates``, ``first_correct``, ``final_correct``, ``revised``, ``checked``, ``checks``,
``caught_error``, ``final_answer``) and the record's ``line``; then one line ``{"summary": {...}}``
with the aggregates of :func:`~ahazero.observe.self_check.summarize_self_checks`. Candidates are
graded by the task's correctness reward (``--task``: ``countdown`` uses the Countdown reward,
every other task the accuracy reward). A file that cannot be read, a line that is not such a
record, or an unknown task is one line on stderr and exit code 2, before anything is measured.

Example:
    $ ahazero behaviours runs/default/eval/base-samples.jsonl
    $ ahazero behaviours my_completions.jsonl --task gsm8k --summary-only

    >>> import argparse
    >>> parser = argparse.ArgumentParser(); sub = parser.add_subparsers()
    >>> _ = add_parser(sub)
    >>> args = parser.parse_args(["behaviours", "x.jsonl", "--task", "gsm8k"])
    >>> args.file, args.task, args.func.__name__
    ('x.jsonl', 'gsm8k', 'run_behaviours')
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, TextIO

from ahazero.observe.records import check_object, scan_lines
from ahazero.observe.self_check import measure_self_checks, summarize_self_checks
from ahazero.observe.traces_cli import json_line

__all__ = ["add_parser", "check_completion_record", "read_completions", "run_behaviours"]


class CompletionsFileError(ValueError):
    """A file ``ahazero behaviours`` cannot read: missing, empty, or with a line that is not a completion record."""


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register the ``behaviours`` subcommand (``set_defaults(func=run_behaviours)``) and return its parser."""
    p = subparsers.add_parser(
        "behaviours", help="measure self-correction (answers stated, checks, revisions) in a JSON-lines file "
                           "of completions",
        description="Read every completion of a JSON-lines file for the answers it states, the checks it makes "
                    "and whether they work; print one JSON line per record, then the summary.",
    )
    p.add_argument("file", help="JSON lines with 'completion' (and 'gold', 'problem', 'prefill'): eval samples, "
                                "trace files, or completions from anywhere")
    p.add_argument("--task", default="arithmetic",
                   help="the task whose correctness reward grades the answers (default arithmetic; countdown "
                        "grades expressions)")
    p.add_argument("--summary-only", action="store_true", help="print only the summary line")
    p.set_defaults(func=run_behaviours)
    return p


_OPTIONAL_TEXT = ("problem", "prefill")


def check_completion_record(obj: Any) -> str | None:
    """None for a usable record, else what is wrong with it.

    Example:
        >>> check_completion_record({"completion": "4", "gold": 4}), check_completion_record({"problem": "p"})
        (None, "no 'completion' string")
    """
    problem = check_object(obj)
    if problem:
        return problem
    if not isinstance(obj.get("completion"), str):
        return "no 'completion' string"
    for key in _OPTIONAL_TEXT:
        if obj.get(key) is not None and not isinstance(obj[key], str):
            return f"{key!r} is not a string"
    gold = obj.get("gold", obj.get("answer"))
    if gold is not None and (isinstance(gold, bool) or not isinstance(gold, str | int | float)):
        return "'gold' is not a string or a number"
    return None


def read_completions(path: str | Path) -> list[tuple[int, dict[str, Any]]]:
    """``(line number, record)`` of every record, or :class:`CompletionsFileError` naming the first bad line.

    Example:
        >>> import tempfile, pathlib
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "c.jsonl"
        >>> _ = p.write_text('{"completion": "4"}\\n[1]\\n')
        >>> read_completions(p)
        Traceback (most recent call last):
        ...
        ahazero.observe.behaviours_cli.CompletionsFileError: ...c.jsonl line 2: not a JSON object (a list); ...
    """
    file = Path(path)
    if not file.is_file():
        raise CompletionsFileError(f"{path}: no such file")
    try:
        with file.open("rb"):
            pass
    except OSError as err:
        raise CompletionsFileError(f"{path}: cannot be read ({err.strerror or err})") from None
    out = []
    for line in scan_lines(file, check_completion_record):
        if line.record is None:
            raise CompletionsFileError(f"{path} line {line.number}: {line.reason}; each line must be a JSON "
                                       "object with a 'completion' string (and 'gold', 'problem', 'prefill')")
        out.append((line.number, line.record))
    if not out:
        raise CompletionsFileError(f"{path} holds no records (one JSON object with a 'completion' per line)")
    return out


def _grader(task: str) -> Any:
    from ahazero.tasks import task_class
    from rewards import get_reward

    task_class(task)  # ValueError naming the valid tasks
    return get_reward("countdown" if task == "countdown" else "accuracy")


def run_behaviours(args: argparse.Namespace, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Run ``ahazero behaviours`` with parsed ``args``; returns the exit code (2: bad file or task).

    Example:
        >>> import argparse, io, tempfile, pathlib
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "c.jsonl"
        >>> _ = p.write_text('{"completion": "<think>3 + 4 = 7</think><answer>7</answer>", "gold": "7"}\\n')
        >>> buf = io.StringIO()
        >>> run_behaviours(argparse.Namespace(file=str(p), task="arithmetic", summary_only=False), out=buf)
        0
        >>> [json.loads(line).get("final_correct") for line in buf.getvalue().splitlines()]
        [True, None]
    """
    out, err = out or sys.stdout, err or sys.stderr
    try:
        grader = _grader(args.task)
        records = read_completions(args.file)
    except ValueError as exc:
        print(f"behaviours: {' '.join(str(exc).split())}", file=err)
        return 2
    texts = [(r.get("prefill") or "") + r["completion"] for _n, r in records]
    rows = [{**r, "answer": r.get("gold", r.get("answer"))} for _n, r in records]
    results = measure_self_checks(texts, rows, grader=grader)
    try:
        if not args.summary_only:
            for (number, _r), result in zip(records, results, strict=True):
                out.write(json_line({"line": number, **result.to_dict()}) + "\n")
        out.write(json.dumps({"summary": summarize_self_checks(results), "file": str(args.file),
                              "task": args.task}) + "\n")
    except BrokenPipeError:  # `ahazero behaviours FILE | head`
        return 0
    return 0
