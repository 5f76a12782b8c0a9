"""Write a result file whole or not at all: a temp file in the same folder, fsync, then a rename.

A reader (or a command killed half-way) never sees half a file: until the rename the old
file, if any, is untouched, and the temp file (``.<name>.<random>.tmp``) is removed when the
write fails. A failed write raises :class:`FileWriteError`, one line naming the file, the
reason (a full disk, a read-only folder) and what to do.

Example:
    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "summary.json"
    >>> atomic_write_text(path, '{"kept": 3}\\n').read_text()
    '{"kept": 3}\\n'
    >>> with atomic_writer(path) as fh:
    ...     _ = fh.write("line 1\\n")
    >>> path.read_text(), sorted(p.name for p in path.parent.iterdir())
    ('line 1\\n', ['summary.json'])
"""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO

__all__ = ["FileWriteError", "atomic_write_bytes", "atomic_write_lines", "atomic_write_text", "atomic_writer",
           "write_error_message"]


class FileWriteError(RuntimeError):
    """A result file could not be written (a full disk, a read-only or vanished folder); one line."""


def write_error_message(path: str | Path, err: OSError, *, then: str = "run the command again") -> str:
    """What failed, why, and what to do: ``cannot write PATH: REASON; HINT, then THEN``.

    Example:
        >>> import errno
        >>> write_error_message("out/s.jsonl", OSError(errno.ENOSPC, "No space left on device"))
        'cannot write out/s.jsonl: No space left on device; free space on that disk, then run the command again'
    """
    if err.errno in (errno.ENOSPC, errno.EDQUOT):
        hint = "free space on that disk"
    elif err.errno == errno.EROFS:
        hint = "that filesystem is read-only: choose a folder on another one"
    else:
        hint = "check that the folder exists and is writable"
    return f"cannot write {path}: {err.strerror or err}; {hint}, then {then}"


def _mode_of(path: Path) -> int:
    try:
        return path.stat().st_mode & 0o7777
    except OSError:
        return 0o644


@contextlib.contextmanager
def atomic_writer(path: str | Path, *, then: str = "run the command again", binary: bool = False) -> Iterator[IO]:
    """A text (UTF-8) or ``binary`` handle whose contents replace ``path`` when the block ends without an error.

    The parent folder is created when missing. ``then`` ends the error message (what to do
    after fixing it).

    Example:
        >>> import tempfile, pathlib
        >>> path = pathlib.Path(tempfile.mkdtemp()) / "a.jsonl"
        >>> with atomic_writer(path) as fh:
        ...     _ = fh.write('{"id": 1}\\n')
        >>> path.read_text()
        '{"id": 1}\\n'
    """
    path = Path(path)
    tmp: Path | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        tmp = Path(name)
        with os.fdopen(fd, "wb") if binary else os.fdopen(fd, "w", encoding="utf-8") as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.chmod(tmp, _mode_of(path))  # mkstemp makes it private; keep the replaced file's mode
        os.replace(tmp, path)
        tmp = None
    except OSError as err:
        raise FileWriteError(write_error_message(path, err, then=then)) from err
    finally:
        if tmp is not None:
            with contextlib.suppress(OSError):
                tmp.unlink()


def atomic_write_text(path: str | Path, text: str, *, then: str = "run the command again") -> Path:
    """Replace ``path`` with ``text`` atomically; return ``path``.

    Example:
        >>> import tempfile, pathlib
        >>> atomic_write_text(pathlib.Path(tempfile.mkdtemp()) / "r.md", "# report\\n").read_text()
        '# report\\n'
    """
    with atomic_writer(path, then=then) as fh:
        fh.write(text)
    return Path(path)


def atomic_write_bytes(path: str | Path, data: bytes, *, then: str = "run the command again") -> Path:
    """Replace ``path`` with ``data`` atomically; return ``path``.

    Example:
        >>> import tempfile, pathlib
        >>> atomic_write_bytes(pathlib.Path(tempfile.mkdtemp()) / "plot.png", b"PNG data").read_bytes()
        b'PNG data'
    """
    with atomic_writer(path, then=then, binary=True) as fh:
        fh.write(data)
    return Path(path)


def atomic_write_lines(path: str | Path, lines: Iterable[str], *, then: str = "run the command again") -> Path:
    """Replace ``path`` with ``lines`` (each written followed by a newline) atomically; return ``path``.

    Example:
        >>> import tempfile, pathlib
        >>> atomic_write_lines(pathlib.Path(tempfile.mkdtemp()) / "s.jsonl", ['{"a": 1}', '{"a": 2}']).read_text()
        '{"a": 1}\\n{"a": 2}\\n'
    """
    with atomic_writer(path, then=then) as fh:
        for line in lines:
            fh.write(line + "\n")
    return Path(path)
