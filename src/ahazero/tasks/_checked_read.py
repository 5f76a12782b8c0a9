"""Reading a benchmark task's local data file with one clear error per kind of bad file.

:func:`read_task_file` is :func:`ahazero.tasks._io.read_records` (which refuses folders,
devices, binary and empty files, malformed JSON and unreadable parquet) plus the task's needed
columns: every failure is one :class:`DataFileError` line naming the task, the file and what
was expected.

Example:
    >>> import pathlib, tempfile
    >>> empty = pathlib.Path(tempfile.mkdtemp()) / "test.jsonl"
    >>> _ = empty.write_text("")
    >>> try:
    ...     read_task_file(empty, ["question", "answer"], "gsm8k")
    ... except DataFileError as err:
    ...     print(str(err).replace(str(empty), "test.jsonl"))
    task 'gsm8k': test.jsonl is empty; expected a .jsonl, .json or .parquet file of rows (the task needs the columns question, answer)
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ahazero.tasks._io import read_records, require_columns
from ahazero.tasks.base import TaskDataError

__all__ = ["DataFileError", "read_task_file"]


class DataFileError(TaskDataError, ValueError):
    """A task's data file cannot be used: unreadable, empty, or without the needed columns."""


def read_task_file(path: str | os.PathLike[str], needed: list[str], task: str) -> list[dict[str, Any]]:
    """The rows of a local ``.jsonl`` / ``.json`` / ``.parquet`` file, checked for ``needed`` columns.

    Example:
        >>> import json, pathlib, tempfile
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "rows.jsonl"
        >>> _ = path.write_text(json.dumps({"question": "1+1?", "answer": "#### 2"}) + "\\n")
        >>> read_task_file(path, ["question", "answer"], "gsm8k")
        [{'question': '1+1?', 'answer': '#### 2'}]
    """
    path = Path(path).expanduser()
    columns = ", ".join(needed)
    try:
        records = read_records(path)
    except (DataFileError, FileNotFoundError):  # a missing file already says which
        raise
    except Exception as err:  # noqa: BLE001 - binary, empty, malformed JSON, unreadable parquet: one line
        message = str(err).splitlines()[0] if str(err) else type(err).__name__
        if str(path) not in message:
            message = f"{path}: {message}"
        raise DataFileError(f"task {task!r}: {message} (the task needs the columns {columns})") from None
    if not records:
        raise DataFileError(
            f"task {task!r}: no rows in {path} (an empty file); "
            f"expected rows with the columns {columns}"
        )
    try:
        require_columns(records, needed, str(path))
    except ValueError as err:
        raise DataFileError(f"task {task!r}: {err}") from None
    return records
