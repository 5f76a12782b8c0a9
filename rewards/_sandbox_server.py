"""The verifier's fork server: a fresh interpreter that imports math-verify once and forks warm workers.

The pool starts it with :mod:`subprocess` (see :mod:`rewards._sandbox_start`), as
``python -c "...; main(fd)"``: a new interpreter that never imports the caller's
``__main__``, so the pool works the same from a script without an
``if __name__ == "__main__":`` guard, ``python -c``, ``python -m``, a notebook or a REPL.
It imports math-verify and sympy and warms the LaTeX parser (about a second), then forks a
worker per request, which starts in milliseconds.

Protocol over one ``AF_UNIX``/``SOCK_SEQPACKET`` socket pair (one pickled tuple per message):

* pool -> server ``("fork", request_id, options)`` with the worker's end of a fresh socket
  pair attached (``SCM_RIGHTS``); the server forks, the child runs
  :func:`rewards._sandbox_worker.serve` on that socket, and the server answers
  ``("forked", request_id, pid)`` (or ``("failed", request_id, reason)``);
* pool -> server ``("kill", pid)``: the server kills that worker and reaps it, and answers
  ``("reaped", pid, exitcode)``. Workers are reaped only on request, so a worker's pid stays
  reserved (a zombie at worst) until the pool has stopped signalling it;
* end of file (the pool closed the socket, or its process died, even by ``kill -9``): the
  server kills and reaps every worker and exits.

Workers die with the server (``PR_SET_PDEATHSIG`` on Linux, set by the worker). The server
ignores Ctrl-C, like its workers: stopping them is the pool's business.

>>> import socket
>>> a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
>>> a.close(); serve_requests(b, {})  # end of file: nothing to do
>>> b.close()
"""

from __future__ import annotations

import contextlib
import os
import pickle
import signal
import socket
import sys
from typing import Any

__all__ = ["main", "serve_requests"]

_MAX_MESSAGE = 64 * 1024


def _send(ctrl: socket.socket, message: tuple[Any, ...]) -> None:
    with contextlib.suppress(OSError):
        ctrl.send(pickle.dumps(message))


def _reap(pid: int) -> int:
    """Kill ``pid`` (a child of this process) and wait for it; its exit code as multiprocessing reports it."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    try:
        _pid, status = os.waitpid(pid, 0)
    except ChildProcessError:
        return -signal.SIGKILL
    return os.waitstatus_to_exitcode(status)


def _run_worker(ctrl: socket.socket, fd: int, options: dict[str, Any]) -> None:
    """In the forked child: serve the pool on ``fd`` until it closes, then leave without cleanup handlers."""
    code = 0
    try:
        ctrl.close()
        from multiprocessing.connection import Connection

        from rewards._sandbox_worker import serve

        serve(Connection(fd), options)
    except BaseException:  # noqa: BLE001 - a worker must never return into the server's loop
        code = 1
    finally:
        os._exit(code)


def serve_requests(ctrl: socket.socket, children: dict[int, None]) -> None:
    """Answer fork and kill requests on ``ctrl`` until end of file; ``children`` tracks the live workers.

    >>> a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    >>> _ = a.send(pickle.dumps(("kill", 12345))); a.close()  # not a worker of ours: ignored
    >>> serve_requests(b, {}); b.close()
    """
    while True:
        try:
            data, fds, _flags, _address = socket.recv_fds(ctrl, _MAX_MESSAGE, 4)
        except OSError:
            data, fds = b"", []
        if not data:
            for fd in fds:
                os.close(fd)
            return
        try:
            message = pickle.loads(data)
            kind = message[0]
        except Exception:  # noqa: BLE001 - a malformed request: ignore it
            kind, message = None, ()
        if kind == "fork" and len(fds) == 1:
            try:
                pid = os.fork()
            except OSError as exc:
                os.close(fds[0])
                _send(ctrl, ("failed", message[1], f"{type(exc).__name__}: {exc}"))
                continue
            if pid == 0:
                _run_worker(ctrl, fds[0], message[2])
            os.close(fds[0])
            children[pid] = None
            _send(ctrl, ("forked", message[1], pid))
            continue
        for fd in fds:
            os.close(fd)
        if kind == "kill" and message[1] in children:
            children.pop(message[1])
            _send(ctrl, ("reaped", message[1], _reap(message[1])))


def main(ctrl_fd: int) -> None:
    """Entry point of the server process: warm up, then serve ``ctrl_fd`` until the pool goes away.

    Started by :class:`rewards._sandbox_start.ForkServer` as
    ``python -c "import sys; sys.path[:0] = [...]; from rewards._sandbox_server import main; main(FD)"``.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    ctrl = socket.socket(fileno=ctrl_fd)
    import rewards._sandbox_preload  # noqa: F401 - math-verify, sympy and a warm parser, inherited by every fork

    children: dict[int, None] = {}
    try:
        serve_requests(ctrl, children)
    finally:
        for pid in list(children):
            _reap(pid)
        ctrl.close()
    sys.exit(0)
