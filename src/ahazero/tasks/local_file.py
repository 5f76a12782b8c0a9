"""``local``: any local ``.jsonl`` / ``.json`` / ``.parquet`` file of problems and answers.

Give ``train_path`` and optionally ``test_path``. Without ``test_path`` the train file is split
with a seeded, disjoint sample of ``test_size`` distinct problems (an int count, or a float
fraction; rows with identical problem text stay in one split). With both paths the files are
used as they are (keeping them disjoint is then up to you).

Each file must be a regular, non-empty ``.jsonl`` / ``.json`` / ``.parquet`` file;
:meth:`LocalFileTask.check_data` (run by ``ahazero check`` and ``train`` before any model
loads) reads the head of each file and names a missing column and the columns present.

``problem_column`` / ``answer_column`` name the source columns; the answer is cast to a string
(``3`` and ``3.0`` both become ``"3"``). ``id`` comes from ``id_column`` when given, else it is
``local-<row>`` (one file) or ``local-<split>-<row>`` (two files). ``extra_columns`` are copied
through unchanged, and then appear in the instance's ``columns``.

Example:
    >>> task = LocalFileTask(train_path="data/train.jsonl", extra_columns=["numbers"])
    >>> task.columns
    ('id', 'problem', 'answer', 'numbers')
    >>> LocalFileTask.columns
    ('id', 'problem', 'answer')
"""

from __future__ import annotations

import logging
from typing import Any, ClassVar

import datasets
from pydantic import Field, field_validator, model_validator

from ahazero.tasks._io import probe_columns, read_records, require_columns
from ahazero.tasks.base import BASE_COLUMNS, Split, Task, split_test_flags, subsample_indices

__all__ = ["LocalFileTask", "answer_text"]

logger = logging.getLogger(__name__)


def answer_text(value: Any) -> str:
    """A gold answer as a string: integral floats lose their ``.0``; strings are stripped.

    Example:
        >>> answer_text(42), answer_text(3.0), answer_text(0.25), answer_text(" -3/4 ")
        ('42', '3', '0.25', '-3/4')
    """
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


class _InstanceColumns:
    """``columns`` that depends on the options: the class sees the base columns, an instance its own."""

    def __get__(self, obj: LocalFileTask | None, objtype: type | None = None) -> tuple[str, ...]:
        if obj is None:
            return BASE_COLUMNS
        return (*BASE_COLUMNS, *obj.extra_columns)


