"""The :class:`Task` base class: typed options, a fixed column list and ``load(split)``.

A task is a pydantic model whose fields are its options. Constructing one validates the
options (unknown option, wrong type, out of range -> a readable :class:`ValueError`); nothing
is read or generated until :meth:`Task.load` is called.

Example:
    >>> from ahazero.tasks.arithmetic import ArithmeticTask
    >>> task = ArithmeticTask(num_train=5, num_test=2, seed=1)
    >>> task.columns[:3]
    ('id', 'problem', 'answer')
    >>> len(task.load("train")), len(task.load("test"))
    (5, 2)
"""

from __future__ import annotations

import difflib
import logging
import random
from typing import Any, ClassVar, Literal

import datasets
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from ahazero.tasks.calibration import BandCounts, CalibrationError, band_counts, in_band, read_calibration

__all__ = [
    "BASE_COLUMNS",
    "REQUIRED",
    "SPLITS",
    "Split",
    "Task",
    "TaskDataError",
    "TaskOptionsError",
    "check_split",
    "format_options_error",
    "rows_to_dataset",
    "split_test_flags",
    "subsample_indices",
]

logger = logging.getLogger("ahazero.tasks")

Split = Literal["train", "test"]
SPLITS: tuple[str, ...] = ("train", "test")
BASE_COLUMNS: tuple[str, ...] = ("id", "problem", "answer")


class _Required:
    """Placeholder default, shown by ``task_options`` for an option that has no default."""

    _instance: _Required | None = None

    def __new__(cls) -> _Required:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "<required>"


REQUIRED: Any = _Required()


class TaskDataError(RuntimeError):
    """A task's data could not be obtained (e.g. the Hugging Face Hub is unreachable)."""


class TaskOptionsError(ValueError):
    """Invalid task options; the message names the option and the valid choices."""


def check_split(split: str) -> Split:
    """Return ``split`` if it is ``"train"`` or ``"test"``; raise :class:`ValueError` otherwise.

    Example:
        >>> check_split("test")
        'test'
    """
    if split not in SPLITS:
        raise ValueError(f"invalid split {split!r}; valid splits: {', '.join(SPLITS)}")
    return split  # type: ignore[return-value]


def subsample_indices(n_rows: int, cap: int | None, seed: int, split: str) -> list[int]:
    """Indices of at most ``cap`` of ``n_rows`` rows: a seeded random subset, in original order.

    ``cap=None`` (or a cap >= ``n_rows``) keeps every row, so an uncapped split is the source
    order; a capped one depends only on ``(seed, split, n_rows, cap)``.

    Example:
        >>> subsample_indices(5, None, 0, "train")
        [0, 1, 2, 3, 4]
        >>> sub = subsample_indices(100, 3, 0, "test")
        >>> len(sub), sub == sorted(sub), sub == subsample_indices(100, 3, 0, "test")
        (3, True, True)
    """
    if cap is None or cap >= n_rows:
        return list(range(n_rows))
    rng = random.Random(f"subsample-{seed}-{split}")
    return sorted(rng.sample(range(n_rows), cap))


def split_test_flags(problems: list[str], test_size: int | float, seed: int, salt: str) -> list[bool]:
    """Seeded train/test assignment of rows: ``True`` marks a test row.

    Rows with identical problem text always land in the same split, so the splits never
    share a problem. ``test_size`` is a number of distinct problems (int) or a fraction of
    them (float in (0, 1), rounded, at least 1 and leaving at least 1 for train).

    Example:
        >>> flags = split_test_flags(["a", "b", "c", "a"], 1, seed=0, salt="demo")
        >>> sum(flags) in (1, 2), flags[0] == flags[3]
        (True, True)
    """
    unique = list(dict.fromkeys(problems))
    n = len(unique)
    if isinstance(test_size, float):
        if n < 2:
            raise ValueError(f"cannot split {n} distinct problem(s) into train and test")
        n_test = min(max(round(test_size * n), 1), n - 1)
    else:
        n_test = test_size
    if n_test > n:
        raise ValueError(f"test_size={test_size} is more than the {n} distinct problems available")
    test = set(random.Random(f"{salt}-split-{seed}").sample(unique, n_test))
    return [problem in test for problem in problems]


