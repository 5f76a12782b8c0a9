"""``multiplication``: multi-digit products, e.g. ``Compute: 4821 * 37``, where writing steps out pays.

A small model rarely gets a 3-4 digit by 2-3 digit product right in one line, but can split
it into partial products it does know (``4821 * 30 + 4821 * 7``). The digit counts of both
factors are options; the gold is the exact integer product.

Example:
    >>> task = MultiplicationTask(num_train=3, num_test=1, seed=5)
    >>> row = task.load("test")[0]
    >>> a, b = (int(x) for x in row["problem"].removeprefix("Compute: ").split(" * "))
    >>> int(row["answer"]) == a * b, len(str(a)) in (3, 4), len(str(b)) in (2, 3)
    (True, True, True)
"""

from __future__ import annotations

import random
from typing import Any, ClassVar

import datasets
from pydantic import Field, model_validator

from ahazero.tasks._generated import GRADED_COLUMNS, GRADED_FEATURES, GeneratedTask

__all__ = ["MultiplicationTask", "random_with_digits"]


def random_with_digits(rng: random.Random, digits: int) -> int:
    """A uniform random integer with exactly ``digits`` decimal digits (1 digit: 2..9).

    Example:
        >>> rng = random.Random(0)
        >>> all(100 <= random_with_digits(rng, 3) <= 999 for _ in range(50))
        True
    """
    low = 2 if digits == 1 else 10 ** (digits - 1)  # x 1 and x 0 are no exercise
    return rng.randint(low, 10**digits - 1)


class MultiplicationTask(GeneratedTask):
    """Products of two integers with ``min_digits_a..max_digits_a`` and ``min_digits_b..max_digits_b`` digits.

    ``difficulty`` is the total number of digits of the two factors. Factors ending in 0 are
    redrawn unless ``trailing_zeros`` is set (they make a product a shift, not a computation).

    Example:
        >>> task = MultiplicationTask(min_digits_a=2, max_digits_a=2, min_digits_b=1, max_digits_b=1,
        ...                           num_train=4, num_test=0, seed=1)
        >>> sorted(set(task.load("train")["difficulty"]))
        [3]
    """

    name: ClassVar[str] = "multiplication"
    columns: ClassVar[tuple[str, ...]] = GRADED_COLUMNS
    features: ClassVar[datasets.Features] = GRADED_FEATURES

    min_digits_a: int = Field(3, ge=1, le=12, description="Fewest digits of the first factor.")
    max_digits_a: int = Field(4, ge=1, le=12, description="Most digits of the first factor.")
    min_digits_b: int = Field(2, ge=1, le=12, description="Fewest digits of the second factor.")
    max_digits_b: int = Field(3, ge=1, le=12, description="Most digits of the second factor.")
    trailing_zeros: bool = Field(False, description="Allow factors that end in 0 (else they are redrawn).")

    @model_validator(mode="after")
    def _check_digits(self) -> MultiplicationTask:
        for factor in ("a", "b"):
            low, high = getattr(self, f"min_digits_{factor}"), getattr(self, f"max_digits_{factor}")
            if low > high:
                raise ValueError(f"min_digits_{factor} ({low}) must be <= max_digits_{factor} ({high})")
        return self

    def _factor(self, rng: random.Random, low: int, high: int) -> int:
        digits = rng.randint(low, high)
        while True:
            value = random_with_digits(rng, digits)
            if self.trailing_zeros or value % 10:
                return value

    def _generate_one(self, rng: random.Random) -> dict[str, Any] | None:
        a = self._factor(rng, self.min_digits_a, self.max_digits_a)
        b = self._factor(rng, self.min_digits_b, self.max_digits_b)
        return {"problem": f"Compute: {a} * {b}", "answer": str(a * b), "difficulty": len(str(a)) + len(str(b))}
