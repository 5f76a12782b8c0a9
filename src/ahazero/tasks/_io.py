"""Reading task data: local ``.jsonl`` / ``.json`` / ``.parquet`` files and Hugging Face Hub datasets.

Local files are read directly (``json`` / ``pyarrow.parquet``), without the ``datasets``
cache, so they load fast and leave nothing behind. A data file must be a regular, non-empty
file (checked with ``os.stat`` before it is opened, so a FIFO or ``/dev/zero`` never hangs);
JSON and JSON Lines files are read up to :data:`MAX_JSON_BYTES`; unreadable content is a
``ValueError`` naming the file and what was expected. :func:`probe_columns` reads only the
head of a file, so a config check can name missing columns before any model loads.

Hub datasets go through ``datasets.load_dataset``; a failure there becomes a
:class:`TaskDataError` that says how to use a local copy instead.

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
import re
import stat
from pathlib import Path
from typing import Any

import datasets

from ahazero.cache.paths import file_kind
from ahazero.tasks.base import TaskDataError

__all__ = ["FILE_SUFFIXES", "MAX_JSON_BYTES", "check_data_file", "is_local_source", "load_hub_split", "probe_columns",
           "read_records", "require_columns"]

logger = logging.getLogger(__name__)

FILE_SUFFIXES: tuple[str, ...] = (".jsonl", ".json", ".parquet")
#: The largest JSON / JSON Lines file read into memory (use Parquet for more).
MAX_JSON_BYTES = 1 << 30
_EXPECTED = "a .jsonl, .json or .parquet file of rows"
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


def check_data_file(path: str | os.PathLike[str]) -> Path:
    """``path`` as a :class:`~pathlib.Path` once ``os.stat`` shows a regular, non-empty data file.

    Nothing is opened, so a FIFO or a device is refused without blocking. Raises
    :class:`FileNotFoundError` for a missing file and :class:`ValueError` otherwise.

    Example:
        >>> check_data_file("/dev/zero")
        Traceback (most recent call last):
        ...
        ValueError: /dev/zero is a character device, not a data file; expected a .jsonl, .json or .parquet file of rows
    """
    path = Path(path).expanduser()
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise FileNotFoundError(f"data file not found: {path}") from None
    except OSError as err:
        raise ValueError(f"{path}: cannot read it ({err.strerror or err})") from None
    if not stat.S_ISREG(info.st_mode):
        raise ValueError(f"{path} is a {file_kind(info.st_mode)}, not a data file; expected {_EXPECTED}")
    suffix = path.suffix.lower()
    if suffix not in FILE_SUFFIXES:
        raise ValueError(f"{path}: unsupported file type {suffix!r}; use one of {', '.join(FILE_SUFFIXES)}")
    if info.st_size == 0:
        raise ValueError(f"{path} is empty; expected {_EXPECTED}")
    if suffix != ".parquet" and info.st_size > MAX_JSON_BYTES:
        raise ValueError(f"{path} is {info.st_size} bytes, more than the {MAX_JSON_BYTES} read from a JSON file; "
                         "convert it to .parquet")
    return path


def _read_text(path: Path) -> str:
    with path.open("rb") as fh:
        data = fh.read(MAX_JSON_BYTES + 1)
    if len(data) > MAX_JSON_BYTES:
        raise ValueError(f"{path} holds more than {MAX_JSON_BYTES} bytes; convert it to .parquet")
    return _decode(data, path)


def _decode(data: bytes, path: Path) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise ValueError(f"{path}: byte {err.start} is not UTF-8 text; expected JSON text "
                         f"(is it binary data, or another format?)") from None


def _json_loads(text: str, where: str) -> Any:
    try:
        return json.loads(text)
    except RecursionError:
        raise ValueError(f"{where}: JSON nested too deeply") from None


def _parse_line(line: str, lineno: int, path: Path) -> dict[str, Any]:
    try:
        record = _json_loads(line, f"{path}:{lineno}")
    except json.JSONDecodeError as err:
        raise ValueError(f"{path}:{lineno}: invalid JSON line: {err}") from None
    if not isinstance(record, dict):
        raise ValueError(f"{path}:{lineno}: expected a JSON object per line")
    return record


def _lines(text: str) -> list[str]:
    """JSON Lines split on line breaks only (a JSON string may hold a raw U+2028)."""
    return [line.removesuffix("\r") for line in text.split("\n")]


def _parse_jsonl(text: str, path: Path) -> list[dict[str, Any]]:
    return [_parse_line(line, lineno, path) for lineno, line in enumerate(_lines(text), 1) if line.strip()]


def _parquet_error(path: Path, err: Exception) -> ValueError:
    first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    first = re.sub(r"^Could not open Parquet input source '.*?': ", "", first)
    return ValueError(f"{path}: not a readable Parquet file ({first})")


def _read_parquet(path: Path) -> list[dict[str, Any]]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        return pq.read_table(path).to_pylist()
    except (pa.ArrowException, OSError, ValueError) as err:
        raise _parquet_error(path, err) from None


def read_records(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The rows of a local ``.jsonl``, ``.json`` or ``.parquet`` file as a list of dicts.

    A ``.json`` file may hold a list of objects, ``{"data": [...]}``, a columnar object
    ``{"col": [...]}`` or (as often happens) JSON Lines. Raises :class:`FileNotFoundError`
    for a missing file and :class:`ValueError` for anything that is not a regular file, an
    unsupported suffix, malformed content or a file without rows.

    Example:
        >>> import pathlib, tempfile
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "rows.json"
        >>> _ = path.write_text('[{"q": "a"}, {"q": "b"}]')
        >>> [r["q"] for r in read_records(path)]
        ['a', 'b']
    """
    path = check_data_file(path)
    if path.suffix.lower() == ".parquet":
        records = _read_parquet(path)
    else:
        text = _read_text(path)
        if path.suffix.lower() == ".jsonl":
            records = _parse_jsonl(text, path)
        else:
            try:
                records = _json_records(_json_loads(text, str(path)), path)
            except json.JSONDecodeError:
                records = _parse_jsonl(text, path)  # JSON Lines under a .json name
    if not records:
        raise ValueError(f"{path} holds no rows; expected {_EXPECTED}")
    return records


