"""Binary expression trees over integers: exact evaluation, rendering with minimal parentheses, parsing.

Used by the generated tasks, which compute golds from the structure they built (never by
evaluating strings), by the cold-start writer (which reads a problem back into its tree) and
by the self-check measure (which evaluates the arithmetic a model writes, never with ``eval``).

Example:
    >>> from fractions import Fraction
    >>> tree = BinOp("*", BinOp("-", Num(17), Num(5)), Num(3))
    >>> render(tree)
    '(17 - 5) * 3'
    >>> evaluate(tree, Fraction)
    Fraction(36, 1)
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

__all__ = ["BinOp", "Expr", "Num", "OPERATORS", "apply_op", "evaluate", "leaves", "parse_expression", "render"]

OPERATORS: tuple[str, ...] = ("+", "-", "*", "/")
_PRECEDENCE = {"+": 1, "-": 1, "*": 2, "/": 2}


@dataclass(frozen=True)
class Num:
    """A number literal: a positive integer in generated problems (parsed text may also hold a decimal)."""

    value: int | Fraction


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


_TOKEN = re.compile(r"\s*(\d+(?:\.\d+)?|[-+*/()])")
#: Deeper nesting (parentheses and unary minus together) is refused rather than recursed into.
MAX_NESTING = 40


def parse_expression(text: str) -> Expr:
    """Parse ``1 + 2 * (3 - 4)`` (numbers, ``+ - * /``, parentheses, unary minus) into a tree.

    The usual precedence, left to right: the inverse of :func:`render`. A decimal literal
    becomes an exact :class:`fractions.Fraction`, a minus sign before a number a negative
    literal (``-6``), before a parenthesis ``-1 * (...)``. Nesting deeper than
    :data:`MAX_NESTING` is an error, not a deep recursion.

    Example:
        >>> render(parse_expression("9 - (4 - 2) * 3"))
        '9 - (4 - 2) * 3'
        >>> evaluate(parse_expression("3 * (-6) + 7.5"), Fraction)
        Fraction(-21, 2)
        >>> parse_expression("2 +")
        Traceback (most recent call last):
        ...
        ValueError: cannot parse '2 +': expected a number or '(' at the end
    """
    tokens, pos = [], 0
    while pos < len(text.rstrip()):
        m = _TOKEN.match(text, pos)
        if m is None:
            raise ValueError(f"cannot parse {text!r}: unexpected {text[pos:].strip()[:10]!r}")
        tokens.append(m.group(1))
        pos = m.end()
    index = 0

    def peek() -> str | None:
        return tokens[index] if index < len(tokens) else None

    def take() -> str:
        nonlocal index
        token = peek()
        if token is None:
            raise ValueError(f"cannot parse {text!r}: expected a number or '(' at the end")
        index += 1
        return token

    def atom(depth: int) -> Expr:
        if depth > MAX_NESTING:
            raise ValueError(f"cannot parse {text[:40]!r}...: nested deeper than {MAX_NESTING}")
        token = take()
        if token == "(":
            inner = sum_(depth + 1)
            if take() != ")":
                raise ValueError(f"cannot parse {text!r}: missing ')'")
            return inner
        if token == "-":
            operand = atom(depth + 1)
            return Num(-operand.value) if isinstance(operand, Num) else BinOp("*", Num(-1), operand)
        if not token[0].isdigit():
            raise ValueError(f"cannot parse {text!r}: unexpected {token!r}")
        return Num(int(token) if token.isdigit() else Fraction(token))

    def product(depth: int) -> Expr:
        node = atom(depth)
        while peek() in ("*", "/"):
            node = BinOp(take(), node, atom(depth))
        return node

    def sum_(depth: int) -> Expr:
        node = product(depth)
        while peek() in ("+", "-"):
            node = BinOp(take(), node, product(depth))
        return node

    tree = sum_(0)
    if peek() is not None:
        raise ValueError(f"cannot parse {text!r}: unexpected {peek()!r}")
    return tree
