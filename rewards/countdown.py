"""Countdown reward: the answer expression must reach the target, each given number used at most once.

The expression is parsed with :mod:`ast` (never evaluated by Python) and computed
exactly with :class:`fractions.Fraction`.
"""

from __future__ import annotations

import ast
import logging
import math
import warnings
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, ClassVar

from rewards._base import RewardBase, check_option
from rewards.literals import parse_number_literal
from rewards.parsing import extract_answer

logger = logging.getLogger(__name__)

MAX_EXPRESSION_CHARS = 200

_REPLACEMENTS = (
    ("\\times", "*"),
    ("\\cdot", "*"),
    ("\\div", "/"),
    ("\\left", ""),
    ("\\right", ""),
    ("\u00d7", "*"),  # multiplication sign
    ("\u22c5", "*"),  # dot operator
    ("\u00b7", "*"),  # middle dot
    ("\u00f7", "/"),  # division sign
    ("\u2212", "-"),  # unicode minus sign
    ("$", ""),
)
_OPS = {
    ast.Add: lambda a, b: a + b,
    ast.Sub: lambda a, b: a - b,
    ast.Mult: lambda a, b: a * b,
    ast.Div: lambda a, b: a / b,
}


class _InvalidError(Exception):
    pass


def normalize_expression(answer: str) -> str:
    r"""The part before any ``=``, with multiplication/division signs and ``\times``/``\div`` as ``*``/``/``.

    >>> normalize_expression(r"$(1+2) \times 3 = 9$")
    '(1+2) * 3'
    """
    expr = answer.split("=", 1)[0]
    for old, new in _REPLACEMENTS:
        expr = expr.replace(old, new)
    return expr.strip()


def _evaluate(node: ast.AST, literals: list[int]) -> Fraction:
    """Exact value of an allowed expression node; collects the integer literals used."""
    if isinstance(node, ast.Expression):
        return _evaluate(node.body, literals)
    if isinstance(node, ast.Constant) and type(node.value) is int:
        literals.append(node.value)
        return Fraction(node.value)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        return -_evaluate(node.operand, literals)
    if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
        left = _evaluate(node.left, literals)
        right = _evaluate(node.right, literals)
        if isinstance(node.op, ast.Div) and right == 0:
            raise _InvalidError("division by zero")
        return _OPS[type(node.op)](left, right)
    raise _InvalidError(f"disallowed syntax: {type(node).__name__}")


def _as_fraction(value: Any) -> Fraction:
    """Exact value of a target: an int, a finite float, a Fraction, or a bounded number literal.

    Strings go through :func:`rewards.literals.parse_number_literal`, never ``Fraction(str)``,
    which would expand a hostile ``"1e999999999"`` into a billion-digit integer.
    """
    if isinstance(value, bool):
        raise _InvalidError("bool target")
    if isinstance(value, (int, Fraction)):
        return Fraction(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise _InvalidError("non-finite target")
        return Fraction(value)
    parsed = parse_number_literal(value if isinstance(value, str) else str(value))
    if parsed is None:
        raise _InvalidError("target is not a number")
    return parsed


def score_countdown(
    expression: str, numbers: Any, target: Any, *, require_all_numbers: bool = False
) -> float:
    """1.0 if ``expression`` equals ``target`` using each of ``numbers`` at most once, else 0.0.

    Only integer literals, ``+ - * /``, unary minus and parentheses are allowed;
    every literal must be one of ``numbers`` (as a multiset); with
    ``require_all_numbers`` every number must be used exactly once. Never raises.

    >>> score_countdown("(1 + 2) * 3", [1, 2, 3], 9), score_countdown("3 * 3", [1, 2, 3], 9)
    (1.0, 0.0)
    >>> score_countdown("__import__('os').system('echo hi')", [1, 2, 3], 9)
    0.0
    """
    try:
        if not isinstance(expression, str):
            return 0.0
        expr = normalize_expression(expression)
        if not expr or len(expr) > MAX_EXPRESSION_CHARS:
            return 0.0
        available = Counter(int(n) for n in numbers)
        goal = _as_fraction(target)
        literals: list[int] = []
        with warnings.catch_warnings():  # e.g. SyntaxWarning for odd string literals
            warnings.simplefilter("ignore")
            tree = ast.parse(expr, mode="eval")
        value = _evaluate(tree, literals)
        used = Counter(literals)
        if any(count > available[n] for n, count in used.items()):
            return 0.0
        if require_all_numbers and used != available:
            return 0.0
        return 1.0 if value == goal else 0.0
    except (_InvalidError, SyntaxError, ValueError, TypeError, ArithmeticError, RecursionError, MemoryError):
        return 0.0
    except Exception as exc:  # noqa: BLE001 - must never raise on model output
        logger.warning("countdown: unexpected %s on %r", type(exc).__name__, expression[:80])
        return 0.0


@dataclass(eq=False)
class CountdownReward(RewardBase):
    """Score the extracted answer with :func:`score_countdown` against the ``numbers`` and ``target`` columns.

    >>> reward = CountdownReward()
    >>> reward(completions=["<think>..</think><answer>(1+2)*3 = 9</answer>", "<answer>9</answer>"],
    ...        numbers=[[1, 2, 3], [1, 2, 3]], target=[9, 9])
    [1.0, 0.0]
    """

    name: ClassVar[str] = "countdown"
    required_columns: ClassVar[tuple[str, ...]] = ("numbers", "target")

    require_all_numbers: bool = False

    def validate(self) -> None:
        check_option(self.name, "require_all_numbers", self.require_all_numbers, bool)

    def score(self, text: str, row: Mapping[str, Any]) -> float:
        answer = extract_answer(text)
        if answer is None or row.get("numbers") is None or row.get("target") is None:
            return 0.0
        return score_countdown(
            answer, row["numbers"], row["target"], require_all_numbers=self.require_all_numbers
        )
