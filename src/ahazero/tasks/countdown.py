"""``countdown``: TinyZero-style Countdown: reach a target from given numbers with ``+ - * /``.

Each problem draws ``num_numbers`` integers in 1..``max_number`` and builds a random expression
over some of them (all of them with ``use_all_numbers=True``), combining two values at a time
the classic Countdown way: every intermediate result is a positive integer (subtraction takes
the larger minus the smaller, division must be exact and not by 1). The value is the target;
targets outside ``min_target..max_target`` or equal to one of the numbers are redrawn. The
expression is kept as ``solution`` (one valid answer, for reference; any other is fine too).

Example:
    >>> task = CountdownTask(num_train=2, num_test=1, num_numbers=3, seed=5)
    >>> row = task.load("test")[0]
    >>> row["answer"] == str(row["target"]), len(row["numbers"])
    (True, 3)
"""

from __future__ import annotations

import random
from fractions import Fraction
from typing import Any, ClassVar

import datasets
from pydantic import Field, model_validator

from ahazero.tasks._expr import BinOp, Expr, Num, evaluate, render
from ahazero.tasks._generated import GeneratedTask

__all__ = ["CountdownTask", "countdown_problem"]


def countdown_problem(numbers: list[int], target: int, use_all_numbers: bool = False) -> str:
    """The question text for ``numbers`` and ``target``.

    Example:
        >>> countdown_problem([3, 7, 25, 50], 96)
        'Using the numbers [3, 7, 25, 50], create an equation that equals 96. You can use +, -, * and / and each number at most once.'
    """  # noqa: E501
    rule = "exactly once" if use_all_numbers else "at most once"
    return (
        f"Using the numbers {list(numbers)}, create an equation that equals {target}. "
        f"You can use +, -, * and / and each number {rule}."
    )


def _combine(rng: random.Random, a: tuple[Expr, int], b: tuple[Expr, int]) -> tuple[Expr, int]:
    """One random valid Countdown step on two (expression, value) pairs."""
    (big, big_value), (small, small_value) = (a, b) if a[1] >= b[1] else (b, a)
    choices = ["+", "*"]
    if big_value != small_value:
        choices.append("-")
    if small_value > 1 and big_value % small_value == 0:
        choices.append("/")
    op = rng.choice(choices)
    if op == "+":
        return BinOp("+", a[0], b[0]), a[1] + b[1]
    if op == "*":
        return BinOp("*", a[0], b[0]), a[1] * b[1]
    if op == "-":
        return BinOp("-", big, small), big_value - small_value
    return BinOp("/", big, small), big_value // small_value


class CountdownTask(GeneratedTask):
    """Generated Countdown problems with columns ``numbers``, ``target`` and ``solution``.

    Example:
        >>> task = CountdownTask(num_train=1, num_test=0, num_numbers=5, use_all_numbers=True)
        >>> row = task.load("train")[0]
        >>> sorted(int(t) for t in row["solution"].replace("(", " ").replace(")", " ").split()
        ...        if t.isdigit()) == sorted(row["numbers"])
        True
    """

    name: ClassVar[str] = "countdown"
    columns: ClassVar[tuple[str, ...]] = ("id", "problem", "answer", "numbers", "target", "solution")
    features: ClassVar[datasets.Features] = datasets.Features(
        {
            "id": datasets.Value("string"),
            "problem": datasets.Value("string"),
            "answer": datasets.Value("string"),
            "numbers": datasets.List(datasets.Value("int64")),
            "target": datasets.Value("int64"),
            "solution": datasets.Value("string"),
        }
    )

    num_numbers: int = Field(4, ge=3, le=6, description="How many numbers each problem gives (3..6).")
    max_number: int = Field(99, ge=2, le=10_000, description="Numbers are drawn from 1..max_number.")
    min_target: int = Field(1, ge=1, description="Smallest target.")
    max_target: int = Field(999, ge=1, le=1_000_000, description="Largest target.")
    use_all_numbers: bool = Field(False, description="The solution uses every number (and the text says so).")

    @model_validator(mode="after")
    def _check_targets(self) -> CountdownTask:
        if self.min_target > self.max_target:
            raise ValueError(f"min_target ({self.min_target}) must be <= max_target ({self.max_target})")
        return self

    def _generate_one(self, rng: random.Random) -> dict[str, Any] | None:
        numbers = [rng.randint(1, self.max_number) for _ in range(self.num_numbers)]
        used = self.num_numbers if self.use_all_numbers else rng.randint(2, self.num_numbers)
        pool: list[tuple[Expr, int]] = [(Num(v), v) for v in rng.sample(numbers, used)]
        while len(pool) > 1:
            a = pool.pop(rng.randrange(len(pool)))
            b = pool.pop(rng.randrange(len(pool)))
            pool.append(_combine(rng, a, b))
        tree, target = pool[0]
        if not self.min_target <= target <= self.max_target or target in numbers:
            return None
        if evaluate(tree, Fraction) != target:  # pragma: no cover - guards the integer bookkeeping
            raise RuntimeError(f"countdown generator bug: {render(tree)} != {target}")
        return {
            "problem": countdown_problem(numbers, target, self.use_all_numbers),
            "answer": str(target),
            "numbers": numbers,
            "target": target,
            "solution": render(tree),
        }

    def _dedupe_key(self, row: dict[str, Any]) -> Any:
        return tuple(sorted(row["numbers"])), row["target"]
