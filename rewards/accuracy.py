r"""Accuracy reward: the final answer must be mathematically equivalent to the gold one (math-verify).

Checking an answer has three tiers, cheapest first:

1. **text** (no sympy): identical answers, numbers compared exactly with
   :class:`fractions.Fraction` (``0.5`` = ``\frac{1}{2}`` = ``1/2``) after harmless decoration
   is peeled off (``$8``, ``8 cm``, ``x = 8``, ``50\%``: :mod:`rewards.decoration`), and the size
   guards of :mod:`rewards._math_guard` that reject answers whose evaluation could blow up;
2. **math-verify/sympy**, for everything else (``2x+1`` = ``1+2x``, ``\sqrt{8}`` = ``2\sqrt{2}``);
3. with ``isolate`` (the reward's default) tier 2 runs in a reused worker process of
   :mod:`rewards.sandbox`, under a wall-clock limit per answer that holds from any thread;
   a worker that overruns is killed and replaced and the answer scores 0.0.

When the worker processes cannot start, answers are checked in this process on the main
thread (math-verify's ``SIGALRM`` limit, whole seconds) and the fallback is logged as an
error; on other threads, where no limit can be enforced, they score 0.0 with an error logged.

Model text only reaches math-verify's LaTeX extraction, never ``sympify``/``parse_expr``
(which evaluate Python code). math-verify and sympy are imported on first use.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, NamedTuple

from rewards._base import RewardBase, batch_inputs, check_option, preview
from rewards._math_guard import answer_text_is_tame
from rewards.decoration import number_core
from rewards.equivalence import sympy_equivalent
from rewards.literals import is_number_literal, literals_equal
from rewards.normalize import normalize_answer, normalize_gold
from rewards.parsing import ANSWER_SOURCES, extract_answer
from rewards.sandbox import UNAVAILABLE, get_pool
from rewards.sentences import sentence_number

logger = logging.getLogger(__name__)

__all__ = [
    "AccuracyReward",
    "QuickCheck",
    "check_answers",
    "clear_verdict_cache",
    "is_equivalent",
    "is_number_literal",
    "normalize_answer",
    "quick_check",
]

MAX_TIMEOUT_SECONDS = 3600.0
"""The largest per-answer ``timeout_seconds`` the reward accepts (an hour: a limit must stay a limit)."""

REFUSED_GOLD = "gold has several different final answers"

MAX_RAW_ANSWER_CHARS = 10_000
"""Answers (and golds) longer than this before normalisation are only compared as exact strings."""

VERDICT_CACHE_SIZE = 65_536

# (answer, gold) -> verdict, for answers sympy decided in time: a GRPO group often repeats an answer.
_VERDICTS: OrderedDict[tuple[str, str], bool] = OrderedDict()
_VERDICTS_LOCK = threading.Lock()


def clear_verdict_cache() -> None:
    """Forget the verdicts remembered for ``(answer, gold)`` pairs (for benchmarks and tests).

    >>> clear_verdict_cache()
    """
    with _VERDICTS_LOCK:
        _VERDICTS.clear()


def _cached_verdict(pred_n: str, gold_n: str) -> bool | None:
    with _VERDICTS_LOCK:
        verdict = _VERDICTS.get((pred_n, gold_n))
        if verdict is not None:
            _VERDICTS.move_to_end((pred_n, gold_n))
        return verdict


def _remember_verdict(pred_n: str, gold_n: str, verdict: bool) -> None:
    with _VERDICTS_LOCK:
        _VERDICTS[(pred_n, gold_n)] = verdict
        while len(_VERDICTS) > VERDICT_CACHE_SIZE:
            _VERDICTS.popitem(last=False)


def _timeout(seconds: float) -> int | None:
    """math-verify's timeouts use SIGALRM: main thread only, whole seconds (rounded up, at most an hour)."""
    if not seconds or not seconds > 0 or threading.current_thread() is not threading.main_thread():
        return None
    return max(1, math.ceil(min(seconds, MAX_TIMEOUT_SECONDS)))


class QuickCheck(NamedTuple):
    """Outcome of :func:`quick_check`: a verdict (None: sympy must decide), why, and the normalised texts."""

    verdict: bool | None
    reason: str
    pred: str
    gold: str


