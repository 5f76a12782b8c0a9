"""Accuracy reward: the final answer must be mathematically equivalent to the gold one (math-verify)."""

from __future__ import annotations

import functools
import logging
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from math_verify import LatexExtractionConfig, parse, verify
from math_verify.errors import TimeoutException

from rewards._base import RewardBase, batch_inputs, check_option, preview
from rewards._math_guard import answer_text_is_tame, expr_is_tame
from rewards.parsing import extract_answer, extract_boxed

logger = logging.getLogger(__name__)

# LaTeX extraction only: math-verify's plain-expression path goes through sympy's parse_expr,
# which evaluates Python code; model text must never reach it.
_EXTRACTION = (LatexExtractionConfig(),)

_DELIMITERS = (("$$", "$$"), ("$", "$"), ("\\(", "\\)"), ("\\[", "\\]"))
# Thousands separators inside digit groups: 1{,}000  1\,000  1\ 000  1\!000
_THOUSANDS_RE = re.compile(r"(?<=\d)(?:\{,\}|\\[,! ;])(?=\d{3}(?!\d))")
_SPACED_INT_RE = re.compile(r"[+-]?\d{1,3}(?: \d{3})+")
_COMMA_INT_RE = re.compile(r"[+-]?\d{1,3}(?:,\d{3})+(?:\.\d+)?")
# A number written out: integer, decimal, p/q, or \frac{p}{q} (optionally signed).
_NUMBER_LITERAL_RE = re.compile(
    r"[+-]?\s*(?:\d+(?:\.\d*)?|\.\d+|\d+\s*/\s*\d+"
    r"|\\[dt]?frac\s*(?:\{\s*\d+\s*\}|\d)\s*(?:\{\s*\d+\s*\}|\d))"
)


def is_number_literal(text: str) -> bool:
    r"""True for a plain written-out number: ``42``, ``-3.5``, ``7/2``, ``\frac{7}{2}``.

    >>> is_number_literal("-7/2"), is_number_literal(r"\frac{1}{2}"), is_number_literal(r"\frac12")
    (True, True, True)
    >>> is_number_literal("44 * 6"), is_number_literal("2^3")
    (False, False)
    """
    return bool(_NUMBER_LITERAL_RE.fullmatch(text.strip()))


def _timeout(seconds: int) -> int | None:
    """math-verify's timeouts use SIGALRM, which only works on the main thread."""
    if seconds <= 0 or threading.current_thread() is not threading.main_thread():
        return None
    return seconds


def normalize_answer(text: str) -> str:
    r"""Light textual clean-up before parsing: unwrap ``\boxed``/``$``, drop thousands separators.

    >>> normalize_answer(r" $\boxed{1{,}000}$. ")
    '1000'
    >>> normalize_answer("2**10")
    '2^10'
    >>> normalize_answer("1,234,567")
    '1234567'
    """
    s = text.strip()
    inner = extract_boxed(s)
    if inner is not None:
        s = inner
    for left, right in _DELIMITERS:
        if len(s) >= len(left) + len(right) and s.startswith(left) and s.endswith(right):
            s = s[len(left) : len(s) - len(right)].strip()
            break
    s = s.rstrip(" .").replace("**", "^").replace("\u2212", "-")
    s = _THOUSANDS_RE.sub("", s)
    if _SPACED_INT_RE.fullmatch(s):
        s = s.replace(" ", "")
    if _COMMA_INT_RE.fullmatch(s):
        s = s.replace(",", "")
    return s


def _parse(text: str, timeout: int | None) -> list[Any]:
    r"""Parse with a ``\boxed{}`` anchor, falling back to ``$...$``; drop oversized expressions."""
    for wrapped in (f"\\boxed{{{text}}}", f"${text}$"):
        result = parse(
            wrapped, extraction_config=list(_EXTRACTION), parsing_timeout=timeout, raise_on_error=False
        )
        if result:
            if not all(isinstance(r, str) or expr_is_tame(r) for r in result):
                logger.debug("parsed answer too large to verify: %s", preview(text))
                return []
            return result
    return []


@functools.lru_cache(maxsize=4096)
def _parse_gold(gold: str, timeout: int | None) -> tuple[Any, ...]:
    """Parsed gold answer; cached because every gold repeats once per generation."""
    return tuple(_parse(normalize_answer(gold), timeout))


