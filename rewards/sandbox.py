r"""Isolated, time-bounded answer verification: a reused pool of math-verify worker processes.

sympy can hang on short inputs (``\binom{1000000}{500000}``, a power tower), sometimes
inside C code that no signal interrupts, and math-verify's own timeouts use ``SIGALRM``,
which works on the main thread only, in whole seconds, and cancels other alarms. This
module runs the checks in separate processes instead, with a wall-clock limit per answer
that the calling process enforces from any thread:

* workers come from a fork server (one per process, shared by its pools) started as a fresh
  interpreter (:mod:`rewards._sandbox_start`): nothing of the calling program is imported
  again, so the pool works from scripts without an ``if __name__ == "__main__":`` guard,
  ``python -c``, ``python -m``, notebooks and REPLs; the server imports math-verify/sympy
  once, so a replacement worker starts in milliseconds. Workers start lazily, as many as a
  call's work needs (all of them on :meth:`VerifierPool.warm_up`), stay warm and are reused;
* a batch goes to the workers in a few messages and the results stream back one by one;
  each item's limit starts when the worker reaches it (when the previous result arrived);
* callers in several threads are served in parallel, up to the number of workers: an idle
  worker takes the next chunk of the call that holds the fewest workers (the oldest first).
  One caller at a time runs the loop that talks to the workers, for every call, and hands
  it on when its own call is done;
* inside a worker a soft limit (``SIGALRM``, a little below the limit) interrupts slow Python
  code and the worker carries on; an item that still overruns gets its worker killed: it
  scores 0.0 with a logged reason, a replacement starts and the rest of the batch continues;
* a gold answer whose parsing alone overran is remembered, so later items with that gold
  score 0.0 at once instead of each waiting for the limit (a gold that is cheap to parse but
  costly to compare is not: the answer may be the costly part, so each item gets its limit);
* workers ignore Ctrl-C, cap their address space (``memory_limit_mb``), die with the server,
  which dies with the pool's process (even on ``kill -9``); at exit (:mod:`atexit`) both are
  killed and reaped; after a ``fork`` the child process gets a server and workers of its own;
* when no worker can start, the items score 0.0 with reason ``"verifier unavailable"`` and
  the start failures are logged as errors; :func:`rewards.accuracy.check_answers` then checks
  them in-process where it can.

Example:
    >>> pool = VerifierPool(workers=1)
    >>> [v.equivalent for v in pool.check([("1+2x", "2x+1"), ("x^2", "x^3")], timeout_seconds=5)]
    [True, False]
    >>> pool.close()
"""

from __future__ import annotations

import atexit
import contextlib
import itertools
import logging
import math
import os
import signal
import socket
import threading
import time
import weakref
from collections import OrderedDict, deque
from collections.abc import Sequence
from multiprocessing.connection import wait as wait_for

from rewards._sandbox_loop import (
    MAX_WAIT_SECONDS,
    UNAVAILABLE,
    Call,
    Verdict,
    WorkerLoop,
    limit_seconds,
    process_running,
)
from rewards._sandbox_start import MAX_WORKERS, WORKERS_ENV, ForkServer, capped_workers, default_workers
from rewards._sandbox_worker import soft_limit

logger = logging.getLogger(__name__)

__all__ = ["DEFAULT_TIMEOUT_SECONDS", "MAX_WORKERS", "UNAVAILABLE", "WORKERS_ENV", "Verdict", "VerifierPool", "get_pool",
           "shutdown", "soft_limit"]

DEFAULT_TIMEOUT_SECONDS = 2.0
DEFAULT_STARTUP_TIMEOUT = 60.0
DEFAULT_MEMORY_LIMIT_MB = 4096
_MAX_CHUNK = 64


