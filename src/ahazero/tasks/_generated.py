"""Shared machinery of the offline generated tasks: seeded unique generation and a disjoint split.

One ``random.Random(seed)`` draws problems until ``num_test + num_train`` distinct ones exist
(distinct by :meth:`GeneratedTask._dedupe_key`); the first ``num_test`` form the test split,
the next ``num_train`` the train split. So the test split does not depend on ``num_train``,
and a smaller ``num_train`` gives a prefix of a larger one.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import random
from typing import Any, ClassVar

import datasets
from pydantic import Field

from ahazero.tasks.base import Split, Task, rows_to_dataset

__all__ = ["GRADED_COLUMNS", "GRADED_FEATURES", "GeneratedTask", "stable_id"]

logger = logging.getLogger(__name__)

DEFAULT_NUM_TRAIN = 2000

#: The columns of a generated task that records each problem's difficulty (terms, steps, digits).
GRADED_COLUMNS = ("id", "problem", "answer", "difficulty")
GRADED_FEATURES = datasets.Features(
    {
        "id": datasets.Value("string"),
        "problem": datasets.Value("string"),
        "answer": datasets.Value("string"),
        "difficulty": datasets.Value("int64"),
    }
)
DEFAULT_NUM_TEST = 200


def stable_id(prefix: str, key: str) -> str:
    """A short content-derived id: the same problem always gets the same id.

    Example:
        >>> stable_id("arithmetic", "Compute: 1 + 2")
        'arithmetic-807405690ace'
    """
    return f"{prefix}-{hashlib.sha1(key.encode('utf-8')).hexdigest()[:12]}"


class GeneratedTask(Task):
    """A task whose problems are generated offline; subclasses implement :meth:`_generate_one`."""

    features: ClassVar[datasets.Features]

    num_train: int | None = Field(DEFAULT_NUM_TRAIN, ge=0, description="Train problems (None: 2000).")
    num_test: int | None = Field(DEFAULT_NUM_TEST, ge=0, description="Test problems (None: 200).")

    def _generate_one(self, rng: random.Random) -> dict[str, Any] | None:
        """One problem row without ``id`` (or None to reject this draw)."""
        raise NotImplementedError

    def _dedupe_key(self, row: dict[str, Any]) -> Any:
        return row["problem"]

    def _counts(self) -> tuple[int, int]:
        n_train = DEFAULT_NUM_TRAIN if self.num_train is None else self.num_train
        n_test = DEFAULT_NUM_TEST if self.num_test is None else self.num_test
        return n_train, n_test

    def generate(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """All generated rows as ``(train_rows, test_rows)``, disjoint and deterministic in ``seed``."""
        n_train, n_test = self._counts()
        needed = n_train + n_test
        rng = random.Random(self.seed)
        rows: list[dict[str, Any]] = []
        seen: set[Any] = set()
        max_draws = 50 * needed + 1000
        draws = 0
        while len(rows) < needed and draws < max_draws:
            draws += 1
            row = self._generate_one(rng)
            if row is None:
                continue
            key = self._dedupe_key(row)
            if key in seen:
                continue
            seen.add(key)
            rows.append({"id": stable_id(self.name, row["problem"]), **row})
        if len(rows) < needed:
            raise ValueError(
                f"task {self.name!r}: could only generate {len(rows)} distinct problems of the "
                f"{needed} requested (num_train={n_train}, num_test={n_test}) in {draws} draws; "
                "lower num_train/num_test or widen the difficulty options"
            )
        logger.debug("task %s: generated %d problems in %d draws", self.name, needed, draws)
        return rows[n_test:], rows[:n_test]

    def _load(self, split: Split) -> datasets.Dataset:
        train, test = _generate_cached(type(self), self.model_dump_json())
        return rows_to_dataset(train if split == "train" else test, self.features)


@functools.lru_cache(maxsize=8)
def _generate_cached(cls: type[GeneratedTask], options_json: str) -> tuple[list[dict], list[dict]]:
    """Memoised :meth:`GeneratedTask.generate`, so loading both splits generates once."""
    return cls.model_validate_json(options_json).generate()
