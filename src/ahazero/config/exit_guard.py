"""Exits that user code asks for in the middle of a run: caught where they can be, never reported as success.

``os._exit(0)`` ends a process at once, with exit code 0, no ``atexit`` handler and nothing
said; ``sys.exit()`` raises :class:`SystemExit`, which an unguarded caller passes on as a
clean exit. Either would make a run that stopped part-way look like a finished one. Two
guards cover what runs user code:

- :func:`exits_raise`, around importing and calling a custom reward: ``os._exit`` called by
  this thread raises :class:`ExitRequested` instead of ending the process, so the caller can
  name the reward that asked for it;
- :func:`unfinished_run`, around training: ``os._exit`` from any thread of this process
  still ends it, but with exit code 1 (when it asked for 0) and one line on stderr saying the
  run did not finish; a :class:`SystemExit` that reaches it becomes :class:`UnfinishedRunError`.

``os._exit`` is replaced by a wrapper only while a guard is active (and in the process that
set it: a forked child exits as it asks).

Example:
    >>> import os
    >>> with exits_raise():
    ...     try:
    ...         os._exit(0)
    ...     except ExitRequested as request:
    ...         print(request)
    os._exit(0)
    >>> os._exit is _REAL_EXIT
    True
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from collections.abc import Iterator

__all__ = ["ExitRequested", "UnfinishedRunError", "exits_raise", "unfinished_run"]

_REAL_EXIT = os._exit
_LOCK = threading.RLock()
_raising: dict[int, int] = {}  # thread id -> depth of exits_raise() in that thread
_unfinished: list[str] = []  # what each active unfinished_run() is guarding
_owner: list[int] = []  # the pid that installed the wrapper
_users = 0


class ExitRequested(BaseException):  # noqa: N818 - a request, like SystemExit; not an error of ours
    """``os._exit(code)`` was called inside :func:`exits_raise` (raised instead of exiting)."""

    def __init__(self, code: object) -> None:
        super().__init__(code)
        self.code = code

    def __str__(self) -> str:
        return f"os._exit({self.code!r})"


class UnfinishedRunError(RuntimeError):
    """Something asked the process to exit (``sys.exit``) before the run finished."""


def _guarded_exit(code: int = 0) -> None:
    if _owner and os.getpid() == _owner[0]:
        if _raising.get(threading.get_ident()):
            raise ExitRequested(code)
        if _unfinished:
            status = code if isinstance(code, int) and code != 0 else 1
            with contextlib.suppress(Exception):
                sys.stderr.write(f"run error: os._exit({code!r}) ended the process while {_unfinished[-1]} was "
                                 f"unfinished; exit code {status}\n")
                sys.stderr.flush()
            _REAL_EXIT(status)
    _REAL_EXIT(code)


@contextlib.contextmanager
def _installed() -> Iterator[None]:
    global _users
    with _LOCK:
        if _users == 0:
            _owner[:] = [os.getpid()]
            os._exit = _guarded_exit
        _users += 1
    try:
        yield
    finally:
        with _LOCK:
            _users -= 1
            if _users == 0:
                os._exit = _REAL_EXIT


@contextlib.contextmanager
def exits_raise() -> Iterator[None]:
    """While inside, ``os._exit`` called by this thread raises :class:`ExitRequested`.

    Example:
        >>> import os
        >>> with exits_raise():
        ...     os._exit(3)
        Traceback (most recent call last):
        ...
        ahazero.config.exit_guard.ExitRequested: os._exit(3)
    """
    me = threading.get_ident()
    with _installed():
        with _LOCK:
            _raising[me] = _raising.get(me, 0) + 1
        try:
            yield
        finally:
            with _LOCK:
                _raising[me] -= 1
                if not _raising[me]:
                    del _raising[me]


@contextlib.contextmanager
def unfinished_run(what: str) -> Iterator[None]:
    """While inside, an exit of this process means ``what`` did not finish: never exit code 0.

    ``os._exit(0)`` exits with 1 and a line on stderr; ``SystemExit`` becomes
    :class:`UnfinishedRunError` naming ``what`` (a Ctrl-C passes through unchanged).

    Example:
        >>> import sys
        >>> with unfinished_run("run 'smoke'"):
        ...     sys.exit(0)
        Traceback (most recent call last):
        ...
        ahazero.config.exit_guard.UnfinishedRunError: sys.exit(0) was called while run 'smoke' was unfinished; ...
    """
    with _installed():
        with _LOCK:
            _unfinished.append(what)
        try:
            yield
        except SystemExit as err:
            raise UnfinishedRunError(f"sys.exit({err.code!r}) was called while {what} was unfinished; the run "
                                     "stopped there (its checkpoints are kept: --resume continues it)") from None
        finally:
            with _LOCK:
                _unfinished.remove(what)