def quick_check(pred: Any, gold: Any, *, literal_numbers: bool = False) -> QuickCheck:
    r"""Decide what can be decided without sympy; ``verdict`` None means math-verify must decide.

    Never raises. Numbers are compared exactly, also under harmless decoration (``$8``,
    ``8 cm``, ``x = 8``, ``50\%``: :func:`rewards.decoration.number_core`); with
    ``literal_numbers``, a gold that is a number accepts only an answer that is one. A gold
    whose boxes disagree, a box hidden inside other text, and answers that are too long or
    whose evaluation could blow up are rejected here.

    >>> quick_check(r"\frac{1}{2}", "0.5").verdict, quick_check(r"\binom{1000000}{500000}", "1").reason
    (True, 'answer too costly to verify')
    >>> quick_check("x = 8 cm", r"\$8").reason, quick_check("44 * 6", "264", literal_numbers=True).reason
    ('same number', 'not a written-out number')
    >>> quick_check("1+2x", "2x+1")
    QuickCheck(verdict=None, reason='needs sympy', pred='1+2x', gold='2x+1')
    """
    try:
        if not isinstance(pred, str) or not isinstance(gold, str):
            return QuickCheck(False, "not a string", "", "")
        if len(pred) > MAX_RAW_ANSWER_CHARS or len(gold) > MAX_RAW_ANSWER_CHARS:
            same = pred.strip() == gold.strip() and bool(gold.strip())
            return QuickCheck(same, "identical" if same else "answer or gold too long", "", "")
        pred_n, gold_n = normalize_answer(pred), normalize_gold(gold)
        if gold_n is None:
            return QuickCheck(False, REFUSED_GOLD, pred_n, "")
        if not pred_n or not gold_n:
            return QuickCheck(False, "empty answer" if gold_n else "empty gold", pred_n, gold_n)
        if pred_n == gold_n:
            return QuickCheck(True, "identical", pred_n, gold_n)
        if "\\boxed" in pred_n or "\\fbox" in pred_n:
            return QuickCheck(False, "box inside other text", pred_n, gold_n)
        gold_number, pred_number = number_core(gold_n), number_core(pred_n)
        if gold_number is not None and pred_number is None:
            pred_number = sentence_number(pred_n)  # "Anne is 8 years old."
        if gold_number is not None and pred_number is not None:
            same = literals_equal(pred_number, gold_number) is True
            return QuickCheck(same, "same number" if same else "different number", pred_number, gold_number)
        if literal_numbers and gold_number is not None:
            return QuickCheck(False, "not a written-out number", pred_n, gold_number)
        pred_n, gold_n = pred_number or pred_n, gold_number or gold_n
        if not answer_text_is_tame(pred_n):
            return QuickCheck(False, "answer too costly to verify", pred_n, gold_n)
        if not answer_text_is_tame(gold_n):
            return QuickCheck(False, "gold too costly to verify", pred_n, gold_n)
        return QuickCheck(None, "needs sympy", pred_n, gold_n)
    except Exception as exc:  # noqa: BLE001 - must never raise on model output
        return QuickCheck(False, f"error: {type(exc).__name__}: {str(exc)[:100]}", "", "")


def _in_process(pred_n: str, gold_n: str, timeout_seconds: float) -> bool:
    try:
        return sympy_equivalent(pred_n, gold_n, timeout=_timeout(timeout_seconds))
    except BaseException as exc:  # math-verify's TimeoutException is a BaseException
        if isinstance(exc, (KeyboardInterrupt, SystemExit)):
            raise
        logger.warning("is_equivalent failed (%s: %.100s) on %s", type(exc).__name__, exc, preview(pred_n))
        return False


_REFUSED_GOLDS: OrderedDict[str, None] = OrderedDict()
_FALLBACK_LOCK = threading.Lock()
_FALLBACK_LOG_SECONDS = 60.0
_last_fallback_log = -math.inf


def _warn_refused_gold(gold: Any) -> None:
    """Log, once per gold, that a gold whose final answers disagree is refused (every answer to it scores 0.0)."""
    key = str(gold)[:2000]
    with _FALLBACK_LOCK:
        if key in _REFUSED_GOLDS:
            return
        _REFUSED_GOLDS[key] = None
        while len(_REFUSED_GOLDS) > 1024:
            _REFUSED_GOLDS.popitem(last=False)
    logger.error("accuracy: gold answer %s has several final answers (\\boxed{} or 'final answer is $...$') "
                 "that disagree and do not form one group; every answer to it scores 0.0 (fix the dataset: one "
                 "answer, or boxes side by side)", preview(gold))


