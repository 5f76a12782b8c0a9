r"""Size guards that keep sympy away from answers whose evaluation would never finish.

math-verify's LaTeX parser evaluates a few things eagerly (``\binom``, ``\gcd``,
``\Gamma``, matrix operators) and ``verify`` evaluates numbers, so a short answer
like ``9^{9^{9^9}}`` or ``\binom{10^6}{5\cdot 10^5}`` can hang. These checks reject such
answers cheaply, before any parsing; :mod:`rewards.sandbox` bounds the time of whatever gets
through (without it, off the main thread, the guards are the only protection). sympy is
imported on first use.
"""

from __future__ import annotations

import functools
import math
import re
from typing import Any

MAX_ANSWER_CHARS = 1000
MAX_DIGITS = 20_000  # any numeric sub-expression: at most this many decimal digits
MAX_EXPONENT = 10_000  # any exponent / factorial argument: at most this in absolute value
MAX_NODES = 2_000
MAX_DEPTH = 200
MAX_MATRIX_ENTRIES = 400
MAX_NESTING = 8  # brackets ( [ { inside each other; the LaTeX parser slows down ~50 ms per level
MAX_OPERATOR_RUN = 8  # consecutive operator characters, e.g. "1+++...+1" or "-----1"

_LOG10_2 = math.log10(2)
_LOG_MAX_EXPONENT = math.log10(MAX_EXPONENT)

# Commands the LaTeX parser evaluates while parsing; allowed only with small literal arguments.
_EAGER_RE = re.compile(r"\\(?:[dt]?binom|choose|gcd|lcm|Gamma|gamma)(?![A-Za-z])")
_FORBIDDEN_RE = re.compile(
    r"\\det(?![A-Za-z])|\\operatorname\s*\{\s*(?:eye|rank|trace|tr|rref|nullspace|norm|cols|rows|eig\w*"
    r"|diagonalize|svd|SVD|zeros|ones|diag|hstack|vstack|orth\w*|gcd|lcm)\s*\}"
)
_LONG_INT_RE = re.compile(r"\d{5}")
_OPERATOR_RUN_RE = re.compile(rf"[-+*/^_!'.,=<>|]{{{MAX_OPERATOR_RUN + 1}}}")
_CONTROL_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")  # and lone surrogates
_OPENERS = frozenset("([{")
_CLOSERS = frozenset(")]}")


@functools.cache
def _sympy_types() -> tuple[Any, type, tuple[type, ...]]:
    """``(sympy, MatrixBase, factorial-like classes)``, imported on first use (sympy is slow to import)."""
    import sympy
    from sympy.matrices.matrixbase import MatrixBase

    factorial_like = (
        sympy.factorial,
        sympy.factorial2,
        sympy.subfactorial,
        sympy.gamma,
        sympy.binomial,
        sympy.RisingFactorial,
        sympy.FallingFactorial,
    )
    return sympy, MatrixBase, factorial_like


class _TooBigError(Exception):
    pass


def nesting_depth(text: str) -> int:
    """Deepest nesting of ``( [ {`` brackets in ``text`` (unbalanced closers are ignored).

    >>> nesting_depth(r"\\frac{(1+2)}{3}"), nesting_depth("((("), nesting_depth("x")
    (2, 3, 0)
    """
    depth = deepest = 0
    for ch in text:
        if ch in _OPENERS:
            depth += 1
            deepest = max(deepest, depth)
        elif ch in _CLOSERS and depth:
            depth -= 1
    return deepest