class VerifierPool(WorkerLoop):
    """A pool of math-verify worker processes that checks ``(pred, gold)`` pairs under a time limit.

    Up to ``workers`` processes (at most :data:`MAX_WORKERS`; default ``min(2, cpu_count)``, or
    ``$AHAZERO_VERIFIER_WORKERS`` up to the CPU count; a warning says when more are asked for),
    forked by the pool's fork server as the work needs them (two answers start two at most). A worker that does not start within ``startup_timeout``
    seconds is replaced; after three failures in a row the pool does not try again for 30 s
    (items score 0.0 with reason ``"verifier unavailable"``). Thread-safe, and callers in
    several threads are served in parallel up to ``workers``. Pairs should already be
    normalised (see :func:`rewards.accuracy.quick_check`); :func:`rewards.accuracy.check_answers`
    is the usual entry point. ``stats`` counts workers started, timeouts, kills, crashes and
    the most calls served at once (``peak_parallel_calls``).

    >>> pool = VerifierPool(workers=1)
    >>> pool.warm_up() < 60
    True
    >>> pool.check([(r"\\sqrt{8}", r"2\\sqrt{2}")], timeout_seconds=2.0)[0].equivalent
    True
    >>> pool.close(); pool.worker_pids()
    []
    """

    def __init__(
        self,
        workers: int | None = None,
        *,
        startup_timeout: float = DEFAULT_STARTUP_TIMEOUT,
        memory_limit_mb: int | None = DEFAULT_MEMORY_LIMIT_MB,
    ) -> None:
        if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
            raise ValueError(f"workers must be a positive int, got {workers!r}")
        if not startup_timeout or not startup_timeout > 0:
            raise ValueError(f"startup_timeout must be > 0, got {startup_timeout!r}")
        self.size = capped_workers(workers, f"workers={workers}") if workers else default_workers()
        self.startup_timeout = min(float(startup_timeout), MAX_WAIT_SECONDS)
        self.memory_limit_mb = memory_limit_mb
        self.stats: dict[str, int] = {"started": 0, "ready": 0, "timeouts": 0, "killed": 0, "crashes": 0,
                                      "peak_parallel_calls": 0}
        self.last_startup_seconds: float | None = None
        self._cond = threading.Condition()
        self._stopped = False
        self._reset_state()
        _POOLS.add(self)

    # -- public -------------------------------------------------------------------------------

    def check(self, pairs: Sequence[tuple[str, str]], timeout_seconds: float | None = DEFAULT_TIMEOUT_SECONDS
              ) -> list[Verdict]:
        """One :class:`Verdict` per ``(pred, gold)`` pair, each checked under ``timeout_seconds``.

        ``timeout_seconds`` is a wall-clock limit per item (None, 0 or not finite: no limit).
        Raises nothing for hostile pairs; an internal failure propagates (callers score it 0.0).
        """
        if not pairs:
            return []
        call = self._register(list(pairs), limit_seconds(timeout_seconds))
        try:
            led = self._lead(until=call)
        except BaseException:
            self._withdraw(call)  # e.g. Ctrl-C while waiting for another caller's loop
            raise
        if led:
            try:
                self._serve(until=call)
            except BaseException:
                self._abandon(call)
                raise
            finally:
                self._step_down()
        return call.verdicts()

    def warm_up(self, timeout: float | None = None) -> float:
        """Start every worker and wait until all are ready; return the seconds it took.

        The first start of the fork server (which imports sympy and math-verify) dominates.
        """
        began = time.monotonic()
        limit = self.startup_timeout if timeout is None else max(0.0, timeout)
        if not self._lead(timeout=limit):
            return time.monotonic() - began
        try:
            self._ensure_workers()
            end = began + limit
            while True:
                waiting = [w for w in self._workers if w is not None and not w.ready]
                if not waiting or time.monotonic() >= end:
                    break
                for conn in wait_for([w.conn for w in waiting], timeout=min(MAX_WAIT_SECONDS,
                                                                           max(0.0, end - time.monotonic()))):
                    slot = self._slot_of(conn)
                    if slot is not None:
                        self._drain(slot)
                self._enforce_deadlines()
        finally:
            self._step_down()
        return time.monotonic() - began

    def worker_pids(self) -> list[int]:
        """Process ids of the live workers (empty before the first use and after :meth:`close`)."""
        return [w.pid for w in list(self._workers) if w is not None]

    @property
    def server_pid(self) -> int | None:
        """Process id of the fork server (shared by every pool of this process; None before the first use)."""
        return self._server.pid

    @property
    def healthy(self) -> bool:
        """True if every worker slot holds a running process and the pool is not backing off after failures."""
        return time.monotonic() >= self._broken_until and all(
            w is not None and process_running(w.pid) for w in list(self._workers)
        )

    def close(self, lock_timeout: float | None = None) -> None:
        """Kill and reap every worker. The pool stays usable: the next call starts new ones.

        With ``lock_timeout``, a call still being served in another thread after that many
        seconds does not delay the shutdown: the processes are killed anyway (its items score 0.0).
        """
        if self._lead(timeout=lock_timeout):
            try:
                if os.getpid() == self._owner_pid:
                    for slot in range(len(self._workers)):
                        self._drop(slot)  # items of callers still waiting go back to them
            finally:
                self._step_down()
            return
        for w in list(self._workers):  # forced: signals only; the serving thread handles the rest
            if w is not None:
                with contextlib.suppress(OSError):
                    os.kill(w.pid, signal.SIGKILL)

    # -- who runs the loop ----------------------------------------------------------------------

    def _register(self, pairs: list[tuple[str, str]], limit: float | None) -> Call:
        with self._cond:
            self._adopt_after_fork()
            results: list[Verdict | None] = [None] * len(pairs)
            pending: deque[int] = deque()
            for i, (_pred, gold) in enumerate(pairs):
                if gold in self._bad_golds:
                    results[i] = Verdict(False, "gold overran its limit before", 0.0)
                else:
                    pending.append(i)
            chunk = max(1, min(_MAX_CHUNK, math.ceil(len(pending) / (2 * self.size))))
            call = Call(next(self._call_ids), pairs, results, pending, limit, soft_limit(limit) if limit else 0.0,
                         chunk, finished=not pending)
            if pending:
                self._calls.append(call)
                self._wake()
            return call

    def _lead(self, until: Call | None = None, timeout: float | None = None) -> bool:
        """Become the thread that runs the loop; False if ``until`` got finished meanwhile, or on ``timeout``."""
        end = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while self._leader is not None and not (until is not None and until.finished):
                remaining = None if end is None else end - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self._cond.wait(None if remaining is None else min(remaining, MAX_WAIT_SECONDS))
            if until is not None and until.finished:
                return False
            self._leader = threading.get_ident()
            return True

    def _step_down(self) -> None:
        with self._cond:
            self._leader = None
            self._cond.notify_all()

    def _withdraw(self, call: Call) -> None:
        with self._cond:
            if call in self._calls:
                self._calls.remove(call)
            call.finished = True
            self._cond.notify_all()

    def _abandon(self, call: Call) -> None:
        """The loop failed (e.g. Ctrl-C): workers in the middle of items are killed, other callers' items requeued."""
        for slot, w in enumerate(self._workers):
            if w is not None and w.inflight:
                self._drop(slot)
        self._withdraw(call)

    def _wake(self) -> None:
        with contextlib.suppress(OSError):
            self._wake_w.send(b"\0")

    # -- state --------------------------------------------------------------------------------

    def _reset_state(self) -> None:
        self._owner_pid = os.getpid()
        self._workers = [None] * self.size
        self._bad_golds = OrderedDict()
        self._call_ids = itertools.count(1)
        self._calls = []
        self._leader: int | None = None
        self._start_failures = 0
        self._broken_until = 0.0
        self._server = _SERVER
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._wake_w.setblocking(False)

    def _adopt_after_fork(self) -> None:
        """In a forked child, forget the parent's workers (without touching them) and start afresh."""
        if os.getpid() != self._owner_pid:
            for w in self._workers:
                if w is not None:
                    with contextlib.suppress(Exception):
                        w.conn.close()
            for sock in (self._wake_r, self._wake_w):
                sock.close()
            self._reset_state()

    def _after_fork_in_child(self) -> None:
        self._cond = threading.Condition()  # it may have been held by another thread at the fork
        self._adopt_after_fork()


