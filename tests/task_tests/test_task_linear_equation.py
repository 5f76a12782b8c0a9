"""The generated linear-equation task: golds substituted back, options honoured, splits disjoint."""

from __future__ import annotations

import pytest
import sympy
from sympy.parsing.sympy_parser import (
    implicit_multiplication_application,
    parse_expr,
    standard_transformations,
)

from ahazero.tasks import get_task
from ahazero.tasks.linear_equation import LinearEquationTask, render_linear

X = sympy.Symbol("x")
TRANSFORMS = standard_transformations + (implicit_multiplication_application,)


def sides(problem: str) -> tuple[sympy.Expr, sympy.Expr]:
    assert problem.startswith("Solve for x: ")
    left, right = problem.removeprefix("Solve for x: ").split(" = ")
    parse = lambda s: parse_expr(s, local_dict={"x": X}, transformations=TRANSFORMS)  # noqa: E731
    return parse(left), parse(right)


@pytest.mark.parametrize(
    "options",
    [{}, {"integer_solutions": False}, {"both_sides": False}, {"max_coefficient": 3, "max_constant": 5}],
)
def test_gold_solves_the_equation_uniquely(options):
    task = get_task("linear_equation", num_train=120, num_test=30, seed=2, **options)
    for row in list(task.load("train")) + list(task.load("test")):
        left, right = sides(row["problem"])
        gold = sympy.Rational(row["answer"])
        difference = sympy.Poly(left - right, X)
        assert difference.degree() == 1, row  # exactly one solution
        assert difference.eval(gold) == 0, row
        for side in (left, right):
            coefficient = sympy.Poly(side, X).coeff_monomial(X)
            assert abs(coefficient) <= task.max_coefficient


def test_integer_solutions_option():
    ints = LinearEquationTask(num_train=300, num_test=0, max_coefficient=7).load("train")["answer"]
    assert all("/" not in a and abs(int(a)) <= 7 for a in ints)
    mixed = LinearEquationTask(num_train=300, num_test=0, integer_solutions=False).load("train")["answer"]
    assert sum("/" in a for a in mixed) > 100


def test_both_sides_option():
    def two_sided(problem: str) -> bool:
        left, right = sides(problem)
        return left.has(X) and right.has(X)

    mixed = LinearEquationTask(num_train=200, num_test=0).load("train")["problem"]
    assert 40 < sum(map(two_sided, mixed)) < 160
    one_sided = LinearEquationTask(num_train=200, num_test=0, both_sides=False).load("train")["problem"]
    assert not any(map(two_sided, one_sided))


def test_deterministic_and_disjoint():
    a = LinearEquationTask(seed=1, num_train=150, num_test=40)
    b = LinearEquationTask(seed=1, num_train=150, num_test=40)
    c = LinearEquationTask(seed=2, num_train=150, num_test=40)
    assert a.load("train").to_list() == b.load("train").to_list()
    assert a.load("test").to_list() == b.load("test").to_list()
    assert a.load("train")["problem"] != c.load("train")["problem"]
    train, test = a.load("train"), a.load("test")
    assert not set(train["problem"]) & set(test["problem"])
    assert len({*train["id"], *test["id"]}) == 190


def test_default_sizes():
    task = LinearEquationTask()
    assert (len(task.load("train")), len(task.load("test"))) == (2000, 200)
    assert task.load("test").column_names == ["id", "problem", "answer"]


@pytest.mark.parametrize(
    ("args", "text"),
    [
        ((3, 7), "3x + 7"),
        ((-1, -4), "-x - 4"),
        ((1, 0), "x"),
        ((0, -5), "-5"),
        ((0, 0), "0"),
        ((-12, 3, True), "3 - 12x"),
        ((2, -8, True), "-8 + 2x"),
    ],
)
def test_render_linear(args, text):
    assert render_linear(*args) == text
    assert parse_expr(text, local_dict={"x": X}, transformations=TRANSFORMS) == args[0] * X + args[1]


def test_invalid_options():
    with pytest.raises(ValueError, match="option 'max_coefficient'"):
        get_task("linear_equation", max_coefficient=0)
    with pytest.raises(ValueError, match="unknown option 'both_side'.*both_sides"):
        get_task("linear_equation", both_side=False)
