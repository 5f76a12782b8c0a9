r"""Plain number literals (``42``, ``-3.5``, ``7/2``, ``\frac{7}{2}``, ``\cfrac{7}{2}``), parsed exactly without sympy.

These helpers are linear-time, never evaluate anything but bounded integer arithmetic,
and never raise on model output. Only ASCII digits count (``int`` would also accept
other scripts' digits, which the LaTeX verifier does not).

>>> parse_number_literal(r"-\frac{7}{2}") == parse_number_literal("-3.5")
True
"""

from __future__ import annotations

import math
import re
from fractions import Fraction

__all__ = ["MAX_LITERAL_DIGITS", "MIN_REPEATING_PLACES", "is_number_literal", "literals_equal", "parse_number_literal"]

MAX_LITERAL_DIGITS = 1000
"""Literals with more digits than this are not parsed (no exact value, hence never equal)."""

_SIGN = r"(?P<sign>[+-]?)\s*"
_DECIMAL = r"(?P<int>\d+)(?:\.(?P<frac>\d*))?|\.(?P<frac_only>\d+)"
_RATIO = r"(?P<p>\d+)\s*/\s*(?P<q>\d+)"
_FRAC = (
    r"\\[dtc]?frac\s*(?:\{\s*(?P<fp>\d+)\s*\}|(?P<fp1>\d))\s*(?:\{\s*(?P<fq>\d+)\s*\}|(?P<fq1>\d))"
)
_LITERAL_RE = re.compile(rf"{_SIGN}(?:{_RATIO}|{_DECIMAL}|{_FRAC})", re.ASCII)


def is_number_literal(text: str) -> bool:
    r"""True for a plain written-out number: ``42``, ``-3.5``, ``7/2``, ``\frac{7}{2}``.

    >>> is_number_literal("-7/2"), is_number_literal(r"\frac{1}{2}"), is_number_literal(r"\frac12")
    (True, True, True)
    >>> is_number_literal("44 * 6"), is_number_literal("2^3"), is_number_literal("\u0663")
    (False, False, False)
    """
    return isinstance(text, str) and _LITERAL_RE.fullmatch(text.strip()) is not None


def parse_number_literal(text: str, *, max_digits: int = MAX_LITERAL_DIGITS) -> Fraction | None:
    r"""Exact value of a number literal, or None (not a literal, too many digits, zero denominator).

    >>> parse_number_literal("0.75"), parse_number_literal(r"\dfrac{3}{4}"), parse_number_literal("3/4")
    (Fraction(3, 4), Fraction(3, 4), Fraction(3, 4))
    >>> parse_number_literal("1/0") is None, parse_number_literal("2x") is None
    (True, True)
    >>> parse_number_literal("9" * 5000) is None
    True
    """
    if not isinstance(text, str) or len(text) > 4 * max_digits + 64:
        return None
    match = _LITERAL_RE.fullmatch(text.strip())
    if match is None:
        return None
    g = match.groupdict()
    digits = sum(len(v) for k, v in g.items() if k != "sign" and v)
    if digits > max_digits:
        return None
    if g["p"] is not None:
        num, den = int(g["p"]), int(g["q"])
    elif g["fp"] is not None or g["fp1"] is not None:
        num, den = int(g["fp"] or g["fp1"]), int(g["fq"] or g["fq1"])
    else:
        whole = g["int"] or "0"
        frac = g["frac"] or g["frac_only"] or ""
        num, den = int(whole + frac), 10 ** len(frac)
    if den == 0:
        return None
    value = Fraction(num, den)
    return -value if g["sign"] == "-" else value


MIN_REPEATING_PLACES = 6
"""A decimal with at least this many places states a fraction that no finite decimal equals (``1/3``)."""


def _decimal_places(text: str) -> int:
    match = _LITERAL_RE.fullmatch(text.strip())
    if match is None or match.group("p") is not None or match.group("fp") is not None or match.group("fp1"):
        return 0
    return len(match.group("frac") or match.group("frac_only") or "")


def _terminates(value: Fraction) -> bool:
    den = value.denominator
    for prime in (2, 5):
        while den % prime == 0:
            den //= prime
    return den == 1


def _states_repeating(decimal: str, value: Fraction, exact: Fraction) -> bool:
    """True when ``decimal`` (parsed as ``value``) writes ``exact``, a non-terminating fraction, to its last place."""
    if "." not in decimal:
        return False
    places = _decimal_places(decimal)
    if places < MIN_REPEATING_PLACES or places > MAX_LITERAL_DIGITS or _terminates(exact):
        return False
    scaled, written = exact * 10**places, value * 10**places
    cut = math.trunc(scaled)
    rounded = cut + (1 if scaled > 0 else -1) * (abs(scaled - cut) >= Fraction(1, 2))
    return written in (cut, rounded)


def literals_equal(a: str, b: str) -> bool | None:
    r"""Comparison of two number literals; None when either is not one (or cannot be parsed).

    Exact, with one allowance: a fraction that no finite decimal equals (``1/3``, ``1/12``)
    matches a decimal that writes it to at least six places, rounded or cut (``0.333333``,
    ``0.0833333333``); ``0.33`` is not ``1/3``.

    >>> literals_equal("0.5", r"\frac{1}{2}"), literals_equal("3", "3.0"), literals_equal("0.33", "1/3")
    (True, True, False)
    >>> literals_equal("0.333333", "1/3"), literals_equal(r"\frac{1}{12}", "0.0833333333333333")
    (True, True)
    >>> literals_equal("2x", "2x") is None
    True
    """
    x = parse_number_literal(a)
    if x is None:
        return None
    y = parse_number_literal(b)
    if y is None:
        return None
    return x == y or _states_repeating(a, x, y) or _states_repeating(b, y, x)
