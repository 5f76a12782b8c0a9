r"""math-verify's verdict on two answers: the sympy tier of the accuracy reward, shared with its workers.

Both :mod:`rewards.accuracy` (in-process checks) and :mod:`rewards._sandbox_worker` (the
isolated verifier processes) call :func:`sympy_equivalent`; neither reaches into the other.
Model text only reaches math-verify's LaTeX extraction, never ``sympify``/``parse_expr``.
math-verify and sympy are imported on first use.

>>> sympy_equivalent("1+2x", "2x+1")
True
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any

from rewards._base import preview
from rewards._math_guard import expr_is_tame

logger = logging.getLogger(__name__)

__all__ = ["gold_is_cached", "parse_gold", "sympy_equivalent"]

GOLD_CACHE_SIZE = 4096

_GOLD_CACHE: dict[str, tuple[Any, ...]] = {}


@functools.cache
def _math_verify() -> tuple[Callable[..., Any], Callable[..., Any], tuple[Any, ...]]:
    """``(parse, verify, extraction config)``, imported on first use.

    LaTeX extraction only: math-verify's plain-expression path goes through sympy's
    ``parse_expr``, which evaluates Python code; model text must never reach it.
    """
    from math_verify import LatexExtractionConfig, parse, verify

    return parse, verify, (LatexExtractionConfig(),)


def _parse(text: str, timeout: int | None) -> list[Any]:
    r"""Parse with a ``\boxed{}`` anchor, falling back to ``$...$``; drop oversized expressions."""
    parse, _verify, extraction = _math_verify()
    for wrapped in (f"\\boxed{{{text}}}", f"${text}$"):
        result = parse(wrapped, extraction_config=list(extraction), parsing_timeout=timeout, raise_on_error=False)
        if result:
            if not all(isinstance(r, str) or expr_is_tame(r) for r in result):
                logger.debug("parsed answer too large to verify: %s", preview(text))
                return []
            return result
    return []


def gold_is_cached(gold_n: str) -> bool:
    """True if the normalised gold answer ``gold_n`` has been parsed already (in this process).

    >>> gold_is_cached("never seen before 12345")
    False
    """
    return gold_n in _GOLD_CACHE


def parse_gold(gold_n: str, timeout: int | None) -> tuple[Any, ...]:
    """Parsed gold answer (a tuple, empty when unparseable); cached because every gold repeats once per generation.

    >>> len(parse_gold("2x+1", None)) > 0
    True
    """
    cached = _GOLD_CACHE.get(gold_n)
    if cached is None:
        cached = tuple(_parse(gold_n, timeout))
        if len(_GOLD_CACHE) >= GOLD_CACHE_SIZE:
            _GOLD_CACHE.pop(next(iter(_GOLD_CACHE)), None)
        _GOLD_CACHE[gold_n] = cached
    return cached


def sympy_equivalent(
    pred_n: str, gold_n: str, *, timeout: int | None = None, before_gold: Callable[[], Any] | None = None
) -> bool:
    r"""math-verify's verdict on two answers already through :func:`rewards.accuracy.quick_check` (may raise, may be slow).

    ``timeout`` is math-verify's SIGALRM limit (whole seconds, main thread only, None for none).
    ``before_gold`` is called before an uncached gold is parsed (the sandbox uses it to tell a
    hostile gold from a hostile answer). Use :func:`rewards.accuracy.is_equivalent` unless you bound the time yourself.

    >>> sympy_equivalent("1+2x", "2x+1"), sympy_equivalent(r"\sqrt{8}", r"2\sqrt{2}")
    (True, True)
    """
    if before_gold is not None and gold_n not in _GOLD_CACHE:
        before_gold()
    gold_parsed = parse_gold(gold_n, timeout)
    if not gold_parsed:
        return False
    pred_parsed = _parse(pred_n, timeout)
    if not pred_parsed:
        return False
    _parse_fn, verify, _extraction = _math_verify()
    return bool(verify(list(gold_parsed), pred_parsed, timeout_seconds=timeout, raise_on_error=False))