def is_equivalent(pred: str, gold: str, *, timeout_seconds: int = 2, literal_numbers: bool = False) -> bool:
    r"""True if the answer ``pred`` is mathematically equivalent to ``gold``; never raises.

    Answers longer than 1000 characters, or whose evaluation would blow up (huge
    powers, factorials), are never equivalent. ``timeout_seconds`` bounds parsing
    and verification on the main thread (0 disables it). With ``literal_numbers``, a
    numeric gold only accepts a written-out number: the unevaluated expression
    ``44 * 6`` is not an answer to "compute 44 * 6", even though sympy evaluates it to 264.

    >>> is_equivalent(r"\frac{1}{2}", "0.5"), is_equivalent("1+2x", "2x+1"), is_equivalent("4", "3")
    (True, True, False)
    >>> is_equivalent("44 * 6", "264"), is_equivalent("44 * 6", "264", literal_numbers=True)
    (True, False)
    """
    try:
        if not isinstance(pred, str) or not isinstance(gold, str):
            return False
        pred_n, gold_n = normalize_answer(pred), normalize_answer(gold)
        if not pred_n or not gold_n:
            return False
        if pred_n == gold_n:
            return True
        if literal_numbers and is_number_literal(gold_n) and not is_number_literal(pred_n):
            return False
        if not answer_text_is_tame(pred_n):
            logger.debug("answer too large or costly to verify: %s", preview(pred))
            return False
        timeout = _timeout(timeout_seconds)
        gold_parsed = _parse_gold(gold_n, timeout)
        pred_parsed = _parse(pred_n, timeout)
        if not gold_parsed or not pred_parsed:
            return False
        return bool(verify(list(gold_parsed), pred_parsed, timeout_seconds=timeout, raise_on_error=False))
    except (Exception, TimeoutException) as exc:  # noqa: BLE001 - TimeoutException is a BaseException
        logger.warning("is_equivalent failed (%s: %.100s) on %s", type(exc).__name__, exc, preview(pred))
        return False


@dataclass(eq=False)
class AccuracyReward(RewardBase):
    r"""1.0 if the extracted final answer is equivalent to the gold ``answer`` column, else 0.0.

    The answer is taken with :func:`rewards.parsing.extract_answer`. With
    ``literal_numbers`` (the default), a numeric gold needs a written-out number: a
    model must not earn credit by restating the problem (``<answer>62 + 46 * 75</answer>``)
    and letting the verifier do the arithmetic. If TRL passes
    ``log_extra``, the extracted answers are logged as column ``extracted_answer``;
    ``log_metric`` receives ``accuracy/extract_rate``.

    >>> reward = AccuracyReward()
    >>> reward(completions=[r"<think>half</think> \boxed{0.5}", "no idea"], answer=[r"\frac{1}{2}"] * 2)
    [1.0, 0.0]
    >>> reward.__name__, reward.required_columns
    ('accuracy', ('answer',))
    """

    name: ClassVar[str] = "accuracy"
    required_columns: ClassVar[tuple[str, ...]] = ("answer",)

    timeout_seconds: int = 2
    literal_numbers: bool = True

    def validate(self) -> None:
        check_option(self.name, "timeout_seconds", self.timeout_seconds, int)
        check_option(self.name, "literal_numbers", self.literal_numbers, bool)
        if self.timeout_seconds < 0:
            raise ValueError(
                f"reward 'accuracy': option 'timeout_seconds' must be >= 0, got {self.timeout_seconds}"
            )

    def score(self, text: str, row: Mapping[str, Any]) -> float:
        return self._score_answer(extract_answer(text), row.get("answer"))

    def _score_answer(self, pred: str | None, gold: Any) -> float:
        if pred is None:
            return 0.0
        if gold is None:
            return 0.0
        ok = is_equivalent(pred, str(gold), timeout_seconds=self.timeout_seconds,
                           literal_numbers=self.literal_numbers)
        return 1.0 if ok else 0.0

    def __call__(self, completions: Any = None, **kwargs: Any) -> list[float | None]:
        texts, rows = batch_inputs(completions, kwargs, self.required_columns, self.name)
        preds: list[str | None] = []
        scores: list[float | None] = []
        for text, row in zip(texts, rows, strict=True):
            try:
                pred = extract_answer(text)
            except Exception as exc:  # noqa: BLE001
                logger.warning("accuracy: extraction failed (%s) on %s", type(exc).__name__, preview(text))
                pred = None
            preds.append(pred)
            try:
                scores.append(self._score_answer(pred, row.get("answer")))
            except Exception as exc:  # noqa: BLE001
                logger.warning("accuracy: scoring failed (%s) on %s", type(exc).__name__, preview(text))
                scores.append(0.0)
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
