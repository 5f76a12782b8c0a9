"""``chain``: a long chain of operations on a running number, e.g. ``Start with 17. Add 23, multiply by 4, ...``.

Each operation applies to the result of the one before, so the problem takes as many steps
as it has operations, and each step is easy: ``+``/``-`` operands up to ``max_value``,
``*``/``/`` by 2..``max_multiplier`` (divisions always exact), every intermediate result
within ``max_intermediate`` in absolute value (and not negative unless ``negatives``).
A small model that answers in one line loses track; one that writes each intermediate
result down can get it right. The gold is the exact integer result.

``arithmetic`` with many terms is not the same exercise: its operands are independent, so
long expressions get huge intermediate values, and precedence or brackets hide the order.

Example:
    >>> task = ChainTask(num_train=2, num_test=1, min_steps=5, max_steps=5, seed=3)
    >>> row = task.load("test")[0]
    >>> row["problem"].startswith("Start with "), row["difficulty"], row["answer"].lstrip("-").isdigit()
    (True, 5, True)
"""

from __future__ import annotations

import random
from typing import Any, ClassVar, Literal

import datasets
from pydantic import Field, model_validator

from ahazero.tasks._expr import BinOp, Expr, Num, render
from ahazero.tasks._generated import GRADED_COLUMNS, GRADED_FEATURES, GeneratedTask

__all__ = ["ChainTask", "render_chain_words"]

Operator = Literal["+", "-", "*", "/"]

_WORDS = {"+": "add {}", "-": "subtract {}", "*": "multiply by {}", "/": "divide by {}"}


def render_chain_words(start: int, steps: list[tuple[str, int]]) -> str:
    """The chain as a sentence.

    Example:
        >>> render_chain_words(17, [("+", 23), ("*", 4), ("-", 15), ("/", 5)])
        'Start with 17. Add 23, multiply by 4, subtract 15, then divide by 5. What is the result?'
    """
    words = [_WORDS[op].format(value) for op, value in steps]
    if len(words) > 1:
        words[-1] = "then " + words[-1]
    text = ", ".join(words)
    return f"Start with {start}. {text[0].upper()}{text[1:]}. What is the result?"


def _chain_expression(start: int, steps: list[tuple[str, int]]) -> str:
    tree: Expr = Num(start)
    for op, value in steps:
        tree = BinOp(op, tree, Num(value))
    return "Compute: " + render(tree)


class ChainTask(GeneratedTask):
    """Chains of ``min_steps..max_steps`` operations on a running integer.

    ``style: words`` writes the chain as a sentence; ``style: expression`` as one expression
    with the brackets that keep the order (``Compute: ((17 + 23) * 4 - 15) / 5``).

    Example:
        >>> task = ChainTask(num_train=3, num_test=0, style="expression", operators=["+", "*"], seed=2)
        >>> task.load("train")[0]["problem"].startswith("Compute: ")
        True
    """

    name: ClassVar[str] = "chain"
    columns: ClassVar[tuple[str, ...]] = GRADED_COLUMNS
    features: ClassVar[datasets.Features] = GRADED_FEATURES

    min_steps: int = Field(5, ge=1, le=30, description="Fewest operations in a chain.")
    max_steps: int = Field(8, ge=1, le=30, description="Most operations in a chain.")
    max_value: int = Field(99, ge=1, le=100_000, description="Start value and +/- operands are drawn from 1..max_value.")
    max_multiplier: int = Field(9, ge=2, le=1000, description="* and / operands are drawn from 2..max_multiplier.")
    operators: list[Operator] = Field(
        default_factory=lambda: ["+", "-", "*", "/"], min_length=1, description="Allowed operators (+ - * /)."
    )
    max_intermediate: int = Field(
        9999, ge=1, le=10**12, description="Every intermediate result stays within -max..max."
    )
    negatives: bool = Field(False, description="Allow negative intermediate results.")
    style: Literal["words", "expression"] = Field("words", description="A sentence, or one bracketed expression.")

    @model_validator(mode="after")
    def _check(self) -> ChainTask:
        if self.min_steps > self.max_steps:
            raise ValueError(f"min_steps ({self.min_steps}) must be <= max_steps ({self.max_steps})")
        if self.max_value > self.max_intermediate:
            raise ValueError(f"max_value ({self.max_value}) must be <= max_intermediate ({self.max_intermediate})")
        return self

    def _step(self, rng: random.Random, value: int) -> tuple[str, int, int] | None:
        """One operation on ``value`` that keeps the result in range: ``(op, operand, result)``."""
        for _ in range(20):
            op = rng.choice(self.operators)
            if op in "+-":
                operand = rng.randint(1, self.max_value)
                result = value + operand if op == "+" else value - operand
            elif op == "*":
                operand = rng.randint(2, self.max_multiplier)
                result = value * operand
            else:
                divisors = [d for d in range(2, self.max_multiplier + 1) if value and value % d == 0]
                if not divisors:
                    continue
                operand = rng.choice(divisors)
                result = value // operand
            if abs(result) <= self.max_intermediate and (self.negatives or result >= 0):
                return op, operand, result
        return None

    def _generate_one(self, rng: random.Random) -> dict[str, Any] | None:
        start = value = rng.randint(1, self.max_value)
        steps: list[tuple[str, int]] = []
        for _ in range(rng.randint(self.min_steps, self.max_steps)):
            step = self._step(rng, value)
            if step is None:
                return None
            op, operand, value = step
            steps.append((op, operand))
        problem = render_chain_words(start, steps) if self.style == "words" else _chain_expression(start, steps)
        return {"problem": problem, "answer": str(value), "difficulty": len(steps)}
