"""Binary expression trees over integers: exact evaluation and rendering with minimal parentheses.

Used by the generated tasks, which compute golds from the structure they built (never by
evaluating strings).

Example:
    >>> from fractions import Fraction
    >>> tree = BinOp("*", BinOp("-", Num(17), Num(5)), Num(3))
    >>> render(tree)
    '(17 - 5) * 3'
    >>> evaluate(tree, Fraction)
    Fraction(36, 1)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

__all__ = ["BinOp", "Expr", "Num", "OPERATORS", "apply_op", "evaluate", "leaves", "render"]

OPERATORS: tuple[str, ...] = ("+", "-", "*", "/")
_PRECEDENCE = {"+": 1, "-": 1, "*": 2, "/": 2}


@dataclass(frozen=True)
class Num:
    """A positive integer literal."""

    value: int


@dataclass(frozen=True)
class BinOp:
    """``left op right`` with ``op`` one of ``+ - * /``."""

    op: str
    left: Expr
    right: Expr


Expr = Num | BinOp


def apply_op(op: str, a: Any, b: Any) -> Any:
    """``a op b`` for one of ``+ - * /`` (ZeroDivisionError on ``/ 0``).

    Example:
        >>> apply_op("-", 3, 5)
        -2
    """
    if op == "+":
        return a + b
    if op == "-":
        return a - b
    if op == "*":
        return a * b
    if op == "/":
        if b == 0:
            raise ZeroDivisionError("division by zero in generated expression")
        return a / b
    raise ValueError(f"unknown operator {op!r}")


def evaluate(expr: Expr, number: Callable[[int], Any]) -> Any:
    """Exact value of ``expr``; ``number`` lifts a literal (``fractions.Fraction``, ``sympy.Integer``).

    Example:
        >>> import sympy
        >>> evaluate(BinOp("/", Num(3), Num(4)), sympy.Integer)
        3/4
    """
    if isinstance(expr, Num):
        return number(expr.value)
    return apply_op(expr.op, evaluate(expr.left, number), evaluate(expr.right, number))


def render(expr: Expr) -> str:
    """Infix text of ``expr`` with only the parentheses its structure needs.

    A right operand of ``-`` or ``/`` is parenthesised at equal precedence, so the text
    parses back (with the usual left-to-right rules) to a tree of the same value.

    Example:
        >>> render(BinOp("-", Num(9), BinOp("-", Num(4), Num(2))))
        '9 - (4 - 2)'
        >>> render(BinOp("+", BinOp("*", Num(2), Num(3)), Num(4)))
        '2 * 3 + 4'
    """
    if isinstance(expr, Num):
        return str(expr.value)
    prec = _PRECEDENCE[expr.op]
    left = render(expr.left)
    if isinstance(expr.left, BinOp) and _PRECEDENCE[expr.left.op] < prec:
        left = f"({left})"
    right = render(expr.right)
    if isinstance(expr.right, BinOp):
        right_prec = _PRECEDENCE[expr.right.op]
        if right_prec < prec or (right_prec == prec and expr.op in "-/"):
            right = f"({right})"
    return f"{left} {expr.op} {right}"


def leaves(expr: Expr) -> list[int]:
    """The literals of ``expr`` from left to right.

    Example:
        >>> leaves(BinOp("+", Num(1), BinOp("*", Num(2), Num(3))))
        [1, 2, 3]
    """
    if isinstance(expr, Num):
        return [expr.value]
    return leaves(expr.left) + leaves(expr.right)
