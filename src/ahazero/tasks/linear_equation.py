"""``linear_equation``: generated one-variable linear equations, e.g. ``Solve for x: 3x + 7 = 22``.

Each equation is ``a*x + b = c*x + d`` (``c = 0`` when x is on one side only), built from one
seeded ``random.Random``. The gold answer is the value of x, computed exactly as
``sympy.Rational(d - b, a - c)`` and written as ``"5"`` or ``"-7/3"``.

Example:
    >>> task = LinearEquationTask(num_train=2, num_test=1, both_sides=False, seed=4)
    >>> row = task.load("test")[0]
    >>> row["problem"].startswith("Solve for x: "), "=" in row["problem"]
    (True, True)
"""

from __future__ import annotations

import random
from typing import Any, ClassVar

import datasets
import sympy
from pydantic import Field

from ahazero.tasks._generated import GeneratedTask
from ahazero.tasks.arithmetic import format_rational

__all__ = ["LinearEquationTask", "render_linear"]


def render_linear(coefficient: int, constant: int, constant_first: bool = False) -> str:
    """Text of ``coefficient*x + constant`` as a person writes it (``3x - 4``, ``-x``, ``7``).

    Example:
        >>> render_linear(3, -4), render_linear(-1, 0), render_linear(0, 7), render_linear(2, 5, True)
        ('3x - 4', '-x', '7', '5 + 2x')
    """
    x_term = {1: "x", -1: "-x"}.get(coefficient, f"{coefficient}x") if coefficient else ""
    const_term = str(constant) if constant else ""
    terms = [t for t in ((const_term, x_term) if constant_first else (x_term, const_term)) if t]
    if not terms:
        return "0"
    text = terms[0]
    for term in terms[1:]:
        text += f" - {term[1:]}" if term.startswith("-") else f" + {term}"
    return text


class LinearEquationTask(GeneratedTask):
    """Generated linear equations in x with integer coefficients.

    ``both_sides=True`` puts x on both sides in about half of the problems; with
    ``integer_solutions=True`` every solution is an integer in ``-max_coefficient..max_coefficient``,
    otherwise the constants are drawn freely and the solution is usually a fraction.
    x-coefficients are non-zero integers in ``-max_coefficient..max_coefficient``; constants are
    drawn from ``-max_constant..max_constant``.

    Example:
        >>> task = LinearEquationTask(num_train=3, num_test=0, integer_solutions=False, seed=2)
        >>> len(task.load("train")["answer"])
        3
    """

    name: ClassVar[str] = "linear_equation"
    columns: ClassVar[tuple[str, ...]] = ("id", "problem", "answer")
    features: ClassVar[datasets.Features] = datasets.Features(
        {
            "id": datasets.Value("string"),
            "problem": datasets.Value("string"),
            "answer": datasets.Value("string"),
        }
    )

    both_sides: bool = Field(True, description="Allow x on both sides (about half of the problems).")
    integer_solutions: bool = Field(True, description="Only integer solutions (else fractions are common).")
    max_coefficient: int = Field(12, ge=1, le=1000, description="x-coefficients in -max..max (non-zero).")
    max_constant: int = Field(50, ge=1, le=100_000, description="Drawn constants in -max..max.")

    def _coefficient(self, rng: random.Random) -> int:
        value = rng.randint(1, self.max_coefficient)
        return value if rng.random() < 0.5 else -value

    def _generate_one(self, rng: random.Random) -> dict[str, Any] | None:
        two_sided = self.both_sides and rng.random() < 0.5
        a = self._coefficient(rng)
        c = self._coefficient(rng) if two_sided else 0
        if a == c:
            return None  # no unique solution
        b = rng.randint(-self.max_constant, self.max_constant)
        if not two_sided and a == 1 and b == 0:
            return None  # "x = 5" is already solved
        if self.integer_solutions:
            x = sympy.Integer(rng.randint(-self.max_coefficient, self.max_coefficient))
            d = int((a - c) * x + b)
        else:
            d = rng.randint(-self.max_constant, self.max_constant)
            x = sympy.Rational(d - b, a - c)
        left = render_linear(a, b, constant_first=rng.random() < 0.2)
        right = render_linear(c, d, constant_first=rng.random() < 0.2)
        if not two_sided and rng.random() < 0.25:
            left, right = right, left
        return {"problem": f"Solve for x: {left} = {right}", "answer": format_rational(x)}