def rows_to_dataset(
    rows: list[dict[str, Any]], features: datasets.Features | None = None
) -> datasets.Dataset:
    """A ``datasets.Dataset`` from a list of row dicts; ``features`` fixes the schema (also when empty).

    Example:
        >>> rows_to_dataset([{"id": "a", "n": 1}]).column_names
        ['id', 'n']
    """
    if features is not None:
        columns = {name: [row[name] for row in rows] for name in features}
        return datasets.Dataset.from_dict(columns, features=features)
    names = list(rows[0]) if rows else []
    return datasets.Dataset.from_dict({name: [row[name] for row in rows] for name in names})


def _option_name(loc: tuple[Any, ...]) -> str:
    return str(loc[0]) if loc else ""


def _clean_message(msg: str) -> str:
    for prefix in ("Value error, ", "Assertion failed, "):
        if msg.startswith(prefix):
            return msg[len(prefix) :]
    return msg


def format_options_error(task_name: str, fields: list[str], exc: ValidationError) -> str:
    """Turn pydantic's ``ValidationError`` for a task's options into one readable sentence.

    Example:
        >>> from ahazero.tasks.arithmetic import ArithmeticTask
        >>> try:
        ...     ArithmeticTask.model_validate({"num_termz": 3})
        ... except ValidationError as exc:
        ...     msg = format_options_error("arithmetic", list(ArithmeticTask.model_fields), exc)
        >>> msg.startswith("task 'arithmetic': unknown option 'num_termz'")
        True
    """
    errors = exc.errors()
    inner = errors[0].get("ctx", {}).get("error") if len(errors) == 1 else None
    if isinstance(inner, TaskOptionsError):  # model_validate runs __init__, which already explained it
        return str(inner)
    valid = ", ".join(fields)
    parts: list[str] = []
    seen: set[str] = set()
    for err in errors:
        option = _option_name(err["loc"])
        if option and option in seen:  # a union reports one error per member; keep the first
            continue
        seen.add(option)
        kind = err["type"]
        if kind == "extra_forbidden":
            close = difflib.get_close_matches(option, fields, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            parts.append(f"unknown option {option!r}; valid options: {valid}{hint}")
        elif kind == "missing":
            parts.append(f"missing required option {option!r}")
        elif not option:
            parts.append(_clean_message(err["msg"]))
        else:
            parts.append(
                f"invalid value for option {option!r}: {_clean_message(err['msg'])} (got {err['input']!r})"
            )
    return f"task {task_name!r}: " + "; ".join(parts)


class Task(BaseModel):
    """Base class of every task: the options are the fields, data comes from :meth:`load`.

    Subclasses set ``name`` and ``columns`` (class attributes, known without loading data)
    and implement :meth:`_load`. Every ``load(split)`` result has at least the columns
    ``id`` (unique across both splits), ``problem`` (the bare question) and ``answer``
    (the gold final answer as a string a math verifier accepts).

    Example:
        >>> from ahazero.tasks.countdown import CountdownTask
        >>> CountdownTask.columns
        ('id', 'problem', 'answer', 'numbers', 'target', 'solution')
        >>> CountdownTask(num_train=3).load("train").num_rows
        3
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: ClassVar[str] = "task"
    columns: ClassVar[tuple[str, ...]] = BASE_COLUMNS

    seed: int = Field(0, description="Seed for generation, splitting and subsampling.")
    num_train: int | None = Field(None, ge=0, description="Cap on train rows (None: all).")
    num_test: int | None = Field(None, ge=0, description="Cap on test rows (None: all).")
    calibration: str | None = Field(
        None, description="A calibration file from `ahazero calibrate`: train only on the problems whose base "
        "pass rate lies in pass_rate_band (the test split is never filtered).")
    pass_rate_band: tuple[float, float] = Field(
        (0.1, 0.7), description="With 'calibration': the base pass rates kept, [low, high] inclusive.")

    def __init__(self, **options: Any) -> None:
        try:
            super().__init__(**options)
        except ValidationError as exc:
            raise TaskOptionsError(
                format_options_error(self.name, list(type(self).model_fields), exc)
            ) from None

    @model_validator(mode="after")
    def _check_calibration(self) -> Task:
        low, high = self.pass_rate_band
        if not 0.0 <= low <= high <= 1.0:
            raise ValueError(f"pass_rate_band must be [low, high] with 0 <= low <= high <= 1 (got [{low}, {high}])")
        if self.calibration is not None:
            read_calibration(self.calibration)  # a missing or broken file fails here, before any model loads
        elif tuple(self.pass_rate_band) != type(self).model_fields["pass_rate_band"].default:
            logger.warning("task %r: pass_rate_band has no effect without the 'calibration' option", self.name)
        return self

    def load(self, split: Split) -> datasets.Dataset:
        """The rows of ``split`` (``"train"`` or ``"test"``) as a ``datasets.Dataset``.

        With ``calibration``, the train split keeps only the problems whose base pass rate lies
        in ``pass_rate_band``.
        """
        split = check_split(split)
        dataset = self._load(split)
        missing = [c for c in self.columns if c not in dataset.column_names]
        if missing:  # a bug in the task, not a user error
            raise RuntimeError(f"task {self.name!r} produced no column(s) {missing} for split {split!r}")
        if split == "train" and self.calibration is not None:
            dataset = self._apply_band(dataset)
        return dataset

    def calibration_counts(self) -> BandCounts | None:
        """How ``pass_rate_band`` splits the train problems (None without ``calibration``).

        Raises the same errors as :meth:`load` (no train problem in the file, none in the band).

        Example:
            >>> from ahazero.tasks.arithmetic import ArithmeticTask
            >>> ArithmeticTask(num_train=4, num_test=1).calibration_counts() is None
            True
        """
        if self.calibration is None:
            return None
        return self._checked_counts(read_calibration(self.calibration), [str(i) for i in self._load("train")["id"]])

    def _checked_counts(self, rates: dict[str, float], ids: list[str]) -> BandCounts:
        counts = band_counts(rates, ids, self.pass_rate_band)
        if counts.missing == counts.total:
            raise CalibrationError(
                f"task {self.name!r}: calibration file {self.calibration} holds none of the {counts.total} train "
                "problems; calibrate this config (same task options and seed) with `ahazero calibrate`")
        if counts.kept == 0:
            raise CalibrationError(f"task {self.name!r}: pass_rate_band leaves no train problem: "
                                   f"{counts.describe(self.pass_rate_band)}")
        return counts

    def _apply_band(self, dataset: datasets.Dataset) -> datasets.Dataset:
        assert self.calibration is not None
        rates = read_calibration(self.calibration)
        ids = [str(i) for i in dataset["id"]]
        counts = self._checked_counts(rates, ids)
        if counts.missing:
            logger.warning("task %r: %d of %d train problems are not in %s and are left out (calibrate with the "
                           "same num_train, or without --limit, to keep them)", self.name, counts.missing,
                           counts.total, self.calibration)
        logger.info("task %r: %s", self.name, counts.describe(self.pass_rate_band))
        keep = [i for i, problem_id in enumerate(ids)
                if problem_id in rates and in_band(rates[problem_id], self.pass_rate_band)]
        return dataset.select(keep)

    def cap(self, split: Split) -> int | None:
        """The row cap for ``split`` (``num_train`` or ``num_test``).

        Example:
            >>> from ahazero.tasks.arithmetic import ArithmeticTask
            >>> ArithmeticTask(num_test=7).cap("test")
            7
        """
        return self.num_train if check_split(split) == "train" else self.num_test

    def _load(self, split: Split) -> datasets.Dataset:
        raise NotImplementedError