_SERVER = ForkServer()
_POOLS: weakref.WeakSet[VerifierPool] = weakref.WeakSet()
_DEFAULT_POOL: VerifierPool | None = None
_DEFAULT_LOCK = threading.Lock()


def get_pool() -> VerifierPool:
    """The process-wide pool the accuracy reward uses (created on first call; workers start lazily).

    >>> get_pool() is get_pool()
    True
    """
    global _DEFAULT_POOL
    with _DEFAULT_LOCK:
        if _DEFAULT_POOL is None:
            _DEFAULT_POOL = VerifierPool()
        return _DEFAULT_POOL


def shutdown() -> None:
    """Kill and reap the workers of every pool in this process, and stop the fork server (run at exit).

    The pools stay usable: the next call starts the server and new workers.

    >>> shutdown()
    """
    for pool in list(_POOLS):
        with contextlib.suppress(Exception):
            pool.close(lock_timeout=1.0)
    with contextlib.suppress(Exception):
        _SERVER.stop(lock_timeout=1.0)


def _at_exit() -> None:
    for pool in list(_POOLS):
        pool._stopped = True  # a call still running in a daemon thread must not start new processes
    shutdown()


def _after_fork_in_child() -> None:
    global _DEFAULT_LOCK
    _DEFAULT_LOCK = threading.Lock()
    _SERVER.forget()
    for pool in list(_POOLS):
        with contextlib.suppress(Exception):
            pool._after_fork_in_child()


atexit.register(_at_exit)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
