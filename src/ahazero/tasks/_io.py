"""Reading task data: local ``.jsonl`` / ``.json`` / ``.parquet`` files and Hugging Face Hub datasets.

Local files are read directly (``json`` / ``pyarrow.parquet``), without the ``datasets``
cache, so they load fast and leave nothing behind. Hub datasets go through
``datasets.load_dataset``; a failure there becomes a :class:`TaskDataError` that says how
to use a local copy instead.

Example:
    >>> import json, pathlib, tempfile
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "rows.jsonl"
    >>> _ = path.write_text(json.dumps({"problem": "1+1", "answer": 2}) + "\\n")
    >>> read_records(path)
    [{'problem': '1+1', 'answer': 2}]
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

import datasets

from ahazero.tasks.base import TaskDataError

__all__ = ["FILE_SUFFIXES", "is_local_source", "load_hub_split", "read_records", "require_columns"]

logger = logging.getLogger(__name__)

FILE_SUFFIXES: tuple[str, ...] = (".jsonl", ".json", ".parquet")


def is_local_source(source: str) -> bool:
    """Whether ``source`` names a local path rather than a hub dataset id.

    A source is local when it exists on disk, starts like a path (``/``, ``.``, ``~``) or ends
    with a data-file suffix; anything else (``"openai/gsm8k"``) is a hub id.

    Example:
        >>> is_local_source("openai/gsm8k"), is_local_source("./data/gsm8k"), is_local_source("x.jsonl")
        (False, True, True)
    """
    return (
        os.path.exists(os.path.expanduser(source))
        or source.startswith(("/", ".", "~"))
        or source.lower().endswith(FILE_SUFFIXES)
    )


def _json_records(data: Any, path: Path) -> list[dict[str, Any]]:
    if isinstance(data, dict):
        if isinstance(data.get("data"), list):
            data = data["data"]
        elif data and all(isinstance(v, list) for v in data.values()):  # columnar {"col": [...]}
            lengths = {len(v) for v in data.values()}
            if len(lengths) != 1:
                raise ValueError(f"{path}: columns of a columnar JSON object must have equal lengths")
            keys = list(data)
            data = [dict(zip(keys, values, strict=True)) for values in zip(*data.values(), strict=True)]
    if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
        raise ValueError(
            f"{path}: expected a JSON list of objects, an object with a 'data' list, "
            "a columnar object or JSON Lines"
        )
    return data


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    records = []
    with path.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as err:
                raise ValueError(f"{path}:{lineno}: invalid JSON line: {err}") from None
            if not isinstance(record, dict):
                raise ValueError(f"{path}:{lineno}: expected a JSON object per line")
            records.append(record)
    return records


def read_records(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The rows of a local ``.jsonl``, ``.json`` or ``.parquet`` file as a list of dicts.

    A ``.json`` file may hold a list of objects, ``{"data": [...]}``, a columnar object
    ``{"col": [...]}`` or (as often happens) JSON Lines. Raises :class:`FileNotFoundError`
    for a missing file and :class:`ValueError` for an unsupported suffix or malformed content.

    Example:
        >>> import pathlib, tempfile
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "rows.json"
        >>> _ = path.write_text('[{"q": "a"}, {"q": "b"}]')
        >>> [r["q"] for r in read_records(path)]
        ['a', 'b']
    """
    path = Path(path).expanduser()
    if not path.is_file():
        raise FileNotFoundError(f"data file not found: {path}")
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        return _read_jsonl(path)
    if suffix == ".json":
        text = path.read_text(encoding="utf-8")
        try:
            data = json.loads(text)
        except json.JSONDecodeError:
            return _read_jsonl(path)  # JSON Lines under a .json name
        return _json_records(data, path)
    if suffix == ".parquet":
        import pyarrow.parquet as pq

        return pq.read_table(path).to_pylist()
    raise ValueError(f"{path}: unsupported file type {suffix!r}; use one of {', '.join(FILE_SUFFIXES)}")


def require_columns(records: list[dict[str, Any]], needed: list[str], where: str) -> None:
    """Raise :class:`ValueError` naming the first of ``needed`` missing from any record.

    Example:
        >>> require_columns([{"a": 1}], ["a"], "rows.jsonl")
        >>> try:
        ...     require_columns([{"a": 1}], ["a", "b"], "rows.jsonl")
        ... except ValueError as err:
        ...     print(err)
        rows.jsonl: missing column 'b'; the data has columns: a
    """
    for index, record in enumerate(records):
        for column in needed:
            if column not in record:
                have = ", ".join(record) if index == 0 else ", ".join(records[0])
                row = "" if index == 0 else f" (row {index})"
                raise ValueError(f"{where}: missing column {column!r}{row}; the data has columns: {have}")


def load_hub_split(
    task_name: str, repo_id: str, config: str | None, split: str, local_hint: str
) -> list[dict[str, Any]]:
    """Rows of ``split`` of the hub dataset ``repo_id`` (optionally a named ``config``).

    Any failure (no network, unknown repo, missing split) becomes a :class:`TaskDataError`
    that names the dataset and explains ``local_hint`` (how to point the task at a local copy).
    """
    logger.info(
        "task %s: loading %s (config %s, split %s) from the Hugging Face Hub",
        task_name,
        repo_id,
        config,
        split,
    )
    args = (repo_id, config) if config is not None else (repo_id,)
    try:
        dataset = datasets.load_dataset(*args, split=split)
    except Exception as err:  # noqa: BLE001 - any hub/network failure gets the same advice
        config_text = f", config {config!r}" if config is not None else ""
        raise TaskDataError(
            f"task {task_name!r}: could not load {repo_id!r}{config_text}, split {split!r} from the "
            f"Hugging Face Hub ({type(err).__name__}: {err}). If the hub is unreachable from this "
            f"machine, download the dataset elsewhere and use a local copy: {local_hint}"
        ) from err
    return dataset.to_list()
