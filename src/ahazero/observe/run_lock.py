"""One writer per run directory: an exclusive lock on ``runs/<name>/.lock`` while a run trains.

The lock is ``flock`` on an open file, so the kernel drops it when the holding process ends,
however it ends (``kill -9`` included): a lock is never left stuck. The file holds the
holder's pid, host, start time and command line, for the error a second writer gets. The
file itself stays (deleting it would let two processes lock two different files).

Example:
    >>> import tempfile
    >>> root = tempfile.mkdtemp()
    >>> with RunLock(root):
    ...     try:
    ...         RunLock(root).acquire()
    ...     except RunLockedError as err:
    ...         print("refused:", "is being written by another process" in str(err))
    refused: True
"""

from __future__ import annotations

import json
import logging
import os
import socket
import sys
import time
from pathlib import Path
from types import TracebackType
from typing import Any

from ahazero.observe.rundir import RunDirError

try:
    import fcntl
except ImportError:  # pragma: no cover - not on POSIX
    fcntl = None  # type: ignore[assignment]

__all__ = ["LOCK_NAME", "RunLock", "RunLockedError", "lock_holder"]

logger = logging.getLogger("ahazero.observe.run_lock")

LOCK_NAME = ".lock"


class RunLockedError(RunDirError):
    """Another process is writing this run directory."""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def lock_holder(text: str) -> str:
    """Describe the holder recorded in a lock file's text (pid, host, since when).

    Example:
        >>> lock_holder('{"pid": 4242, "host": "gpu7", "started_at": "2026-01-02T03:04:05"}')
        'pid 4242 on gpu7, since 2026-01-02T03:04:05'
        >>> lock_holder("")
        'a process that has not recorded its pid yet'
    """
    try:
        info = json.loads(text)
        pid, host = int(info["pid"]), str(info["host"])
    except (ValueError, KeyError, TypeError):
        return "a process that has not recorded its pid yet"
    out = f"pid {pid} on {host}, since {info.get('started_at', '?')}"
    if host == socket.gethostname() and not _alive(pid):
        out += " (that pid has ended; a process it started still holds the lock)"
    return out


class RunLock:
    """An exclusive, process-lifetime lock on a run directory (created when missing)."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.path = self.root / LOCK_NAME
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        """True while this object holds the lock."""
        return self._fd is not None

    def acquire(self) -> RunLock:
        """Take the lock, or raise :class:`RunLockedError` naming the run and the process holding it."""
        if self._fd is not None:
            return self
        self.root.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        if fcntl is None:  # pragma: no cover - not on POSIX
            logger.warning("no file locking on this platform: nothing stops a second writer of %s", self.root)
        else:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                holder = lock_holder(os.pread(fd, 4096, 0).decode("utf-8", errors="replace"))
                os.close(fd)
                raise RunLockedError(
                    f"run {self.root.name!r} ({self.root}) is being written by another process ({holder}); "
                    "wait for it to end (or stop it), or choose another name (name=<new>)"
                ) from None
        info: dict[str, Any] = {"pid": os.getpid(), "host": socket.gethostname(),
                                "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "command": sys.argv}
        os.ftruncate(fd, 0)
        os.pwrite(fd, (json.dumps(info) + "\n").encode("utf-8"), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        """Give the lock up (also for copies of the descriptor a forked child may hold)."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            os.ftruncate(fd, 0)
            if fcntl is not None:
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.release()