def answer_text_is_tame(text: str) -> bool:
    r"""Cheap pre-parse check of an answer string: length, nesting, operator runs, control
    characters and eagerly evaluated commands.

    >>> answer_text_is_tame(r"\binom{10}{3}"), answer_text_is_tame(r"\left(\frac{1}{2}\right)^{2}")
    (True, True)
    >>> answer_text_is_tame(r"\binom{1000000}{500000}"), answer_text_is_tame("1" * 2000)
    (False, False)
    >>> answer_text_is_tame("(" * 20 + "x" + ")" * 20), answer_text_is_tame("-" * 50 + "1")
    (False, False)
    >>> answer_text_is_tame("4\x002")
    False
    """
    if not isinstance(text, str) or len(text) > MAX_ANSWER_CHARS:
        return False
    if _CONTROL_RE.search(text) or _OPERATOR_RUN_RE.search(text) or nesting_depth(text) > MAX_NESTING:
        return False
    if "\\" in text:
        if _FORBIDDEN_RE.search(text):
            return False
        eager = _EAGER_RE.findall(text)
        if len(eager) > 1 or (eager and ("^" in text or "!" in text or _LONG_INT_RE.search(text))):
            return False
    return True


def _int_mag(value: int) -> float:
    return abs(value).bit_length() * _LOG10_2


class _Walker:
    """Upper bound of log10|value| of every sub-expression, raising ``_TooBigError`` past the limits."""

    def __init__(self) -> None:
        self.nodes = 0
        self.sympy, self.matrix_base, self.factorial_like = _sympy_types()

    def mag(self, node: Any, depth: int = 0) -> float:
        self.nodes += 1
        if self.nodes > MAX_NODES or depth > MAX_DEPTH:
            raise _TooBigError("expression too large")
        result = self._mag(node, depth)
        if result > MAX_DIGITS:
            raise _TooBigError("number too large")
        return result

    def _bounded(self, node: Any, depth: int) -> float:
        """Upper bound of |node| itself; it must not exceed MAX_EXPONENT."""
        m = self.mag(node, depth + 1)
        if m > _LOG_MAX_EXPONENT:
            raise _TooBigError("exponent too large")
        return 10.0**m

    def _mag(self, node: Any, depth: int) -> float:
        sympy = self.sympy
        if isinstance(node, self.matrix_base):
            if node.rows * node.cols > MAX_MATRIX_ENTRIES:
                raise _TooBigError("matrix too large")
            return max((self.mag(x, depth + 1) for x in node), default=0.0)
        if isinstance(node, bool) or not isinstance(node, (sympy.Basic, int)):
            return 0.0
        if isinstance(node, int):
            return _int_mag(node)
        if node.is_Integer:
            return _int_mag(int(node))
        if node.is_Rational:
            return (node.p.bit_length() - node.q.bit_length() + 1) * _LOG10_2
        if node.is_Float:
            _sign, man, exp, bc = node._mpf_
            return (exp + bc) * _LOG10_2 if man else 0.0
        if node.is_NumberSymbol:
            return 1.0
        if node.is_Pow:
            base, exponent = node.args
            return self._bounded(exponent, depth) * abs(self.mag(base, depth + 1))
        if isinstance(node, sympy.exp):
            return self._bounded(node.args[0], depth) * math.log10(math.e)
        if isinstance(node, self.factorial_like):
            bound = max((self._bounded(a, depth) for a in node.args), default=1.0)
            return bound * math.log10(bound + 1.0)
        if isinstance(node, (sympy.Sum, sympy.Product)):
            for limit in node.limits:
                for bound in limit[1:]:
                    self._bounded(bound, depth)
        mags = [self.mag(arg, depth + 1) for arg in node.args]
        if node.is_Mul:
            return sum(mags)
        if node.is_Add:
            return max(mags, default=0.0) + math.log10(max(len(mags), 1))
        return max(mags, default=0.0)


def expr_is_tame(expr: Any) -> bool:
    """True if evaluating the parsed ``expr`` stays small (bounded exponents, digits and size).

    >>> import sympy
    >>> expr_is_tame(sympy.Pow(10, 100, evaluate=False))
    True
    >>> expr_is_tame(sympy.Pow(9, sympy.Pow(9, 9, evaluate=False), evaluate=False))
    False
    """
    try:
        _Walker().mag(expr)
    except (_TooBigError, RecursionError, OverflowError):
        return False
    return True
