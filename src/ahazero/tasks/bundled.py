"""Benchmark data shipped inside the package: GSM8K (train/test) and MATH-500, sha256-pinned.

The files in ``ahazero/tasks/data/`` are the upstream MIT-licensed JSONL files, gzip-compressed
(origin, licenses and pins in ``data/README.md``). :func:`read_bundled` decompresses one,
checks the sha256 of the decompressed bytes against its pin, and returns the rows: a damaged
or edited copy is refused with an error naming the file.

:func:`hub_or_bundled` is how the ``gsm8k`` and ``math500`` tasks pick their source when
``source`` is the default hub id: the hub when it is reachable (as ``datasets.load_dataset``
always did), else the bundled copy; a log line says which was used.

Example:
    >>> sorted(BUNDLED)
    [('gsm8k', 'test'), ('gsm8k', 'train'), ('math500', 'test')]
    >>> rows = read_bundled("gsm8k", "test")
    >>> len(rows), sorted(rows[0])
    (1319, ['answer', 'question'])
"""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
import zlib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from ahazero.cache.fetch import hub_reachable
from ahazero.tasks._io import load_hub_split
from ahazero.tasks.base import TaskDataError

__all__ = ["BUNDLED", "BUNDLED_SOURCE", "BundledFile", "bundled_path", "hub_or_bundled", "read_bundled"]

logger = logging.getLogger(__name__)

#: The ``source`` value that asks for the bundled copy explicitly.
BUNDLED_SOURCE = "bundled"


@dataclass(frozen=True)
class BundledFile:
    """One bundled data file: its name in ``data/``, the pin of its uncompressed bytes, its row count."""

    filename: str
    sha256: str
    rows: int
    upstream: str


BUNDLED: dict[tuple[str, str], BundledFile] = {
    ("gsm8k", "train"): BundledFile(
        "gsm8k-train.jsonl.gz", "17f347dc51477c50d4efb83959dbb7c56297aba886e5544ee2aaed3024813465", 7473,
        "openai/grade-school-math grade_school_math/data/train.jsonl"),
    ("gsm8k", "test"): BundledFile(
        "gsm8k-test.jsonl.gz", "3730d312f6e3440559ace48831e51066acaca737f6eabec99bccb9e4b3c39d14", 1319,
        "openai/grade-school-math grade_school_math/data/test.jsonl"),
    ("math500", "test"): BundledFile(
        "math500-test.jsonl.gz", "35dc41080a3680858b27fa7e0533d2d547825316fc5dafe5d316f4ccc5a06132", 500,
        "openai/prm800k prm800k/math_splits/test.jsonl"),
}


def _entry(dataset: str, split: str) -> BundledFile:
    try:
        return BUNDLED[(dataset, split)]
    except KeyError:
        valid = ", ".join(f"{d}/{s}" for d, s in sorted(BUNDLED))
        raise ValueError(f"no bundled data for {dataset}/{split}; bundled: {valid}") from None


def bundled_path(dataset: str, split: str) -> Path:
    """Where the bundled file of ``dataset``/``split`` lies inside the installed package.

    Example:
        >>> bundled_path("math500", "test").name
        'math500-test.jsonl.gz'
    """
    entry = _entry(dataset, split)
    return Path(str(resources.files("ahazero.tasks").joinpath("data", entry.filename)))


def read_bundled(dataset: str, split: str) -> list[dict[str, Any]]:
    """The rows of a bundled file, after checking its decompressed sha256 against the pin.

    Raises :class:`TaskDataError` naming the file when it is missing, not gzip, or not the
    pinned content (a reinstall of the package restores it).

    Example:
        >>> read_bundled("math500", "test")[0]["unique_id"]
        'test/precalculus/807.json'
    """
    entry = _entry(dataset, split)
    path = bundled_path(dataset, split)
    try:
        data = gzip.decompress(path.read_bytes())
    except FileNotFoundError:
        raise TaskDataError(f"bundled data file missing: {path} (reinstall ahazero)") from None
    except (OSError, EOFError, zlib.error) as err:
        raise TaskDataError(f"bundled data file {path} is not readable gzip ({err}); reinstall ahazero") from None
    digest = hashlib.sha256(data).hexdigest()
    if digest != entry.sha256:
        raise TaskDataError(
            f"bundled data file {path} does not match its pinned sha256 (got {digest}, expected "
            f"{entry.sha256}); refusing to use it (reinstall ahazero)"
        )
    rows = [json.loads(line) for line in data.decode("utf-8").splitlines() if line.strip()]
    if len(rows) != entry.rows:  # cannot happen with the pinned bytes; a guard against a wrong pin table
        raise TaskDataError(f"bundled data file {path}: {len(rows)} rows, expected {entry.rows}")
    return rows


def hub_or_bundled(
    task_name: str, repo_id: str, config: str | None, split: str, local_hint: str, dataset: str
) -> tuple[list[dict[str, Any]], str]:
    """Rows of ``split`` from the hub when it is reachable, else (or when that fails) from the bundled copy.

    Returns the rows and a description of where they came from (for logs and error messages).
    A hub that answers but fails to serve the dataset is reported with a warning before the
    bundled copy is used; nothing falls back silently.

    Example:
        >>> import os; previous = os.environ.get("HF_HUB_OFFLINE"); os.environ["HF_HUB_OFFLINE"] = "1"
        >>> rows, where = hub_or_bundled("gsm8k", "openai/gsm8k", "main", "test", "", "gsm8k")
        >>> len(rows), where.startswith("bundled copy")
        (1319, True)
        >>> _ = os.environ.pop("HF_HUB_OFFLINE") if previous is None else os.environ.update(HF_HUB_OFFLINE=previous)
    """
    path = bundled_path(dataset, split)
    if hub_reachable():
        try:
            return load_hub_split(task_name, repo_id, config, split, local_hint), f"{repo_id} ({split}, hub)"
        except TaskDataError as err:
            cause = err.__cause__ or err
            logger.warning("task %s: the hub failed to serve %s, split %s (%s: %s); using the bundled copy %s",
                           task_name, repo_id, split, type(cause).__name__, str(cause)[:200], path.name)
    else:
        logger.info("task %s: the Hugging Face Hub is not reachable; using the bundled copy of %s (%s)",
                    task_name, repo_id, path.name)
    return read_bundled(dataset, split), f"bundled copy {path}"