def _isolated(keys: list[tuple[str, str]], timeout_seconds: float) -> list[tuple[bool, str]]:
    try:
        return [(v.equivalent, v.reason) for v in get_pool().check(keys, timeout_seconds=timeout_seconds)]
    except Exception as exc:  # noqa: BLE001 - a reward must never raise
        logger.error("accuracy: the verifier pool failed (%s: %.200s)", type(exc).__name__, exc)
        return [(False, UNAVAILABLE)] * len(keys)


def _fall_back(keys: list[tuple[str, str]], results: list[tuple[bool, str]], timeout_seconds: float
               ) -> list[tuple[bool, str]]:
    """Check in this process what the workers could not: on the main thread (SIGALRM limit), else score 0.0."""
    global _last_fallback_log
    missing = [i for i, (_ok, reason) in enumerate(results) if reason == UNAVAILABLE]
    if not missing:
        return results
    if threading.current_thread() is not threading.main_thread():
        logger.error("accuracy: the verifier workers are unavailable and this is not the main thread, where no "
                     "time limit can be enforced in-process: %d answer(s) that need sympy scored 0.0 "
                     "(see the errors above for why the workers did not start)", len(missing))
        return results
    now = time.monotonic()
    with _FALLBACK_LOCK:
        loud = now - _last_fallback_log >= _FALLBACK_LOG_SECONDS
        if loud:
            _last_fallback_log = now
    if loud:
        logger.error("accuracy: the verifier workers are unavailable; checking %d answer(s) in this process on "
                     "the main thread under math-verify's SIGALRM limit (whole seconds) instead (logged once a "
                     "minute while it lasts; see the errors above for why the workers did not start)",
                     len(missing))
    results = list(results)
    for i in missing:
        ok = _in_process(keys[i][0], keys[i][1], timeout_seconds)
        results[i] = (ok, "equivalent" if ok else "different")
    return results


def check_answers(
    pairs: Sequence[tuple[Any, Any]],
    *,
    timeout_seconds: float = 2.0,
    literal_numbers: bool = False,
    isolate: bool = True,
) -> list[tuple[bool, str]]:
    r"""``(equivalent, reason)`` for each ``(pred, gold)`` pair; never raises.

    Pairs that :func:`quick_check` cannot decide go to math-verify: with ``isolate``, as one
    batch to the worker pool of :mod:`rewards.sandbox`, each under a ``timeout_seconds``
    wall-clock limit (from any thread); without, in this process (math-verify's SIGALRM
    timeout on the main thread, rounded up to whole seconds; the size guards only elsewhere).
    When the workers cannot start, the isolated path falls back to the in-process one on the
    main thread, and scores 0.0 with reason ``"verifier unavailable"`` elsewhere; both are
    logged as errors.

    >>> check_answers([("0.5", r"\frac{1}{2}"), ("2x+1", "1+2x"), ("3", "4")], isolate=False)
    [(True, 'same number'), (True, 'equivalent'), (False, 'different number')]
    """
    out: list[tuple[bool, str]] = [(False, "not checked")] * len(pairs)
    todo: dict[tuple[str, str], list[int]] = {}  # each distinct pair is verified once
    for i, pair in enumerate(pairs):
        try:
            pred, gold = pair
        except Exception:  # noqa: BLE001
            out[i] = (False, "not a (pred, gold) pair")
            continue
        quick = quick_check(pred, gold, literal_numbers=literal_numbers)
        if quick.verdict is not None:
            out[i] = (quick.verdict, quick.reason)
            if quick.reason == REFUSED_GOLD:
                _warn_refused_gold(gold)
            continue
        cached = _cached_verdict(quick.pred, quick.gold)
        if cached is not None:
            out[i] = (cached, "equivalent" if cached else "different")
        else:
            todo.setdefault((quick.pred, quick.gold), []).append(i)
    if not todo:
        return out
    keys = list(todo)
    if isolate:
        results = _fall_back(keys, _isolated(keys, timeout_seconds), timeout_seconds)
    else:
        results = []
        for p, g in keys:
            ok = _in_process(p, g, timeout_seconds)
            results.append((ok, "equivalent" if ok else "different"))
    for key, (ok, reason) in zip(keys, results, strict=True):
        if reason in ("equivalent", "different"):
            _remember_verdict(key[0], key[1], ok)
        for i in todo[key]:
            out[i] = (ok, reason)
    return out


