"""The chain task: every intermediate result in range, golds recomputed from the text, both styles."""

from __future__ import annotations

import ast
import re

import pytest

from ahazero.tasks import get_task

STEP = re.compile(r"(add|subtract|multiply by|divide by) (\d+)", re.IGNORECASE)
OPS = {"add": "+", "subtract": "-", "multiply by": "*", "divide by": "/"}


def replay(problem: str) -> tuple[list[int], list[str]]:
    """The running values and operators of a chain written in words, recomputed independently."""
    start = int(re.match(r"Start with (\d+)\. ", problem).group(1))
    values, ops = [start], []
    for word, number in STEP.findall(problem):
        value, operand = values[-1], int(number)
        op = OPS[word.lower()]
        if op == "/":
            assert value % operand == 0, problem
        values.append({"+": value + operand, "-": value - operand, "*": value * operand,
                       "/": value // operand if op == "/" else 0}[op])
        ops.append(op)
    return values, ops


def test_words_chains_have_bounded_intermediates_and_exact_golds():
    task = get_task("chain", num_train=300, num_test=30)
    used = set()
    for row in [*task.load("train"), *task.load("test")]:
        assert row["problem"].endswith("What is the result?")
        values, ops = replay(row["problem"])
        assert 5 <= len(ops) == row["difficulty"] <= 8
        assert all(0 <= v <= 9999 for v in values)
        assert row["answer"] == str(values[-1])
        used |= set(ops)
    assert used == {"+", "-", "*", "/"}


def test_negatives_and_tight_bounds():
    task = get_task("chain", negatives=True, max_intermediate=200, max_value=50, operators=["+", "-"],
                    num_train=200, num_test=0, min_steps=10, max_steps=10)
    lows = []
    for row in task.load("train"):
        values, _ = replay(row["problem"])
        assert all(abs(v) <= 200 for v in values)
        lows.append(min(values))
    assert min(lows) < 0


def test_expression_style_evaluates_to_the_gold():
    task = get_task("chain", style="expression", num_train=200, num_test=0)
    for row in task.load("train"):
        text = row["problem"].removeprefix("Compute: ")
        value = eval(compile(ast.parse(text, mode="eval"), "<chain>", "eval"), {"__builtins__": {}})  # noqa: S307
        assert value == int(row["answer"]), row


@pytest.mark.parametrize(("options", "fragment"), [
    ({"min_steps": 6, "max_steps": 5}, "min_steps (6) must be <= max_steps (5)"),
    ({"max_value": 500, "max_intermediate": 100}, "max_value (500) must be <= max_intermediate (100)"),
    ({"style": "latex"}, "invalid value for option 'style'"),
])
def test_bad_options_are_named(options, fragment):
    with pytest.raises(ValueError, match=re.escape(fragment)):
        get_task("chain", **options)
