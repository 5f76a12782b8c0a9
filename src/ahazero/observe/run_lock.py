"""One writer per run directory (and per sweep folder, per output file): an exclusive lock on ``.lock``.

The lock is ``flock`` on an open file, so the kernel drops it when the holding process ends,
however it ends (``kill -9`` included): a lock is never left stuck. The file holds the
holder's pid, host, start time and command line, for the error a second writer gets. A run
directory's ``.lock`` file stays (deleting it would let two processes lock two different
files); the lock of an output file (:meth:`RunLock.for_file`, ``.<file name>.lock`` beside it)
is removed when released, and an acquire that finds it removed under it locks the new one.

Within one process the lock is re-entrant: ``ahazero stages`` holds a stage's run directory
while it clears it, and the ``train`` it then calls takes the same lock again.

Example:
    >>> import tempfile
    >>> root = tempfile.mkdtemp()
    >>> with RunLock(root):
    ...     with RunLock(root):  # the same process: re-entrant
    ...         pass
    ...     print("held:", RunLock(root).holder() is None)  # None: no *other* process holds it
    held: True
"""

from __future__ import annotations

import json
import logging
import os
import shlex
import shutil
import socket
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from ahazero.config.output_paths import check_output_files
from ahazero.observe.rundir import RunDirError

try:
    import fcntl
except ImportError:  # pragma: no cover - not on POSIX
    fcntl = None  # type: ignore[assignment]

__all__ = ["LOCK_NAME", "RunLock", "RunLockedError", "claim_output", "lock_holder"]

logger = logging.getLogger("ahazero.observe.run_lock")

LOCK_NAME = ".lock"
#: A refused acquire is tried again this often (a probe by :meth:`RunLock.holder` holds the lock for microseconds).
_TRIES = 3


class RunLockedError(RunDirError):
    """Another process is writing this run directory (or sweep folder, or output file)."""


@dataclass
class _Held:
    fd: int
    count: int
    pid: int
    created: list[Path]  #: folders the acquire made for the lock file, innermost first


#: Locks this process holds: lock file (resolved) -> descriptor and how many holders share it.
_HELD: dict[str, _Held] = {}
_HELD_GUARD = threading.Lock()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _command(argv: Any) -> str | None:
    """A recorded ``sys.argv`` as a short command line (``python -m ahazero`` reads as ``ahazero``)."""
    if not isinstance(argv, list) or not argv or not all(isinstance(a, str) for a in argv):
        return None
    program = Path(argv[0])
    name = ["python", "-c"] if argv[0] == "-c" else [program.parent.name if program.name == "__main__.py"
                                                     else program.name]
    text = shlex.join([*name, *argv[1:]])
    return text if len(text) <= 200 else text[:197] + "..."


def lock_holder(text: str) -> str:
    """Describe the holder recorded in a lock file's text (pid, host, since when, its command).

    Example:
        >>> lock_holder('{"pid": 4242, "host": "gpu7", "started_at": "2026-01-02T03:04:05"}')
        'pid 4242 on gpu7, since 2026-01-02T03:04:05'
        >>> lock_holder('{"pid": 4242, "host": "gpu7", "started_at": "2026-01-02T03:04:05", '
        ...             '"command": ["/venv/bin/ahazero", "train", "configs/aha.yaml"]}')
        'pid 4242 on gpu7, since 2026-01-02T03:04:05, running `ahazero train configs/aha.yaml`'
        >>> lock_holder("")
        'a process that has not recorded its pid yet'
    """
    try:
        info = json.loads(text)
        pid, host = int(info["pid"]), str(info["host"])
    except (ValueError, KeyError, TypeError):
        return "a process that has not recorded its pid yet"
    out = f"pid {pid} on {host}, since {info.get('started_at', '?')}"
    command = _command(info.get("command"))
    if command:
        out += f", running `{command}`"
    if host == socket.gethostname() and not _alive(pid):
        out += " (that pid has ended; a process it started still holds the lock)"
    return out


