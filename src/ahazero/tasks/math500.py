"""``math500``: the MATH-500 competition-math subset: from the Hugging Face Hub, the bundled copy, or a local file.

``source`` is a hub id (default ``HuggingFaceH4/MATH-500``, whose only split is ``test``),
``bundled`` (the upstream file shipped in the package, sha256-pinned: see
:mod:`ahazero.tasks.bundled`), a local ``.jsonl`` / ``.json`` / ``.parquet`` file, or a directory
holding ``test.jsonl`` (the hub repository layout). With the default hub id, the bundled copy is
used when the hub is not reachable or fails to serve it, with a log line saying so. Rows have
``problem``, ``answer`` and usually ``solution``, ``subject``, ``level`` and ``unique_id``
(missing ones become ``""`` / ``None`` / ``math500-<row>``).

MATH-500 has no train set. So that the task is usable for quick runs, ``test`` is a seeded sample
of ``test_size`` problems (default 100) and ``train`` is the rest (400): disjoint, and both
fixed by ``seed``. For the full 500-problem evaluation use ``test_size=500`` (train is then
empty). ``id`` is the dataset's ``unique_id`` (e.g. ``test/precalculus/807.json``).

Example:
    >>> Math500Task(source="/data/math500.jsonl", test_size=50).columns
    ('id', 'problem', 'answer', 'solution', 'subject', 'level')
"""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any, ClassVar

import datasets
from pydantic import Field

from ahazero.tasks._checked_read import read_task_file
from ahazero.tasks._io import FILE_SUFFIXES, is_local_source, load_hub_split, require_columns
from ahazero.tasks.base import (
    Split,
    Task,
    TaskDataError,
    rows_to_dataset,
    split_test_flags,
    subsample_indices,
)
from ahazero.tasks.bundled import BUNDLED_SOURCE, bundled_path, hub_or_bundled, read_bundled

__all__ = ["Math500Task", "parse_level"]

logger = logging.getLogger(__name__)

HUB_ID = "HuggingFaceH4/MATH-500"
COLUMNS = ["problem", "answer"]

_LOCAL_HINT = (
    "source='bundled' (the copy shipped with ahazero), or "
    "source='/path/to/math500/test.jsonl' (fields problem, solution, answer, subject, level, unique_id)"
)


def parse_level(value: Any) -> int | None:
    """A MATH difficulty level as an int: ``3``, ``"3"`` and ``"Level 3"`` all give ``3``.

    Example:
        >>> parse_level("Level 5"), parse_level(2), parse_level("?")
        (5, 2, None)
    """
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return value
    match = re.search(r"\d+", str(value))
    return int(match.group()) if match else None


class Math500Task(Task):
    """MATH-500 with a seeded, disjoint train/test split of its single 500-problem set.

    Example:
        >>> import json, pathlib, tempfile
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "test.jsonl"
        >>> _ = path.write_text("".join(json.dumps({"problem": f"{i} + 1?", "answer": str(i + 1),
        ...     "unique_id": f"test/algebra/{i}.json", "level": 1, "subject": "Algebra"}) + "\\n"
        ...     for i in range(10)))
        >>> task = Math500Task(source=str(path), test_size=3)
        >>> len(task.load("train")), len(task.load("test"))
        (7, 3)
    """

    name: ClassVar[str] = "math500"
    columns: ClassVar[tuple[str, ...]] = ("id", "problem", "answer", "solution", "subject", "level")
    features: ClassVar[datasets.Features] = datasets.Features(
        {
            **{name: datasets.Value("string") for name in ("id", "problem", "answer", "solution", "subject")},
            "level": datasets.Value("int64"),
        }
    )

    source: str = Field(
        HUB_ID,
        min_length=1,
        description="Hub dataset id (the default falls back to the bundled copy without the hub), "
        "'bundled' (the copy shipped with ahazero), or a local .jsonl/.json/.parquet file.",
    )
    test_size: int = Field(100, ge=1, description="Problems in the seeded test sample; train is the rest.")

    def _records(self) -> tuple[list[dict[str, Any]], str]:
        if self.source == BUNDLED_SOURCE:
            return read_bundled("math500", "test"), f"bundled copy {bundled_path('math500', 'test')}"
        if not is_local_source(self.source):
            if self.source == HUB_ID:
                return hub_or_bundled(self.name, self.source, None, "test", _LOCAL_HINT, "math500")
            return load_hub_split(self.name, self.source, None, "test", _LOCAL_HINT), self.source
        path = Path(self.source).expanduser()
        if path.is_dir():
            candidates = [path / f"test{suffix}" for suffix in FILE_SUFFIXES]
            found = [c for c in candidates if c.is_file()]
            if not found:
                raise FileNotFoundError(f"task 'math500': no test.jsonl, test.json or test.parquet in {path}")
            path = found[0]
        elif not path.exists():
            raise FileNotFoundError(
                f"task 'math500': source file not found: {self.source!r} (expected a local "
                ".jsonl/.json/.parquet file or a hub id such as 'HuggingFaceH4/MATH-500')"
            )
        return read_task_file(path, COLUMNS, self.name), str(path)

    def _load(self, split: Split) -> datasets.Dataset:
        records, where = self._records()
        require_columns(records, COLUMNS, where)
        rows = [
            {
                "id": str(record.get("unique_id") or f"math500-{index:04d}"),
                "problem": str(record["problem"]),
                "answer": str(record["answer"]).strip(),
                "solution": str(record.get("solution") or ""),
                "subject": str(record.get("subject") or ""),
                "level": parse_level(record.get("level")),
            }
            for index, record in enumerate(records)
        ]
        ids = [row["id"] for row in rows]
        if len(set(ids)) != len(ids):
            duplicate = next(i for i in ids if ids.count(i) > 1)
            raise ValueError(f"{where}: duplicate unique_id {duplicate!r}")
        try:
            flags = split_test_flags([row["problem"] for row in rows], self.test_size, self.seed, "math500")
        except ValueError as err:
            raise ValueError(f"task 'math500': {err} in {where}") from None
        selected = [row for row, is_test in zip(rows, flags, strict=True) if is_test == (split == "test")]
        if not selected:
            raise TaskDataError(
                f"task 'math500': test_size={self.test_size} puts all {len(rows)} problems of {where} in the "
                f"test split, so there is nothing to {'train on' if split == 'train' else 'test'}; lower "
                "test_size to train (test_size: 500 is for evaluation only)"
            )
        keep = subsample_indices(len(selected), self.cap(split), self.seed, split)
        logger.info("task math500: %d of %d %s rows from %s", len(keep), len(selected), split, where)
        return rows_to_dataset([selected[i] for i in keep], self.features)
