"""``arithmetic``: generated multi-step integer/fraction arithmetic, e.g. ``Compute: (17 - 5) * 3 + 4 / 2``.

The expression is built as a tree from one seeded ``random.Random``; the gold answer is computed
from that tree with ``sympy.Rational`` arithmetic and written as an integer (``"38"``) or a
reduced fraction (``"-3/4"``).

Example:
    >>> task = ArithmeticTask(num_train=3, num_test=1, operators=["+", "*"], seed=7)
    >>> row = task.load("test")[0]
    >>> row["problem"].startswith("Compute: "), row["answer"].lstrip("-").isdigit()
    (True, True)
"""

from __future__ import annotations

import random
from typing import Any, ClassVar, Literal

import datasets
import sympy
from pydantic import Field, model_validator

from ahazero.tasks._expr import BinOp, Expr, Num, apply_op, render
from ahazero.tasks._generated import GRADED_COLUMNS, GRADED_FEATURES, GeneratedTask

__all__ = ["ArithmeticTask", "format_rational"]

Operator = Literal["+", "-", "*", "/"]


def format_rational(value: Any) -> str:
    """An exact rational as ``"p"`` or ``"p/q"`` (reduced, sign on the numerator).

    Example:
        >>> format_rational(sympy.Rational(6, -8)), format_rational(sympy.Integer(42))
        ('-3/4', '42')
    """
    value = sympy.Rational(value)
    return str(value.p) if value.q == 1 else f"{value.p}/{value.q}"


def _random_tree(rng: random.Random, values: list[int], ops: list[str]) -> Expr:
    """A uniformly random bracketing of ``v0 op0 v1 op1 v2 ...`` (keeps the text order)."""
    if len(values) == 1:
        return Num(values[0])
    k = rng.randint(1, len(values) - 1)
    return BinOp(
        ops[k - 1], _random_tree(rng, values[:k], ops[: k - 1]), _random_tree(rng, values[k:], ops[k:])
    )


def _precedence_tree(values: list[int], ops: list[str]) -> Expr:
    """The tree of ``v0 op0 v1 ...`` under the usual precedence, left to right (no parentheses)."""
    terms: list[Expr] = [Num(values[0])]
    term_ops: list[str] = []
    for op, value in zip(ops, values[1:], strict=True):
        if op in "*/":
            terms[-1] = BinOp(op, terms[-1], Num(value))
        else:
            term_ops.append(op)
            terms.append(Num(value))
    tree = terms[0]
    for op, term in zip(term_ops, terms[1:], strict=True):
        tree = BinOp(op, tree, term)
    return tree


class ArithmeticTask(GeneratedTask):
    """Generated arithmetic expressions over integers 1..``max_value``.

    Difficulty knobs: the number of terms (``min_terms``..``max_terms``), operand size, the
    operators, whether division may produce fractions (otherwise every division is exact,
    including intermediate ones) and whether random parentheses are used (otherwise the
    expression is flat and evaluated with the usual precedence).

    Example:
        >>> task = ArithmeticTask(num_train=2, num_test=2, operators=["/"], max_terms=2, seed=3)
        >>> all("/" not in answer for answer in task.load("train")["answer"])
        True
    """

    name: ClassVar[str] = "arithmetic"
    columns: ClassVar[tuple[str, ...]] = GRADED_COLUMNS
    features: ClassVar[datasets.Features] = GRADED_FEATURES

    min_terms: int = Field(2, ge=2, le=12, description="Fewest operands in an expression.")
    max_terms: int = Field(3, ge=2, le=12, description="Most operands in an expression.")
    max_value: int = Field(99, ge=1, le=100_000, description="Operands are drawn from 1..max_value.")
    operators: list[Operator] = Field(
        default_factory=lambda: ["+", "-", "*"], min_length=1, description="Allowed operators (+ - * /)."
    )
    fractions: bool = Field(False, description="Let division produce fractions (else only exact divisions).")
    parentheses: bool = Field(True, description="Random parentheses (else a flat expression).")

    @model_validator(mode="after")
    def _check_terms(self) -> ArithmeticTask:
        if self.min_terms > self.max_terms:
            raise ValueError(f"min_terms ({self.min_terms}) must be <= max_terms ({self.max_terms})")
        return self

    def _finalize(self, rng: random.Random, expr: Expr) -> tuple[Expr, sympy.Rational] | None:
        """Exact value of ``expr``, redrawing a leaf so every division is valid; None if impossible."""
        if isinstance(expr, Num):
            return expr, sympy.Integer(expr.value)
        done_left = self._finalize(rng, expr.left)
        done_right = self._finalize(rng, expr.right)
        if done_left is None or done_right is None:
            return None
        (left, lv), (right, rv) = done_left, done_right
        if expr.op == "/" and (rv == 0 or (not self.fractions and not (lv / rv).is_integer)):
            # Only reachable with exact division or a zero divisor subexpression; redraw a leaf.
            if isinstance(right, Num):  # lv is a non-zero integer: divide by one of its divisors
                divisors = sympy.divisors(abs(int(lv)))
                right = Num(
                    rng.choice(
                        [d for d in divisors if 1 < d < abs(lv) and d <= self.max_value]
                        or [d for d in divisors if d <= self.max_value][-1:]
                    )
                )
                rv = sympy.Integer(right.value)
            elif isinstance(left, Num) and rv != 0 and abs(rv) <= self.max_value:  # a multiple of rv
                left = Num(int(abs(rv)) * rng.randint(1, self.max_value // int(abs(rv))))
                lv = sympy.Integer(left.value)
            else:
                return None
        return BinOp(expr.op, left, right), apply_op(expr.op, lv, rv)

    def _generate_one(self, rng: random.Random) -> dict[str, Any] | None:
        n = rng.randint(self.min_terms, self.max_terms)
        values = [rng.randint(1, self.max_value) for _ in range(n)]
        ops = [rng.choice(self.operators) for _ in range(n - 1)]
        tree = _random_tree(rng, values, ops) if self.parentheses else _precedence_tree(values, ops)
        done = self._finalize(rng, tree)
        if done is None:
            return None
        tree, value = done
        return {"problem": f"Compute: {render(tree)}", "answer": format_rational(value), "difficulty": n}