def _same_file(fd: int, path: Path) -> bool:
    """True when the open ``fd`` is still the file at ``path`` (a released output lock is removed)."""
    try:
        a, b = os.fstat(fd), os.stat(path)
    except FileNotFoundError:
        return False
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


def claim_output(paths: Sequence[str | Path], *, overwrite: bool = False, flag: str = "--out") -> RunLock:
    """Check where one output's files go, lock the first, check again under the lock; return the held lock.

    The files must be writable and, without ``overwrite``, new
    (:func:`ahazero.config.output_paths.check_output_files`); checked again once locked, so
    a second command that waited for the first does not replace what the first wrote.
    Release the lock (or use it in a ``with``) when the files are written.

    Example:
        >>> import tempfile, pathlib
        >>> out = pathlib.Path(tempfile.mkdtemp()) / "s.jsonl"
        >>> with claim_output([out, out.with_suffix(".summary.json")]) as lock:
        ...     _ = out.write_text("{}")
        >>> claim_output([out])
        Traceback (most recent call last):
        ...
        ahazero.config.output_paths.OutputPathError: --out .../s.jsonl: the file exists; pass --overwrite to replace it, or give another --out
    """
    check_output_files(paths, flag=flag, overwrite=overwrite)
    lock = RunLock.for_file(paths[0], flag=flag).acquire()
    try:
        check_output_files(paths, flag=flag, overwrite=overwrite)
    except BaseException:
        lock.release()
        raise
    return lock


