"""Which traced steps and records to show, and what to mark in a completion (no rendering).

The computing half of ``ahazero traces`` and of the report's example cards: resolving a run
name, parsing step ranges, choosing early and late groups to compare, cutting long text and
finding the thinking / answer / reflection spans. :mod:`ahazero.observe.traces_view` draws them.

Example:
    >>> parse_steps("1:10"), select_steps([1, 2, 3], last=True)
    ((1, 10), [3])
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ahazero.observe.behaviours import reflection_pattern
from ahazero.observe.trace_store import (
    group_by_step,
)

__all__ = ["compare_groups", "completion_spans", "middle_cut", "parse_steps", "resolve_run", "select_steps"]


def resolve_run(run: str | Path) -> Path | None:
    """The run directory for ``run``: a path, or a name under ``runs/``; None when neither exists.

    Example:
        >>> import tempfile
        >>> d = tempfile.mkdtemp()
        >>> resolve_run(d) == Path(d), resolve_run("no-such-run-anywhere")
        (True, None)
    """
    path = Path(run)
    if path.is_dir():
        return path
    named = Path("runs") / str(run)
    return named if named.is_dir() else None


def parse_steps(spec: str) -> tuple[int | None, int | None]:
    """Parse an inclusive step range ``A:B`` (either end may be left out) or a single step ``N``.

    Example:
        >>> parse_steps("1:10"), parse_steps(":5"), parse_steps("50:"), parse_steps("7")
        ((1, 10), (None, 5), (50, None), (7, 7))
    """
    text = spec.strip()
    if ":" not in text:
        if not text.isdigit():
            raise ValueError(f"bad step {spec!r}: expected N or A:B")
        return int(text), int(text)
    a, _, b = text.partition(":")
    try:
        lo = int(a) if a.strip() else None
        hi = int(b) if b.strip() else None
    except ValueError as err:
        raise ValueError(f"bad step range {spec!r}: expected A:B, e.g. 1:10") from err
    return lo, hi


def select_steps(available: Sequence[int], *, step: int | None = None, steps: str | None = None,
                 last: bool = False) -> list[int]:
    """The steps chosen by ``--step`` / ``--steps`` / ``--last`` among ``available`` (all of them by default).

    Example:
        >>> select_steps([1, 2, 3, 4], steps="2:3"), select_steps([1, 2, 3], last=True)
        ([2, 3], [3])
        >>> select_steps([1, 2, 3]), select_steps([1, 2], step=9)
        ([1, 2, 3], [])
    """
    available = sorted(available)
    if last:
        return available[-1:]
    if step is not None:
        return [step] if step in available else []
    if steps:
        lo, hi = parse_steps(steps)
        return [s for s in available if (lo is None or s >= lo) and (hi is None or s <= hi)]
    return available


def middle_cut(text: str, max_chars: int) -> tuple[str, tuple[int, int] | None]:
    """Cut the middle out of ``text`` longer than ``max_chars`` (0 = never); return it and the marker's span.

    Texts up to 20% over the limit are left whole (cutting a few characters helps nobody).

    Example:
        >>> cut, span = middle_cut("a" * 50 + "b" * 50, 20)
        >>> cut[span[0]:span[1]], cut[:span[0]], cut[span[1]:]
        ('\\n  … [80 characters omitted] …\\n', 'aaaaaaaaaaaa', 'bbbbbbbb')
        >>> middle_cut("short", 20)
        ('short', None)
    """
    if max_chars <= 0 or len(text) <= max_chars * 1.2:
        return text, None
    head = int(max_chars * 0.6)
    tail = max_chars - head
    marker = f"\n  … [{len(text) - head - tail} characters omitted] …\n"
    return text[:head] + marker + text[-tail:], (head, head + len(marker))


def completion_spans(text: str, reflections: Sequence[str] = ()) -> list[tuple[int, int, str]]:
    """Spans ``(start, end, kind)`` to highlight in a completion; kinds: thinking, tag, answer, reflection.

    ``thinking`` runs from ``<think>`` (or the start) to ``</think>`` (or the first ``<answer>``, or
    the end); ``answer`` is the inside of each ``<answer>`` block (else of the last ``\\boxed{}``);
    ``reflection`` marks the given phrases with the metrics' whole-word matching.

    Example:
        >>> completion_spans("<think>hm, wait</think><answer>4</answer>", ["wait"])  # doctest: +NORMALIZE_WHITESPACE
        [(7, 15, 'thinking'), (0, 7, 'tag'), (15, 23, 'tag'), (23, 31, 'tag'), (32, 41, 'tag'),
         (31, 32, 'answer'), (11, 15, 'reflection')]
    """
    spans: list[tuple[int, int, str]] = []
    close = text.find("</think>")
    answer_at = text.find("<answer>")
    start = text.find("<think>")
    think_from = start + len("<think>") if start >= 0 else 0
    think_to = close if close >= 0 else (answer_at if answer_at >= 0 else len(text))
    if think_to > think_from:
        spans.append((think_from, think_to, "thinking"))
    spans += [(m.start(), m.end(), "tag") for m in re.finditer(r"</?think>|</?answer>", text)]
    answers = list(re.finditer(r"<answer>(.*?)(?:</answer>|$)", text, re.DOTALL))
    if not answers:
        answers = list(re.finditer(r"\\boxed\{(.*?)\}", text))[-1:]
    spans += [(m.start(1), m.end(1), "answer") for m in answers if m.end(1) > m.start(1)]
    phrases = tuple(sorted(set(reflections)))
    if phrases:
        spans += [(m.start(), m.end(), "reflection") for m in reflection_pattern(phrases).finditer(text)]
    return spans


def compare_groups(records: Sequence[dict[str, Any]], prompt_id: str | None = None
                   ) -> tuple[list[dict[str, Any]], list[dict[str, Any]], str]:
    """Pick the early and late records to compare, and a note saying what was picked.

    With ``prompt_id``: that prompt's records at its first and at its last traced step.
    Without: the prompt traced at the two steps furthest apart; when every prompt was traced
    at one step only (one pass over a large training set), the first and last steps' records.

    Example:
        >>> recs = [{"step": 1, "prompt_id": "a"}, {"step": 5, "prompt_id": "a"}, {"step": 5, "prompt_id": "b"}]
        >>> early, late, note = compare_groups(recs)
        >>> [r["step"] for r in early], [r["step"] for r in late], note
        ([1], [5], "prompt 'a' at step 1 and step 5")
    """
    if prompt_id is not None:
        mine = [r for r in records if str(r.get("prompt_id")) == prompt_id]
        groups = group_by_step(mine)
        if not groups:
            return [], [], f"prompt {prompt_id!r} is not in the selected traces"
        steps = list(groups)
        if len(steps) == 1:
            return groups[steps[0]], [], f"prompt {prompt_id!r} was traced at step {steps[0]} only"
        return groups[steps[0]], groups[steps[-1]], f"prompt {prompt_id!r} at step {steps[0]} and step {steps[-1]}"
    spans: dict[str, list[int]] = {}
    for r in records:
        s = int(r.get("step", 0))
        lo_hi = spans.setdefault(str(r.get("prompt_id")), [s, s])
        lo_hi[0], lo_hi[1] = min(lo_hi[0], s), max(lo_hi[1], s)
    repeated = [(hi - lo, -lo, pid) for pid, (lo, hi) in spans.items() if hi > lo]
    if repeated:
        _, _, best = max(repeated)
        return compare_groups(records, best)
    groups = group_by_step(records)
    if not groups:
        return [], [], "no traces selected"
    steps = list(groups)
    note = (f"no prompt was traced at two different steps (each training prompt was seen once); "
            f"comparing step {steps[0]} with step {steps[-1]} (different prompts)")
    return groups[steps[0]], groups[steps[-1]] if len(steps) > 1 else [], note
