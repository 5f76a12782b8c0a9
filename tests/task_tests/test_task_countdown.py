"""The generated Countdown task: every reference solution reaches its target under the rules."""

from __future__ import annotations

import ast
from collections import Counter
from fractions import Fraction

import pytest

from ahazero.tasks import get_task
from ahazero.tasks.countdown import CountdownTask, countdown_problem

_OPS = {ast.Add, ast.Sub, ast.Mult, ast.Div}


def check_solution(solution: str) -> tuple[Fraction, list[int]]:
    """Evaluate with Fractions via ast; assert classic rules: each intermediate a positive integer."""
    literals: list[int] = []

    def walk(node: ast.AST) -> Fraction:
        if isinstance(node, ast.Constant) and isinstance(node.value, int):
            literals.append(node.value)
            return Fraction(node.value)
        assert isinstance(node, ast.BinOp) and type(node.op) in _OPS, ast.dump(node)
        left, right = walk(node.left), walk(node.right)
        value = {
            ast.Add: lambda: left + right,
            ast.Sub: lambda: left - right,
            ast.Mult: lambda: left * right,
            ast.Div: lambda: left / right,
        }[type(node.op)]()
        assert value > 0 and value.denominator == 1, solution
        return value

    return walk(ast.parse(solution, mode="eval").body), literals


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"num_numbers": 3},
        {"num_numbers": 6, "max_number": 20},
        {"use_all_numbers": True},
        {"num_numbers": 5, "min_target": 100, "max_target": 200},
    ],
)
def test_solutions_reach_the_target_using_numbers_at_most_once(options):
    task = get_task("countdown", num_train=150, num_test=30, seed=4, **options)
    for row in list(task.load("train")) + list(task.load("test")):
        numbers, target = row["numbers"], row["target"]
        value, used = check_solution(row["solution"])
        assert value == target
        assert not Counter(used) - Counter(numbers), row  # a sub-multiset of the numbers
        if task.use_all_numbers:
            assert Counter(used) == Counter(numbers)
        assert len(used) >= 2
        assert row["answer"] == str(target)
        assert task.min_target <= target <= task.max_target
        assert target not in numbers
        assert len(numbers) == task.num_numbers
        assert all(1 <= n <= task.max_number for n in numbers)
        assert row["problem"] == countdown_problem(numbers, target, task.use_all_numbers)


def test_problem_text_states_the_rules():
    assert countdown_problem([3, 7, 25, 50], 96) == (
        "Using the numbers [3, 7, 25, 50], create an equation that equals 96. "
        "You can use +, -, * and / and each number at most once."
    )
    assert countdown_problem([1, 2, 3], 6, use_all_numbers=True).endswith("each number exactly once.")


def test_subsets_are_used_when_not_all_numbers_are_required():
    rows = CountdownTask(num_train=200, num_test=0, seed=1).load("train")
    sizes = Counter(len(check_solution(s)[1]) for s in rows["solution"])
    assert set(sizes) == {2, 3, 4}


def test_deterministic_disjoint_and_seed_dependent():
    a, b, c = (CountdownTask(seed=s, num_train=120, num_test=40) for s in (7, 7, 8))
    assert a.load("train").to_list() == b.load("train").to_list()
    assert a.load("test").to_list() == b.load("test").to_list()
    assert list(a.load("train")["problem"]) != list(c.load("train")["problem"])
    train, test = a.load("train"), a.load("test")
    keys = lambda ds: {(tuple(sorted(r["numbers"])), r["target"]) for r in ds}  # noqa: E731
    assert not keys(train) & keys(test)
    assert len(keys(train)) == len(train)
    assert len({*train["id"], *test["id"]}) == 160


def test_default_sizes_and_schema():
    task = CountdownTask()
    train, test = task.load("train"), task.load("test")
    assert (len(train), len(test)) == (2000, 200)
    assert train.column_names == list(CountdownTask.columns)
    assert isinstance(train[0]["numbers"], list) and isinstance(train[0]["target"], int)
    assert str(train.features["numbers"].feature.dtype) == "int64"


@pytest.mark.parametrize(
    ("options", "fragment"),
    [
        ({"num_numbers": 2}, "option 'num_numbers'"),
        ({"num_numbers": 7}, "option 'num_numbers'"),
        ({"max_number": 1}, "option 'max_number'"),
        ({"min_target": 50, "max_target": 10}, "min_target (50) must be <= max_target (10)"),
    ],
)
def test_invalid_options(options, fragment):
    with pytest.raises(ValueError) as info:
        get_task("countdown", **options)
    assert fragment in str(info.value)