def is_equivalent(
    pred: str,
    gold: str,
    *,
    timeout_seconds: float = 2,
    literal_numbers: bool = False,
    isolate: bool = False,
) -> bool:
    r"""True if the answer ``pred`` is mathematically equivalent to ``gold``; never raises.

    Answers longer than 1000 characters (after normalisation), or whose evaluation would blow
    up (huge powers, factorials), are never equivalent. Plain number literals are compared
    exactly, without sympy. With ``isolate``, math-verify runs in a worker process under a
    ``timeout_seconds`` wall-clock limit that works from any thread (see :mod:`rewards.sandbox`);
    without (the default here), ``timeout_seconds`` bounds parsing and verification on the main
    thread only, rounded up to whole seconds (0 disables it). With ``literal_numbers``, a
    numeric gold only accepts a written-out number: the unevaluated expression ``44 * 6`` is not
    an answer to "compute 44 * 6", even though sympy evaluates it to 264.

    >>> is_equivalent(r"\frac{1}{2}", "0.5"), is_equivalent("1+2x", "2x+1"), is_equivalent("4", "3")
    (True, True, False)
    >>> is_equivalent("44 * 6", "264"), is_equivalent("44 * 6", "264", literal_numbers=True)
    (True, False)
    """
    try:
        [(ok, _reason)] = check_answers(
            [(pred, gold)], timeout_seconds=timeout_seconds, literal_numbers=literal_numbers, isolate=isolate
        )
        return ok
    except Exception as exc:  # noqa: BLE001 - defensive: never raise
        logger.warning("is_equivalent failed (%s: %.100s) on %s", type(exc).__name__, exc, preview(pred))
        return False


