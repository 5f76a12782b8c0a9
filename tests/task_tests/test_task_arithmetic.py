"""The generated arithmetic task: determinism, disjoint splits, golds checked independently."""

from __future__ import annotations

import ast
import math
import re
from fractions import Fraction

import pytest
import sympy
from sympy.parsing.sympy_parser import parse_expr

from ahazero.tasks import get_task
from ahazero.tasks.arithmetic import ArithmeticTask, format_rational

ANSWER = re.compile(r"-?\d+(/\d+)?")
_OPS = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/"}


def expression(problem: str) -> str:
    assert problem.startswith("Compute: ")
    return problem.removeprefix("Compute: ")


def exact_value(text: str, require_exact_division: bool) -> Fraction:
    """Evaluate +-*/ text with Fractions via ast; optionally require every division to be exact."""

    def walk(node: ast.AST) -> Fraction:
        if isinstance(node, ast.Constant) and isinstance(node.value, int):
            return Fraction(node.value)
        assert isinstance(node, ast.BinOp) and type(node.op) in _OPS, ast.dump(node)
        left, right = walk(node.left), walk(node.right)
        if isinstance(node.op, ast.Div):
            assert right != 0
            quotient = left / right
            if require_exact_division:
                assert quotient.denominator == 1, text
            return quotient
        return {ast.Add: left + right, ast.Sub: left - right, ast.Mult: left * right}[type(node.op)]

    return walk(ast.parse(text, mode="eval").body)


def load_both(**options):
    task = get_task("arithmetic", **options)
    return task.load("train"), task.load("test")


CONFIGS = [
    {},
    {"operators": ["+", "-", "*", "/"], "max_terms": 5},
    {"operators": ["/"], "min_terms": 2, "max_terms": 4},
    {"operators": ["-", "/"], "fractions": True, "max_terms": 4},
    {"operators": ["+", "-", "*", "/"], "parentheses": False, "min_terms": 3, "max_terms": 6},
    {"operators": ["*", "/"], "parentheses": False, "max_value": 12, "max_terms": 4},
]


@pytest.mark.parametrize("options", CONFIGS)
def test_gold_answers_match_sympy_and_exact_arithmetic(options):
    train, test = load_both(num_train=150, num_test=50, seed=11, **options)
    exact = "/" in options.get("operators", []) and not options.get("fractions", False)
    for row in list(train) + list(test):
        text = expression(row["problem"])
        gold = sympy.Rational(row["answer"])
        assert parse_expr(text) == gold, row
        assert exact_value(text, require_exact_division=exact) == Fraction(row["answer"])
        if exact:
            assert gold.q == 1


@pytest.mark.parametrize("options", CONFIGS)
def test_problems_respect_the_difficulty_options(options):
    task = ArithmeticTask(num_train=100, num_test=20, seed=5, **options)
    allowed = set(task.operators)
    for row in task.load("train"):
        text = expression(row["problem"])
        operands = [int(n) for n in re.findall(r"\d+", text)]
        assert task.min_terms <= len(operands) <= task.max_terms
        assert row["difficulty"] == len(operands)
        assert all(1 <= n <= task.max_value for n in operands)
        assert set(re.findall(r"[-+*/]", text)) <= allowed
        if not task.parentheses:
            assert "(" not in text


def test_answers_are_reduced_integers_or_fractions():
    train, _ = load_both(
        num_train=300, num_test=0, operators=["+", "-", "*", "/"], fractions=True, max_terms=4
    )
    answers = train["answer"]
    assert all(ANSWER.fullmatch(a) for a in answers)
    fractions_seen = [a for a in answers if "/" in a]
    assert fractions_seen, "fractions=True should produce some fractional answers"
    for a in fractions_seen:
        p, q = (int(x) for x in a.split("/"))
        assert q > 1 and math.gcd(p, q) == 1


def test_same_seed_same_data_other_seed_other_data():
    a_train, a_test = load_both(seed=3, num_train=100, num_test=30)
    b_train, b_test = load_both(seed=3, num_train=100, num_test=30)
    c_train, c_test = load_both(seed=4, num_train=100, num_test=30)
    assert a_train.to_list() == b_train.to_list() and a_test.to_list() == b_test.to_list()
    assert a_train["problem"] != c_train["problem"]
    assert a_test["problem"] != c_test["problem"]


def test_splits_are_disjoint_with_unique_stable_ids():
    train, test = load_both()  # the defaults: 2000 / 200
    assert (len(train), len(test)) == (2000, 200)
    assert not set(train["problem"]) & set(test["problem"])
    assert len(set(train["problem"])) == len(train)
    ids = [*train["id"], *test["id"]]
    assert len(set(ids)) == len(ids)
    assert all(i.startswith("arithmetic-") for i in ids)
    # an id belongs to its problem, whatever the seed
    other_train, _ = load_both(seed=99)
    by_problem = dict(zip([*train["problem"], *test["problem"]], ids, strict=True))
    shared = [
        (p, i) for p, i in zip(other_train["problem"], other_train["id"], strict=True) if p in by_problem
    ]
    assert shared and all(by_problem[p] == i for p, i in shared)


def test_test_split_does_not_depend_on_num_train_and_train_grows_by_prefix():
    small_train, small_test = load_both(num_train=40, num_test=25, seed=8)
    big_train, big_test = load_both(num_train=90, num_test=25, seed=8)
    assert small_test.to_list() == big_test.to_list()
    assert list(big_train["problem"])[:40] == list(small_train["problem"])


def test_none_counts_mean_the_task_defaults():
    task = ArithmeticTask(num_train=None, num_test=None, max_terms=2)
    assert len(task.load("test")) == 200
    assert task.load("train").features["difficulty"].dtype == "int64"


def test_zero_rows_keep_the_schema():
    test = ArithmeticTask(num_train=5, num_test=0).load("test")
    assert len(test) == 0
    assert test.column_names == ["id", "problem", "answer", "difficulty"]


def test_too_small_problem_space_is_a_clear_error():
    task = ArithmeticTask(max_value=2, min_terms=2, max_terms=2, operators=["+"], num_train=10, num_test=2)
    with pytest.raises(ValueError, match="could only generate 4 distinct problems"):
        task.load("train")


def test_format_rational():
    assert format_rational(sympy.Rational(10, 4)) == "5/2"
    assert format_rational(sympy.Rational(-9, 3)) == "-3"
    assert format_rational(0) == "0"