class RunLock:
    """An exclusive, process-lifetime lock on a run directory (created when missing).

    ``label`` and ``hint`` word the error a second writer gets (default: the run and
    ``name=<new>``); ``lock_path`` puts the lock file elsewhere than ``root/.lock``.
    """

    def __init__(self, root: str | Path, *, label: str | None = None, hint: str | None = None,
                 lock_path: str | Path | None = None, remove_on_release: bool = False) -> None:
        self.root = Path(root)
        self.path = Path(lock_path) if lock_path is not None else self.root / LOCK_NAME
        self.label = label or f"run {self.root.name!r} ({self.root})"
        self.hint = hint or "wait for it to end (or stop it), or choose another name (name=<new>)"
        self.remove_on_release = remove_on_release
        self._key: str | None = None

    @classmethod
    def for_file(cls, path: str | Path, *, flag: str = "--out") -> RunLock:
        """The lock of one output file: ``.<name>.lock`` beside it, removed when released.

        Example:
            >>> import tempfile, pathlib
            >>> out = pathlib.Path(tempfile.mkdtemp()) / "samples.jsonl"
            >>> with RunLock.for_file(out) as lock:
            ...     lock.path.name
            '.samples.jsonl.lock'
            >>> sorted(p.name for p in out.parent.iterdir())
            []
        """
        path = Path(path)
        return cls(path.parent, label=str(path), lock_path=path.parent / f".{path.name}.lock",
                   hint=f"wait for it to end (or stop it), or give another {flag}", remove_on_release=True)

    @property
    def held(self) -> bool:
        """True while this object holds the lock."""
        return self._key is not None

    def _refusal(self, holder: str) -> RunLockedError:
        return RunLockedError(f"{self.label} is being written by another process ({holder}); {self.hint}")

    def _held_here(self, key: str) -> _Held | None:
        entry = _HELD.get(key)
        if entry is not None and entry.pid != os.getpid():  # inherited by a fork: not this process's
            del _HELD[key]
            return None
        return entry

    def acquire(self) -> RunLock:
        """Take the lock, or raise :class:`RunLockedError` naming what is locked and the process holding it."""
        if self._key is not None:
            return self
        missing = [p for p in (self.path.parent, *self.path.parent.parents) if not p.exists()]
        key = os.path.realpath(self.path)
        with _HELD_GUARD:
            entry = self._held_here(key)
            if entry is not None:
                entry.count += 1
                self._key = key
                return self
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                fd = self._lock_file()
            except OSError as err:
                raise RunDirError(f"cannot create the lock file {self.path}: {err.strerror or err}") from None
            info: dict[str, Any] = {"pid": os.getpid(), "host": socket.gethostname(),
                                    "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "command": sys.argv}
            os.ftruncate(fd, 0)
            os.pwrite(fd, (json.dumps(info) + "\n").encode("utf-8"), 0)
            _HELD[key] = _Held(fd, 1, os.getpid(), missing)
            self._key = key
        return self

    def _lock_file(self) -> int:
        """An open descriptor of the lock file with the exclusive lock on it."""
        for attempt in range(_TRIES):
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            if fcntl is None:  # pragma: no cover - not on POSIX
                logger.warning("no file locking on this platform: nothing stops a second writer of %s", self.root)
                return fd
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                holder = lock_holder(os.pread(fd, 4096, 0).decode("utf-8", errors="replace"))
                os.close(fd)
                if attempt + 1 == _TRIES:
                    raise self._refusal(holder) from None
                time.sleep(0.02)
                continue
            if _same_file(fd, self.path):
                return fd
            os.close(fd)  # locked a file its holder removed on release: lock the one there now
        raise self._refusal("a process that keeps replacing its lock file")

    def holder(self) -> str | None:
        """Who holds the lock when another process does (pid, host, since, command); None otherwise.

        Nothing is created and the lock is not kept.

        Example:
            >>> import tempfile
            >>> RunLock(tempfile.mkdtemp()).holder() is None
            True
        """
        if self._key is not None or fcntl is None:
            return None
        with _HELD_GUARD:
            if self._held_here(os.path.realpath(self.path)) is not None:
                return None
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except OSError:
            return None
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError:
            return lock_holder(os.pread(fd, 4096, 0).decode("utf-8", errors="replace"))
        finally:
            os.close(fd)  # closing drops the shared lock
        return None

    def check_free(self) -> None:
        """Raise :class:`RunLockedError` when another process holds the lock (without taking it).

        Example:
            >>> import tempfile
            >>> RunLock(tempfile.mkdtemp()).check_free()
        """
        holder = self.holder()
        if holder is not None:
            raise self._refusal(holder)

    def empty_root(self) -> None:
        """Remove everything in the locked folder but the lock file (a stage started again from scratch).

        The folder itself stays, with its lock held: removing it would let another process
        lock a new ``.lock`` while this one still writes.

        Example:
            >>> import tempfile, pathlib
            >>> root = pathlib.Path(tempfile.mkdtemp())
            >>> _ = (root / "metrics.jsonl").write_text("{}"); (root / "traces").mkdir()
            >>> with RunLock(root) as lock:
            ...     lock.empty_root()
            >>> sorted(p.name for p in root.iterdir())
            ['.lock']
        """
        if self._key is None:
            raise RuntimeError(f"empty_root needs the lock on {self.root} held")
        for entry in self.root.iterdir():
            if entry == self.path:
                continue
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()

    def release(self) -> None:
        """Give the lock up (the last holder in this process frees it, also for a forked child's copy)."""
        key, self._key = self._key, None
        if key is None:
            return
        with _HELD_GUARD:
            entry = _HELD.get(key)
            if entry is None:
                return
            entry.count -= 1
            if entry.count > 0:
                return
            del _HELD[key]
            try:
                if self.remove_on_release:
                    self.path.unlink(missing_ok=True)  # while still locked: a waiter then locks a new file
                os.ftruncate(entry.fd, 0)
                if fcntl is not None:
                    fcntl.flock(entry.fd, fcntl.LOCK_UN)
            finally:
                os.close(entry.fd)
            for folder in entry.created if self.remove_on_release else ():
                try:
                    folder.rmdir()  # made only for the lock, and left empty (the command wrote nothing)
                except OSError:
                    break

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.release()
