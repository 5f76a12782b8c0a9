r"""Self-correction measured from the text: does a completion check its answers, and do its checks work?

R1-Zero is remembered for a model that re-checks its work and changes its answer. Reflection
*words* say little at small scale (oat-zero: small Qwens write them from step 0, mostly on wrong
answers); checks that *work* say more (arXiv 2510.12157). Per completion,
:func:`measure_self_checks` reads (:mod:`ahazero.observe.self_check_reader`, where the rules are):

- the **candidate answers** the thinking states, in order, ending with the final answer;
- a **revision**: the final answer differs from the first candidate, wrong -> right or
  right -> wrong, each candidate graded by the task's own correctness reward (the accuracy
  reward's verifier against the gold, or the Countdown reward), not by string equality;
- the **checks**: a recomputation of a candidate by a second route (undoing the steps,
  substituting x back, ...), each agreeing or disagreeing with its candidate; checking words
  without recomputation are no check;
- a **caught error**: a check that disagreed, followed by a different candidate.

:func:`summarize_self_checks` aggregates them (:data:`SELF_CHECK_KEYS`); ``ahazero eval`` writes
the aggregate as ``self_check`` in ``eval/<tag>.json``, training logs it per step as
``behaviour/<key>`` (every key but ``n``), and each trace and eval sample carries its
completion's :class:`SelfCheck` as ``self_check``.

Example:
    >>> text = ("<think>Step 1: 47 + 38 = 75\nStep 2: 75 * 2 = 150\nSo the answer is 150.\n"
    ...         "Let me check: 150 / 2 = 75, 75 - 38 = 37, but the problem has 47.\n"
    ...         "Wait, 47 + 38 is 85, not 75. Step 1: 47 + 38 = 85. Step 2: 85 * 2 = 170. So the answer is 170.\n"
    ...         "Let me check: 170 / 2 = 85, 85 - 38 = 47. It checks out.</think><answer>170</answer>")
    >>> from rewards import get_reward
    >>> [s] = measure_self_checks([text], [{"answer": "170", "problem": "Compute: (47 + 38) * 2"}],
    ...                           grader=get_reward("accuracy", isolate=False))
    >>> s.candidates, s.first_correct, s.final_correct, s.revised, s.caught_error
    (['150', '170'], False, True, True, True)
    >>> [(c["candidate"], c["agreed"]) for c in s.checks]
    [('150', False), ('170', True)]
    >>> summarize_self_checks([s])["net_corrections_per_100"]
    100.0
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from ahazero.observe.self_check_reader import Reading, read_self_check, same_answer
from rewards import required_columns

__all__ = ["SELF_CHECK_KEYS", "SelfCheck", "checks_of", "grades_of", "is_expression_grader", "markdown_rows",
           "measure_self_checks", "self_check_metrics", "summarize_self_checks"]

logger = logging.getLogger(__name__)

#: The aggregate keys (fractions in 0..1, except ``n`` and the per-100 number), in display order.
SELF_CHECK_KEYS: tuple[str, ...] = (
    "n", "revision_rate", "wrong_to_right_rate", "right_to_wrong_rate", "net_corrections_per_100", "check_rate",
    "check_agreed_when_right", "check_disagreed_when_wrong", "accuracy_checked", "accuracy_unchecked",
    "caught_error_rate",
)


@dataclass
class SelfCheck:
    """What one completion shows of self-correction (see the module). Grades are None when ungradable.

    ``checks`` holds ``{"candidate", "text", "agreed", "candidate_correct"}`` per check, in order.
    """

    candidates: list[str] = field(default_factory=list)
    first_correct: bool | None = None
    final_correct: bool | None = None
    revised: bool = False
    checked: bool = False
    checks: list[dict[str, Any]] = field(default_factory=list)
    caught_error: bool = False
    final_answer: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (the per-completion ``self_check`` field of traces and eval samples)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Any) -> SelfCheck | None:
        """Read back :meth:`to_dict` (None for anything that is not such a dict).

        Example:
            >>> SelfCheck.from_dict({"candidates": ["4"], "checked": True}).checked, SelfCheck.from_dict("x")
            (True, None)
        """
        if not isinstance(data, dict):
            return None
        known = {k: data[k] for k in cls.__dataclass_fields__ if k in data}
        try:
            out = cls(**known)
        except TypeError:
            return None
        out.checks = [c for c in (out.checks or []) if isinstance(c, dict)]
        return out


def is_expression_grader(grader: Any) -> bool:
    """Whether a correctness reward grades expressions (Countdown) rather than values.

    Example:
        >>> from rewards import get_reward
        >>> is_expression_grader(get_reward("countdown")), is_expression_grader(get_reward("accuracy"))
        (True, False)
    """
    return getattr(grader, "__name__", None) == "countdown"


def grades_of(grader: Callable[..., Any] | None, items: Sequence[tuple[str, dict[str, Any]]]) -> list[bool | None]:
    """Grade ``(answer, row)`` pairs with a TRL-style correctness reward, in one call: True, False or None.

    Each answer is wrapped in ``<answer>`` tags and scored like a completion, with the row's
    columns (``answer``: the gold); a row without a column the reward needs, a missing grader
    or a failing one give None (ungradable).

    Example:
        >>> from rewards import get_reward
        >>> grades_of(get_reward("accuracy", isolate=False), [("0.5", {"answer": "1/2"}), ("3", {"answer": "4"}),
        ...                                                   ("3", {"answer": None})])
        [True, False, None]
    """
    out: list[bool | None] = [None] * len(items)
    if grader is None or not items:
        return out
    needed = required_columns(grader)
    todo = [i for i, (_a, row) in enumerate(items) if all(row.get(c) is not None for c in needed)]
    if not todo:
        return out
    columns = {c: [items[i][1].get(c) for i in todo] for c in needed}
    try:
        scores = grader(completions=[f"<answer>{items[i][0]}</answer>" for i in todo], **columns)
        for i, score in zip(todo, scores, strict=False):
            out[i] = None if score is None else bool(float(score) >= 1.0 - 1e-6)
    except Exception as exc:  # noqa: BLE001 - a custom reward may fail; the measure must not
        logger.warning("self-check: grading candidates failed (%s: %.100s)", type(exc).__name__, exc)
        return [None] * len(items)
    return out


def _result(reading: Reading, grades: list[bool | None], final_correct: bool | None) -> SelfCheck:
    cands = reading.candidates
    has_final = reading.final_answer is not None and bool(cands)
    revised = has_final and not same_answer(cands[0], cands[-1])
    grade = list(grades)
    if has_final:
        grade[-1] = final_correct
        for i in range(len(cands) - 1):  # the final answer restated earlier is graded as the final answer
            if same_answer(cands[i], cands[-1]):
                grade[i] = final_correct
    checks = [{"candidate": cands[c.candidate], "text": c.text, "agreed": c.agreed,
               "candidate_correct": grade[c.candidate]} for c in reading.checks]
    caught = any(not c.agreed and c.candidate < len(cands) - 1 for c in reading.checks)
    return SelfCheck(candidates=list(cands), first_correct=grade[0] if cands else None,
                     final_correct=final_correct, revised=revised, checked=bool(checks), checks=checks,
                     caught_error=caught, final_answer=reading.final_answer)


def measure_self_checks(texts: Sequence[str], rows: Sequence[dict[str, Any]], *,
                        grader: Callable[..., Any] | None = None,
                        correct: Sequence[bool | None] | None = None) -> list[SelfCheck]:
    """Read and grade completions (prefill included); ``rows`` hold the gold (``answer``) and ``problem``.

    ``grader`` is the task's correctness reward (``accuracy``, ``countdown`` or a custom one):
    every candidate is graded with it in one batch. ``correct`` gives the final answers' grades
    when the caller has them already (the reward's own scores); else the final answer is graded
    like the other candidates, and a completion without one is wrong (None without a grader or gold).

    Example:
        >>> [s] = measure_self_checks(["<think>2 + 2 = 4. Let me verify. Yes, correct.</think><answer>4</answer>"],
        ...                           [{"answer": "4"}])
        >>> s.candidates, s.checked, s.final_correct
        (['4'], False, None)
    """
    expressions = is_expression_grader(grader)
    readings = [read_self_check(t, problem=str(r.get("problem") or ""), expressions=expressions)
                for t, r in zip(texts, rows, strict=True)]
    items = [(c, row) for reading, row in zip(readings, rows, strict=True) for c in reading.candidates]
    flat = grades_of(grader, items)
    out, position = [], 0
    for i, reading in enumerate(readings):
        grades = flat[position:position + len(reading.candidates)]
        position += len(reading.candidates)
        if correct is not None:
            final = correct[i]
        elif reading.final_answer is not None and grades:
            final = grades[-1]
        else:  # no final answer: wrong, when the completion can be graded at all
            gradable = grader is not None and all(rows[i].get(c) is not None for c in required_columns(grader))
            final = False if gradable else None
        out.append(_result(reading, grades, None if final is None else bool(final)))
    return out


def _share(hits: int, total: int) -> float | None:
    return hits / total if total else None


def summarize_self_checks(results: Sequence[SelfCheck]) -> dict[str, float | int | None]:
    """The aggregate self-correction numbers of a group of completions (:data:`SELF_CHECK_KEYS`).

    Rates are over all ``n`` completions; ``check_agreed_when_right`` is the share of checks on a
    right candidate that agreed, ``check_disagreed_when_wrong`` of checks on a wrong one that
    disagreed; ``accuracy_checked`` / ``_unchecked`` the final accuracy of completions with /
    without a check. A share of nothing is None.

    Example:
        >>> s = summarize_self_checks([SelfCheck(candidates=["1", "2"], first_correct=False, final_correct=True,
        ...                                      revised=True), SelfCheck(candidates=["2"], final_correct=False)])
        >>> s["n"], s["revision_rate"], s["wrong_to_right_rate"], s["net_corrections_per_100"], s["check_rate"]
        (2, 0.5, 0.5, 50.0, 0.0)
    """
    n = len(results)
    if n == 0:
        return {key: (0 if key == "n" else None) for key in SELF_CHECK_KEYS}
    w2r = sum(r.revised and r.first_correct is False and r.final_correct is True for r in results)
    r2w = sum(r.revised and r.first_correct is True and r.final_correct is False for r in results)
    checks = [c for r in results for c in r.checks]
    on_right = [c for c in checks if c.get("candidate_correct") is True]
    on_wrong = [c for c in checks if c.get("candidate_correct") is False]
    checked = [r.final_correct for r in results if r.checked and r.final_correct is not None]
    unchecked = [r.final_correct for r in results if not r.checked and r.final_correct is not None]
    return {
        "n": n,
        "revision_rate": sum(r.revised for r in results) / n,
        "wrong_to_right_rate": w2r / n,
        "right_to_wrong_rate": r2w / n,
        "net_corrections_per_100": 100.0 * (w2r - r2w) / n,
        "check_rate": sum(r.checked for r in results) / n,
        "check_agreed_when_right": _share(sum(bool(c.get("agreed")) for c in on_right), len(on_right)),
        "check_disagreed_when_wrong": _share(sum(not c.get("agreed") for c in on_wrong), len(on_wrong)),
        "accuracy_checked": _share(sum(checked), len(checked)),
        "accuracy_unchecked": _share(sum(unchecked), len(unchecked)),
        "caught_error_rate": sum(r.caught_error for r in results) / n,
    }


def self_check_metrics(results: Sequence[SelfCheck]) -> dict[str, float | None]:
    """:func:`summarize_self_checks` as ``behaviour/<key>`` metrics (``n`` left out: the step's size is known).

    Example:
        >>> sorted(self_check_metrics([SelfCheck(candidates=["4"], final_correct=True)]))[:2]
        ['behaviour/accuracy_checked', 'behaviour/accuracy_unchecked']
    """
    if not results:
        return {}
    return {f"behaviour/{k}": v for k, v in summarize_self_checks(results).items() if k != "n"}


def checks_of(records: Sequence[dict[str, Any]]) -> list[SelfCheck] | None:
    """The :class:`SelfCheck` of every record (trace or eval sample), or None when one has none.

    Example:
        >>> len(checks_of([{"self_check": {"checked": True}}])), checks_of([{"self_check": {}}, {}])
        (1, None)
    """
    out = [SelfCheck.from_dict(r.get("self_check")) for r in records]
    return None if any(c is None for c in out) else out  # type: ignore[return-value]


def _cell(key: str, value: Any) -> str:
    if not isinstance(value, int | float) or isinstance(value, bool):
        return "n/a"
    if key == "n":
        return str(value)
    return f"{value:+.1f}" if key == "net_corrections_per_100" else f"{value:.3f}"


def markdown_rows(results: dict[str, Any], base: dict[str, Any] | None) -> list[str]:
    """Rows ``| self_check.<key> | value | base value |`` for an eval's markdown table (no base column without base).

    Example:
        >>> markdown_rows({"self_check": {"n": 2, "check_rate": 0.5}}, {"self_check": {"check_rate": 0.0}})[3:5]
        ['| self_check.net_corrections_per_100 | n/a | n/a |', '| self_check.check_rate | 0.500 | 0.000 |']
    """
    mine = results.get("self_check")
    if not isinstance(mine, dict):
        return []
    theirs = (base or {}).get("self_check")
    theirs = theirs if isinstance(theirs, dict) else {}
    return [f"| self_check.{k} | {_cell(k, mine.get(k))} |" + (f" {_cell(k, theirs.get(k))} |" if base else "")
            for k in SELF_CHECK_KEYS if k != "n"]