#: The most bytes :func:`probe_columns` reads of a JSON Lines file to find its first row.
PROBE_BYTES = 16 << 20


def probe_columns(path: str | os.PathLike[str]) -> list[str]:
    """The column names of a data file's first row, reading as little as possible.

    Parquet: the schema in the footer; JSON Lines: the first non-empty line (within 16 MiB);
    JSON: the whole file. Errors as :func:`read_records`.

    Example:
        >>> import pathlib, tempfile
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "rows.jsonl"
        >>> _ = path.write_text('{"problem": "1+1", "answer": 2}\\n{"oops"')
        >>> probe_columns(path)
        ['problem', 'answer']
    """
    path = check_data_file(path)
    suffix = path.suffix.lower()
    if suffix == ".parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        try:
            return list(pq.ParquetFile(path).schema_arrow.names)
        except (pa.ArrowException, OSError, ValueError) as err:
            raise _parquet_error(path, err) from None
    if suffix == ".json":
        return list(read_records(path)[0])
    with path.open("rb") as fh:
        head = fh.read(PROBE_BYTES)
    lines = head.split(b"\n")
    if len(lines) == 1 and len(head) == PROBE_BYTES:
        raise ValueError(f"{path}: no line break in its first {PROBE_BYTES} bytes; expected JSON Lines")
    complete = lines if len(head) < PROBE_BYTES else lines[:-1]
    for lineno, line in enumerate(_lines(_decode(b"\n".join(complete), path)), 1):
        if line.strip():
            return list(_parse_line(line, lineno, path))
    raise ValueError(f"{path} holds no rows; expected {_EXPECTED}")


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