class LocalFileTask(Task):
    """Problems and answers from local files (see the module docstring for the options).

    Example:
        >>> import json, pathlib, tempfile
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "qa.jsonl"
        >>> lines = [json.dumps({"q": f"{i} * 2?", "a": 2 * i}) for i in range(10)]
        >>> _ = path.write_text("\\n".join(lines) + "\\n")
        >>> task = LocalFileTask(train_path=str(path), problem_column="q", answer_column="a", test_size=2)
        >>> test = task.load("test")
        >>> len(test), len(task.load("train")), test[0]["answer"].isdigit()
        (2, 8, True)
    """

    name: ClassVar[str] = "local"
    columns: ClassVar[tuple[str, ...]] = _InstanceColumns()  # type: ignore[assignment]

    train_path: str = Field(min_length=1, description="The train file (.jsonl/.json/.parquet).")
    test_path: str | None = Field(None, description="The test file; None: split test_size off train_path.")
    test_size: int | float = Field(
        0.1, description="Without test_path: test problems (int) or fraction (float)."
    )
    problem_column: str = Field("problem", min_length=1, description="Source column with the question.")
    answer_column: str = Field("answer", min_length=1, description="Source column with the gold answer.")
    id_column: str | None = Field(None, description="Source column with unique ids; None: row numbers.")
    extra_columns: list[str] = Field(default_factory=list, description="Source columns to copy through.")

    @field_validator("test_size", mode="before")
    @classmethod
    def _no_bool_test_size(cls, value: Any) -> Any:
        if isinstance(value, bool):
            raise ValueError("must be an int (a count) or a float in (0, 1) (a fraction), not a bool")
        return value

    @field_validator("test_size")
    @classmethod
    def _check_test_size(cls, value: int | float) -> int | float:
        if isinstance(value, float) and not 0.0 < value < 1.0:
            raise ValueError("a fraction must be in (0, 1); use an int for a count")
        if isinstance(value, int) and value < 1:
            raise ValueError("a count must be >= 1")
        return value

    @field_validator("extra_columns")
    @classmethod
    def _check_extra_columns(cls, value: list[str]) -> list[str]:
        reserved = [c for c in value if c in BASE_COLUMNS]
        if reserved:
            raise ValueError(f"{reserved[0]!r} is a column every task provides; choose other extra columns")
        if len(set(value)) != len(value):
            raise ValueError("extra_columns has duplicates")
        return value

    @model_validator(mode="after")
    def _check_paths(self) -> LocalFileTask:
        if self.test_path is not None and "test_size" in self.model_fields_set:
            raise ValueError("test_size only applies without test_path; give one of them")
        return self

    def check_data(self) -> None:
        """Check each file before any model loads: a readable data file whose first row has the columns.

        Raises :class:`ValueError` starting with the option name (``train_path: ...``).

        Example:
            >>> LocalFileTask(train_path="/dev/zero").check_data()
            Traceback (most recent call last):
            ...
            ValueError: train_path: /dev/zero is a character device, not a data file; expected a .jsonl, ...
        """
        needed = [self.problem_column, self.answer_column, *self.extra_columns]
        needed += [self.id_column] if self.id_column else []
        for option, path in (("train_path", self.train_path), ("test_path", self.test_path)):
            if path is None:
                continue
            try:
                columns = probe_columns(path)
            except (ValueError, OSError) as err:
                raise ValueError(f"{option}: {err}") from None
            missing = [c for c in needed if c not in columns]
            if missing:
                raise ValueError(f"{option}: {path}: missing column(s) {', '.join(map(repr, missing))}; "
                                 f"the data has columns: {', '.join(columns)}")

    def _records(self, split: Split) -> tuple[list[dict[str, Any]], list[int], str]:
        """The source records of ``split``, their row numbers in the file, and the file name."""
        if self.test_path is not None:
            path = self.train_path if split == "train" else self.test_path
            records = read_records(path)
            return records, list(range(len(records))), path
        records = read_records(self.train_path)
        require_columns(records, [self.problem_column], self.train_path)
        try:
            flags = split_test_flags(
                [str(r[self.problem_column]) for r in records], self.test_size, self.seed, "local"
            )
        except ValueError as err:
            raise ValueError(f"task 'local': {err} in {self.train_path}") from None
        rows = [i for i, is_test in enumerate(flags) if is_test == (split == "test")]
        return [records[i] for i in rows], rows, self.train_path

    def _row_id(self, record: dict[str, Any], row: int, split: Split) -> str:
        if self.id_column is not None:
            return str(record[self.id_column])
        return f"local-{split}-{row}" if self.test_path is not None else f"local-{row}"

    def _load(self, split: Split) -> datasets.Dataset:
        records, row_numbers, where = self._records(split)
        needed = [self.problem_column, self.answer_column, *self.extra_columns]
        require_columns(records, needed + ([self.id_column] if self.id_column else []), where)
        rows = []
        for record, row in zip(records, row_numbers, strict=True):
            problem, answer = record[self.problem_column], record[self.answer_column]
            if not isinstance(problem, str) or not problem.strip():
                raise ValueError(f"{where}: row {row}: {self.problem_column!r} must be a non-empty string")
            if answer is None or answer_text(answer) == "":
                raise ValueError(f"{where}: row {row}: {self.answer_column!r} is empty")
            rows.append(
                {
                    "id": self._row_id(record, row, split),
                    "problem": problem,
                    "answer": answer_text(answer),
                    **{column: record[column] for column in self.extra_columns},
                }
            )
        ids = [row["id"] for row in rows]
        if len(set(ids)) != len(ids):
            raise ValueError(f"{where}: {self.id_column!r} has duplicate ids; ids must be unique")
        keep = subsample_indices(len(rows), self.cap(split), self.seed, split)
        logger.info("task local: %d of %d %s rows from %s", len(keep), len(rows), split, where)
        kept = [rows[i] for i in keep]
        data = {name: [row[name] for row in kept] for name in self.columns}
        if kept:
            return datasets.Dataset.from_dict(data)
        empty = {name: datasets.Value("string" if name in BASE_COLUMNS else "null") for name in self.columns}
        return datasets.Dataset.from_dict(data, features=datasets.Features(empty))
