"""How verifier workers start: the pool size, and the pool's side of the fork server.

Kept apart from :mod:`rewards.sandbox` (the pool's protocol and deadlines) so the start-up
policy can be read and changed in one place. Workers come from a fork server
(:mod:`rewards._sandbox_server`) started with :mod:`subprocess` as a fresh interpreter:
nothing of the calling program, and in particular not its ``__main__``, is imported or run
again, so an unguarded script, ``python -c``, ``python -m``, a notebook and a REPL all work
alike. The server is a child of the process that uses the pool; workers are the server's.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import os
import pickle
import signal
import socket
import subprocess
import sys
import threading
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

logger = logging.getLogger("rewards.sandbox")

__all__ = ["MAX_WORKERS", "WORKERS_ENV", "ForkServer", "StartError", "capped_workers", "default_workers", "worker_cap"]

WORKERS_ENV = "AHAZERO_VERIFIER_WORKERS"
"""Environment variable overriding the default pool size (default: ``min(2, cpu_count)``)."""

_MAX_MESSAGE = 64 * 1024
_MAX_EXIT_CODES = 1024
_STOP_SECONDS = 5.0
_BOOTSTRAP = "import sys; sys.path[:0] = {path!r}; from rewards._sandbox_server import main; main({fd})"


class StartError(RuntimeError):
    """The fork server could not be started or could not fork a worker."""


MAX_WORKERS = 16
"""The most workers one pool runs, however many are asked for (each is a sympy process of about 60 MB)."""

_warned: set[str] = set()


def _warn_once(message: str) -> None:
    if message not in _warned:
        _warned.add(message)
        logger.warning(message)


def worker_cap() -> int:
    """The most workers a pool runs here: the CPU count, at most :data:`MAX_WORKERS`.

    >>> 1 <= worker_cap() <= MAX_WORKERS
    True
    """
    return max(1, min(MAX_WORKERS, os.cpu_count() or 1))


def capped_workers(asked: int, source: str, cap: int = MAX_WORKERS, why: str = f"at most {MAX_WORKERS}") -> int:
    """``asked`` workers, or ``cap`` (``why``) with a one-line warning (once) when that is fewer.

    >>> capped_workers(1, "workers=1"), capped_workers(1000, "workers=1000")
    (1, 16)
    """
    if asked > cap:
        _warn_once(f"verifier: {source} asks for {asked} workers; using {cap} ({why}): more processes than cores "
                   "only take memory")
        return cap
    return asked


def default_workers() -> int:
    """The default pool size: ``$AHAZERO_VERIFIER_WORKERS`` (at most :func:`worker_cap`), else ``min(2, cpu_count)``.

    A value that is not a whole number of at least 1 is ignored with a warning.

    >>> default_workers() >= 1
    True
    """
    value = os.environ.get(WORKERS_ENV, "").strip()
    default = max(1, min(2, os.cpu_count() or 1))
    if not value:
        return default
    if not value.isdigit() or int(value) < 1:
        _warn_once(f"verifier: {WORKERS_ENV}={value!r} is not a whole number of at least 1; using {default} workers")
        return default
    return capped_workers(int(value), f"{WORKERS_ENV}={value}", worker_cap(),
                          f"the CPU count, at most {MAX_WORKERS}")


def _import_path() -> list[str]:
    """``sys.path`` for the server: the folder holding this ``rewards`` package first, then ours."""
    here = str(Path(__file__).resolve().parents[1])
    rest = [os.getcwd() if p == "" else p for p in sys.path if isinstance(p, str)]
    return [here] + [p for p in rest if p != here]


class ForkServer:
    """A handle on a fork server: start it, ask it for workers, kill them, stop it. Thread-safe.

    One serves every pool of a process (see :mod:`rewards.sandbox`); it starts on the first
    :meth:`fork` and again after it died.

    >>> server = ForkServer()
    >>> pid, conn = server.fork({}, timeout=60)
    >>> conn.recv()[0]
    'ready'
    >>> server.kill(pid); server.exit_code(pid, timeout=5)
    -9
    >>> server.stop(); server.alive
    False
    """

    def __init__(self) -> None:
        self._proc: subprocess.Popen[bytes] | None = None
        self._ctrl: socket.socket | None = None
        self._requests = itertools.count(1)
        self._forked: dict[int, tuple[str, Any]] = {}
        self._exit_codes: dict[int, int] = {}
        self._live: set[int] = set()
        self._abandoned: set[int] = set()
        self._lock = threading.RLock()

    @property
    def pid(self) -> int | None:
        """The server's process id (None before the first start and after :meth:`stop`)."""
        return self._proc.pid if self._proc is not None else None

    @property
    def alive(self) -> bool:
        """True while the server process runs (reaps it when it has died)."""
        return self._proc is not None and self._proc.poll() is None

    def _start(self) -> None:
        self._forked.clear()
        self._exit_codes.clear()
        self._live.clear()
        self._abandoned.clear()
        try:
            ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        except (AttributeError, OSError) as exc:  # no Unix sockets (Windows), or no SOCK_SEQPACKET
            raise StartError(f"this platform cannot run the verifier server ({type(exc).__name__}: {exc})") from exc
        try:
            command = _BOOTSTRAP.format(path=_import_path(), fd=theirs.fileno())
            self._proc = subprocess.Popen(
                [sys.executable, "-c", command], pass_fds=[theirs.fileno()], stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL, close_fds=True,
            )
        except Exception as exc:
            ours.close()
            raise StartError(f"could not start the verifier server with {sys.executable!r} "
                             f"({type(exc).__name__}: {exc})") from exc
        finally:
            theirs.close()
        self._ctrl = ours

    def fork(self, options: dict[str, Any], timeout: float) -> tuple[int, Connection]:
        """A new worker: its pid and the pool's end of its connection. Raises :class:`StartError`."""
        with self._lock:
            return self._fork(options, timeout)

    def _fork(self, options: dict[str, Any], timeout: float) -> tuple[int, Connection]:
        if not self.alive:
            self._stop()
            self._start()
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        request = next(self._requests)
        try:
            socket.send_fds(self._ctrl, [pickle.dumps(("fork", request, options))], [theirs.fileno()])
        except OSError as exc:
            ours.close()
            raise StartError(f"the verifier server is gone ({type(exc).__name__}: {exc})") from exc
        finally:
            theirs.close()
        self._read_until(lambda: request in self._forked, timeout)
        if request not in self._forked:
            self._abandoned.add(request)  # a late answer gets its worker killed
        kind, value = self._forked.pop(request, ("failed", f"no answer within {timeout:.0f} s"))
        if kind != "forked":
            ours.close()
            if not self.alive:
                code = self._proc.returncode if self._proc is not None else None
                raise StartError(f"the verifier server exited (exit code {code}); see its error above")
            raise StartError(f"the verifier server could not fork a worker: {value}")
        self._live.add(value)
        return value, Connection(ours.detach())

    def kill(self, pid: int) -> None:
        """Kill worker ``pid`` at once and have the server reap it (no-op for an unknown pid)."""
        with self._lock:
            if pid not in self._live:
                return
            self._live.discard(pid)
            if self.alive:  # while the server lives, the pid is its unreaped child: it cannot be reused yet
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGKILL)
                self._send(("kill", pid))

    def exit_code(self, pid: int, timeout: float) -> int | None:
        """The exit code of a killed worker, once the server reports it reaped (None if it does not in time)."""
        with self._lock:
            self._read_until(lambda: pid in self._exit_codes or not self.alive, timeout)
            return self._exit_codes.pop(pid, None)

    def stop(self, lock_timeout: float | None = None) -> None:
        """Stop the server: it kills and reaps its workers and exits; killed after a few seconds if it hangs.

        With ``lock_timeout``, a thread still busy with the server after that many seconds
        does not delay the stop: the server is killed (its workers die with it).
        """
        if not self._lock.acquire(timeout=-1 if lock_timeout is None else max(0.0, lock_timeout)):
            if self.pid is not None:
                with contextlib.suppress(OSError):
                    os.kill(self.pid, signal.SIGKILL)
            return
        try:
            self._stop()
        finally:
            self._lock.release()

    def _stop(self) -> None:
        ctrl, proc = self._ctrl, self._proc
        self._ctrl, self._proc = None, None
        self._live.clear()
        if ctrl is not None:
            ctrl.close()
        if proc is not None:
            try:
                proc.wait(_STOP_SECONDS)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(_STOP_SECONDS)

    def forget(self) -> None:
        """In a forked child: drop the parent's server without touching it (closing our copy of its socket)."""
        self._lock = threading.RLock()  # it may have been held by another thread at the fork
        if self._ctrl is not None:
            with contextlib.suppress(OSError):
                self._ctrl.close()
        if self._proc is not None:
            self._proc.returncode = 0  # not our child: never wait for it or signal it from here
        self._ctrl, self._proc = None, None
        self._live.clear()

    def _send(self, message: tuple[Any, ...]) -> None:
        if self._ctrl is not None:
            with contextlib.suppress(OSError):
                self._ctrl.send(pickle.dumps(message))

    def _read_until(self, done: Any, timeout: float) -> None:
        """Read the server's messages until ``done()`` or ``timeout`` seconds or end of file."""
        end = time.monotonic() + max(0.0, timeout)
        while not done() and self._ctrl is not None:
            remaining = end - time.monotonic()
            if remaining <= 0:
                return
            self._ctrl.settimeout(min(remaining, 3600.0))
            try:
                data = self._ctrl.recv(_MAX_MESSAGE)
            except TimeoutError:
                return
            except OSError:
                data = b""
            if not data:
                if self._proc is not None:
                    with contextlib.suppress(subprocess.TimeoutExpired):
                        self._proc.wait(_STOP_SECONDS)
                return
            message = pickle.loads(data)
            if message[0] == "forked" and message[1] in self._abandoned:
                self._abandoned.discard(message[1])
                self._live.add(message[2])
                self.kill(message[2])
            elif message[0] in ("forked", "failed"):
                self._forked[message[1]] = (message[0], message[2])
            elif message[0] == "reaped":
                self._exit_codes[message[1]] = message[2]
                while len(self._exit_codes) > _MAX_EXIT_CODES:  # nobody asked for the oldest ones
                    self._exit_codes.pop(next(iter(self._exit_codes)))