@dataclass(eq=False)
class AccuracyReward(RewardBase):
    r"""1.0 if the extracted final answer is equivalent to the gold ``answer`` column, else 0.0.

    The answer is taken with :func:`rewards.parsing.extract_answer` and checked with
    :func:`check_answers`; numbers are compared under harmless decoration (``$8``, ``8 cm``,
    ``x = 8``, ``50\%``). With ``literal_numbers`` (the default), a numeric gold needs a
    written-out number: a model must not earn credit by restating the problem
    (``<answer>62 + 46 * 75</answer>``) and letting the verifier do the arithmetic. With
    ``isolate`` (the default), answers that need sympy are checked in a reused worker process,
    each under a ``timeout_seconds`` wall-clock limit (a float up to 3600; from any thread); an
    answer that overruns scores 0.0 and its worker is replaced. Without it, they are checked in
    this process (``timeout_seconds`` rounded up, enforced on the main thread only; 0 disables
    it). ``answer_source`` says where the answer is read: ``any`` (the default) takes the
    ``<answer>...</answer>`` blocks, else the final ``\boxed{}`` or "final answer is $...$";
    ``tags`` only the answer blocks (a box inside one is fine), so a completion without answer
    tags scores 0.0 (for a recipe whose model must learn to put its answer in the tags). If
    TRL passes ``log_extra``, the extracted answers are logged as column ``extracted_answer``;
    ``log_metric`` receives ``accuracy/extract_rate``. Never raises.

    >>> reward = AccuracyReward()
    >>> reward(completions=[r"<think>half</think> \boxed{0.5}", "no idea"], answer=[r"\frac{1}{2}"] * 2)
    [1.0, 0.0]
    >>> reward(completions=["<answer>$8</answer>", "<answer>44 * 6</answer>"], answer=["8", "264"])
    [1.0, 0.0]
    >>> reward.__name__, reward.required_columns
    ('accuracy', ('answer',))
    >>> AccuracyReward(isolate=False)(completions=["<answer>1+2x</answer>"], answer=["2x+1"])
    [1.0]
    >>> tags = AccuracyReward(answer_source="tags")
    >>> tags(completions=[r"<think>6+2</think> \boxed{8}", r"<think>6+2</think> <answer>\boxed{8}</answer>"],
    ...      answer=["8", "8"])
    [0.0, 1.0]
    >>> AccuracyReward(answer_source="box")
    Traceback (most recent call last):
    ...
    ValueError: reward 'accuracy': option 'answer_source' must be one of any, tags, got 'box'
    """

    name: ClassVar[str] = "accuracy"
    required_columns: ClassVar[tuple[str, ...]] = ("answer",)

    timeout_seconds: float = 2.0
    literal_numbers: bool = True
    isolate: bool = True
    answer_source: str = "any"

    def validate(self) -> None:
        check_option(self.name, "timeout_seconds", self.timeout_seconds, (int, float))
        check_option(self.name, "literal_numbers", self.literal_numbers, bool)
        check_option(self.name, "isolate", self.isolate, bool)
        check_option(self.name, "answer_source", self.answer_source, str)
        if self.answer_source not in ANSWER_SOURCES:
            raise ValueError(f"reward 'accuracy': option 'answer_source' must be one of "
                             f"{', '.join(ANSWER_SOURCES)}, got {self.answer_source!r}")
        t = self.timeout_seconds
        if not math.isfinite(t) or t < 0 or t > MAX_TIMEOUT_SECONDS:
            raise ValueError(f"reward 'accuracy': option 'timeout_seconds' must be between 0 and "
                             f"{MAX_TIMEOUT_SECONDS:g} seconds (a limit per answer), got {t}")
        if self.isolate and t == 0:
            raise ValueError("reward 'accuracy': option 'timeout_seconds' must be > 0 with isolate: true "
                             "(0, no limit, is only allowed with isolate: false)")

    def score(self, text: str, row: Mapping[str, Any]) -> float:
        return self._scores([extract_answer(text, self.answer_source)], [row.get("answer")])[0]

    def _scores(self, preds: Sequence[str | None], golds: Sequence[Any]) -> list[float]:
        scores = [0.0] * len(preds)
        pairs: list[tuple[str, str]] = []
        where: list[int] = []
        for i, (pred, gold) in enumerate(zip(preds, golds, strict=True)):
            if pred is None or gold is None:
                continue
            try:
                gold_text = gold if isinstance(gold, str) else str(gold)
            except Exception as exc:  # noqa: BLE001 - e.g. an int too long for str()
                logger.warning("accuracy: unusable gold answer (%s); scoring 0.0", type(exc).__name__)
                continue
            pairs.append((pred, gold_text))
            where.append(i)
        results = check_answers(
            pairs, timeout_seconds=self.timeout_seconds, literal_numbers=self.literal_numbers, isolate=self.isolate
        )
        for i, (ok, reason) in zip(where, results, strict=True):
            scores[i] = 1.0 if ok else 0.0
            if reason.startswith("error"):  # timeouts and crashes are logged by rewards.sandbox
                logger.warning("accuracy: %s on answer %s (gold %s); scored 0.0",
                               reason, preview(preds[i]), preview(golds[i]))
        return scores

    def __call__(self, completions: Any = None, **kwargs: Any) -> list[float | None]:
        texts, rows = batch_inputs(completions, kwargs, self.required_columns, self.name)
        preds: list[str | None] = []
        for text in texts:
            try:
                pred = extract_answer(text, self.answer_source)
            except Exception as exc:  # noqa: BLE001
                logger.warning("accuracy: extraction failed (%s) on %s", type(exc).__name__, preview(text))
                pred = None
            preds.append(pred)
        try:
            scores: list[float | None] = list(self._scores(preds, [row.get("answer") for row in rows]))
        except Exception as exc:  # noqa: BLE001 - a reward must never raise
            logger.warning("accuracy: scoring failed (%s: %.100s)", type(exc).__name__, exc)
            scores = [0.0] * len(texts)
        self._log(kwargs, preds)
        return scores

    def _log(self, kwargs: Mapping[str, Any], preds: list[str | None]) -> None:
        log_extra, log_metric = kwargs.get("log_extra"), kwargs.get("log_metric")
        try:
            if callable(log_extra):
                log_extra("extracted_answer", [p if p is not None else "" for p in preds])
            if callable(log_metric) and preds:
                log_metric(f"{self.name}/extract_rate", sum(p is not None for p in preds) / len(preds))
        except Exception as exc:  # noqa: BLE001 - logging must not break training
            logger.warning("accuracy: logging callbacks failed (%s: %.100s)", type(exc).__name__, exc)
