r"""Isolated, time-bounded answer verification: a reused pool of math-verify worker processes.

sympy can hang on short inputs (``\binom{1000000}{500000}``, a power tower), sometimes
inside C code that no signal interrupts, and math-verify's own timeouts use ``SIGALRM``,
which works on the main thread only, in whole seconds, and cancels other alarms. This
module runs the checks in separate processes instead, with a wall-clock limit per answer
that the calling process enforces from any thread:

* workers start lazily (the first :meth:`VerifierPool.check` or :meth:`VerifierPool.warm_up`),
  stay warm and are reused; with the ``forkserver`` start method (the default where available)
  the server imports math-verify/sympy once, so a replacement worker starts in milliseconds;
* a whole batch goes to the workers in a few messages and the results stream back one by
  one; each item's limit starts when the worker reaches it (when the previous result arrived);
* inside a worker a soft limit (``SIGALRM``, a little below the limit) interrupts slow Python
  code and the worker carries on; an item that still overruns gets its worker killed: it
  scores 0.0 with a logged reason, a replacement starts and the rest of the batch continues;
* a gold answer whose parsing alone overran is remembered, so later items with that gold
  score 0.0 at once instead of each waiting for the limit (a gold that is cheap to parse but
  costly to compare is not: the answer may be the costly part, so each item gets its limit);
* workers ignore Ctrl-C, cap their address space (``memory_limit_mb``), die with their
  parent (Linux), and are killed and reaped at exit (:mod:`atexit`); after a ``fork`` the
  child process gets fresh workers of its own.

Start-method caveat (as for any ``spawn``/``forkserver`` multiprocessing): a script that
uses the pool must guard its entry point with ``if __name__ == "__main__":``, because the
worker side imports the main module. ``python -m ...`` entry points are not re-imported.

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
import multiprocessing
import multiprocessing.util  # noqa: F401 - imported first so that our atexit handler runs before its
import os
import threading
import time
import weakref
from collections import OrderedDict, deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import wait as wait_for
from typing import Any

from rewards._base import preview
from rewards._sandbox_start import WORKERS_ENV, default_workers, start_context
from rewards._sandbox_worker import serve, soft_limit

logger = logging.getLogger(__name__)

__all__ = ["DEFAULT_TIMEOUT_SECONDS", "WORKERS_ENV", "Verdict", "VerifierPool", "get_pool", "shutdown", "soft_limit"]

DEFAULT_TIMEOUT_SECONDS = 2.0
DEFAULT_STARTUP_TIMEOUT = 60.0
DEFAULT_MEMORY_LIMIT_MB = 4096
_MAX_BAD_GOLDS = 1024
_MAX_START_FAILURES = 3
_BROKEN_COOLDOWN_SECONDS = 30.0
_MAX_CHUNK = 64
_KILL_JOIN_SECONDS = 2.0


@dataclass(frozen=True, slots=True)
class Verdict:
    """The outcome of one isolated check: the verdict, why, and the worker-side seconds.

    >>> Verdict(False, "timeout (worker killed)", 2.0).equivalent
    False
    """

    equivalent: bool
    reason: str
    seconds: float


@dataclass(eq=False)
class _Worker:
    proc: Any
    conn: Any
    started_at: float
    startup_deadline: float
    ready: bool = False
    inflight: deque[int] = field(default_factory=deque)
    deadline: float = math.inf
    item_started: float = 0.0
    phase: str | None = None


class VerifierPool:
    """A pool of math-verify worker processes that checks ``(pred, gold)`` pairs under a time limit.

    ``workers`` processes (default ``min(2, cpu_count)``, or ``$AHAZERO_VERIFIER_WORKERS``),
    started with ``start_method`` (``"forkserver"`` where available, else ``"spawn"``). A worker
    that does not start within ``startup_timeout`` seconds is replaced; after three failures in
    a row the pool scores everything 0.0 for 30 s before trying again. Thread-safe: one batch at
    a time. Pairs should already be normalised (see :func:`rewards.accuracy.quick_check`);
    :func:`rewards.accuracy.check_answers` is the usual entry point.

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
        start_method: str | None = None,
        startup_timeout: float = DEFAULT_STARTUP_TIMEOUT,
        memory_limit_mb: int | None = DEFAULT_MEMORY_LIMIT_MB,
    ) -> None:
        if workers is not None and (isinstance(workers, bool) or not isinstance(workers, int) or workers < 1):
            raise ValueError(f"workers must be a positive int, got {workers!r}")
        if not startup_timeout or startup_timeout <= 0:
            raise ValueError(f"startup_timeout must be > 0, got {startup_timeout!r}")
        self.size = workers or default_workers()
        self.start_method = start_method
        self.startup_timeout = float(startup_timeout)
        self.memory_limit_mb = memory_limit_mb
        self.stats: dict[str, int] = {"started": 0, "ready": 0, "timeouts": 0, "killed": 0, "crashes": 0}
        self.last_startup_seconds: float | None = None
        self._lock = threading.Lock()
        self._reset_state()
        _POOLS.add(self)

    # -- public -------------------------------------------------------------------------------

    def check(self, pairs: Sequence[tuple[str, str]], timeout_seconds: float | None = DEFAULT_TIMEOUT_SECONDS
              ) -> list[Verdict]:
        """One :class:`Verdict` per ``(pred, gold)`` pair, each checked under ``timeout_seconds``.

        ``timeout_seconds`` is a wall-clock limit per item (None or 0: no limit). Raises
        nothing for hostile pairs; an internal failure propagates (callers score it 0.0).
        """
        if not pairs:
            return []
        limit = float(timeout_seconds) if timeout_seconds and timeout_seconds > 0 else None
        with self._lock:
            self._adopt_after_fork()
            return self._run(list(pairs), limit)

    def warm_up(self, timeout: float | None = None) -> float:
        """Start every worker and wait until all are ready; return the seconds it took.

        The first start of the forkserver (which imports sympy and math-verify) dominates.
        """
        began = time.monotonic()
        with self._lock:
            self._adopt_after_fork()
            self._ensure_workers()
            end = began + (timeout if timeout is not None else self.startup_timeout)
            while True:
                waiting = [w for w in self._workers if w is not None and not w.ready]
                if not waiting or time.monotonic() >= end:
                    break
                for conn in wait_for([w.conn for w in waiting], timeout=max(0.0, end - time.monotonic())):
                    slot = self._slot_of(conn)
                    if slot is not None:
                        self._drain(slot, None)
        return time.monotonic() - began

    def worker_pids(self) -> list[int]:
        """Process ids of the live workers (empty before the first use and after :meth:`close`)."""
        return [w.proc.pid for w in self._workers if w is not None and w.proc.pid is not None]

    @property
    def healthy(self) -> bool:
        """True if every worker slot holds a live process and the pool is not backing off after failures."""
        return time.monotonic() >= self._broken_until and all(
            w is not None and w.proc.is_alive() for w in self._workers
        )

    def close(self, lock_timeout: float | None = None) -> None:
        """Kill and reap every worker. The pool stays usable: the next call starts new ones.

        With ``lock_timeout``, a batch still running in another thread after that many seconds
        does not delay the shutdown: its workers are killed anyway (the batch scores them 0.0).
        """
        locked = self._lock.acquire(timeout=-1 if lock_timeout is None else max(0.0, lock_timeout))
        try:
            if os.getpid() != self._owner_pid:
                self._reset_state()
                return
            for slot in range(len(self._workers)):
                w = self._workers[slot]
                self._workers[slot] = None
                if w is not None:
                    self._kill(w)
        finally:
            if locked:
                self._lock.release()

    # -- state --------------------------------------------------------------------------------

    def _reset_state(self) -> None:
        self._owner_pid = os.getpid()
        self._workers: list[_Worker | None] = [None] * self.size
        self._bad_golds: OrderedDict[str, None] = OrderedDict()
        self._batch_ids = itertools.count(1)
        self._start_failures = 0
        self._broken_until = 0.0
        self._batch: tuple[Any, ...] | None = None

    def _adopt_after_fork(self) -> None:
        """In a forked child, forget the parent's workers (without touching them) and start afresh."""
        if os.getpid() != self._owner_pid:
            for w in self._workers:
                if w is not None:
                    with contextlib.suppress(Exception):
                        w.conn.close()
            self._reset_state()

    def _after_fork_in_child(self) -> None:
        self._lock = threading.Lock()  # it may have been held by another thread at the fork
        self._adopt_after_fork()

    def _slot_of(self, conn: Any) -> int | None:
        for slot, w in enumerate(self._workers):
            if w is not None and w.conn is conn:
                return slot
        return None

    def _spawn(self) -> _Worker | None:
        ctx, _method = start_context(self.start_method, in_forked_child=_IN_FORKED_CHILD)
        options = {
            "die_with_parent": True,
            "memory_limit_bytes": self.memory_limit_mb * 2**20 if self.memory_limit_mb else None,
        }
        try:
            parent_conn, child_conn = ctx.Pipe(duplex=True)
            proc = ctx.Process(target=serve, args=(child_conn, options), name="ahazero-verifier", daemon=True)
            began = time.monotonic()
            proc.start()
            child_conn.close()
        except Exception as exc:  # noqa: BLE001 - e.g. too many processes
            logger.error("could not start a verifier worker (%s: %s)", type(exc).__name__, exc)
            self._start_failed()
            return None
        self.stats["started"] += 1
        now = time.monotonic()
        return _Worker(proc=proc, conn=parent_conn, started_at=began, startup_deadline=now + self.startup_timeout)

    def _start_failed(self) -> None:
        self._start_failures += 1
        if self._start_failures >= _MAX_START_FAILURES:
            self._broken_until = time.monotonic() + _BROKEN_COOLDOWN_SECONDS
            self._start_failures = 0
            logger.error("verifier workers failed to start %d times in a row; answers that need sympy score "
                         "0.0 for the next %.0f s", _MAX_START_FAILURES, _BROKEN_COOLDOWN_SECONDS)

    def _ensure_workers(self) -> None:
        for slot, w in enumerate(self._workers):
            if w is not None and not w.inflight and not w.proc.is_alive():
                self._workers[slot] = None
                self._kill(w)
                if not w.ready:
                    self._start_failed()
            if self._workers[slot] is None and time.monotonic() >= self._broken_until:
                self._workers[slot] = self._spawn()

    def _kill(self, w: _Worker) -> None:
        with contextlib.suppress(Exception):
            w.proc.kill()
        with contextlib.suppress(Exception):
            w.proc.join(_KILL_JOIN_SECONDS)
        with contextlib.suppress(Exception):
            w.conn.close()
        self.stats["killed"] += 1

    def _mark_bad_gold(self, gold: str, why: str) -> None:
        if gold not in self._bad_golds:
            logger.warning("verifier: gold answer %s %s; every answer to it scores 0.0 from now on",
                           preview(gold), why)
        self._bad_golds[gold] = None
        self._bad_golds.move_to_end(gold)
        while len(self._bad_golds) > _MAX_BAD_GOLDS:
            self._bad_golds.popitem(last=False)

    # -- one batch ----------------------------------------------------------------------------

    def _run(self, pairs: list[tuple[str, str]], limit: float | None) -> list[Verdict]:
        results: list[Verdict | None] = [None] * len(pairs)
        pending: deque[int] = deque()
        for i, (_pred, gold) in enumerate(pairs):
            if gold in self._bad_golds:
                results[i] = Verdict(False, "gold overran its limit before", 0.0)
            else:
                pending.append(i)
        self._batch = (next(self._batch_ids), pairs, results, pending, limit)
        soft = soft_limit(limit) if limit else 0.0
        chunk = max(1, min(_MAX_CHUNK, math.ceil(len(pending) / (2 * self.size))))
        try:
            while pending or any(w is not None and w.inflight for w in self._workers):
                if pending:
                    self._ensure_workers()
                if not any(w is not None for w in self._workers):
                    while pending:
                        results[pending.popleft()] = Verdict(False, "verifier unavailable", 0.0)
                    break
                self._dispatch(chunk, soft)
                waiting = [w for w in self._workers if w is not None and (w.inflight or not w.ready)]
                if not waiting:
                    continue
                deadline = min(w.deadline if w.inflight else w.startup_deadline for w in waiting)
                timeout = None if deadline == math.inf else max(0.0, deadline - time.monotonic())
                for conn in wait_for([w.conn for w in waiting], timeout=timeout):
                    slot = self._slot_of(conn)
                    if slot is not None:
                        self._drain(slot, self._batch)
                self._enforce_deadlines()
        except BaseException:
            for slot, w in enumerate(self._workers):  # their state is unknown now: start afresh next time
                if w is not None and w.inflight:
                    self._workers[slot] = None
                    self._kill(w)
            raise
        finally:
            self._batch = None
        return [r if r is not None else Verdict(False, "not checked", 0.0) for r in results]

    def _dispatch(self, chunk: int, soft: float) -> None:
        batch_id, pairs, results, pending, limit = self._batch
        for slot, w in enumerate(self._workers):
            if w is None or not w.ready or w.inflight or not pending:
                continue
            items: list[int] = []
            while pending and len(items) < chunk:
                i = pending.popleft()
                if pairs[i][1] in self._bad_golds:
                    results[i] = Verdict(False, "gold overran its limit before", 0.0)
                else:
                    items.append(i)
            if not items:
                continue
            try:
                w.conn.send(("batch", batch_id, [(i, *pairs[i]) for i in items], soft))
            except Exception as exc:  # noqa: BLE001 - it died while idle: retry these on another
                logger.warning("verifier worker %s is gone (%s); replacing it", w.proc.pid, type(exc).__name__)
                pending.extendleft(reversed(items))
                self._workers[slot] = None
                self._kill(w)
                self._start_failed()
                continue
            now = time.monotonic()
            w.inflight = deque(items)
            w.item_started = now
            w.deadline = now + limit if limit else math.inf
            w.phase = None

    def _drain(self, slot: int, batch: tuple[Any, ...] | None) -> None:
        w = self._workers[slot]
        while w is not None:
            try:
                if not w.conn.poll():
                    return
                message = w.conn.recv()
            except Exception:  # noqa: BLE001 - EOFError/OSError: the worker died
                self._on_death(slot, w, batch)
                return
            self._handle(w, message, batch)

    def _handle(self, w: _Worker, message: Any, batch: tuple[Any, ...] | None) -> None:
        kind = message[0]
        now = time.monotonic()
        if kind == "ready":
            w.ready = True
            self._start_failures = 0
            self.stats["ready"] += 1
            self.last_startup_seconds = now - w.started_at
            logger.debug("verifier worker %s ready in %.2f s", message[1], self.last_startup_seconds)
            return
        if batch is None or message[1] != batch[0] or not w.inflight:
            return  # stale: from a batch that was abandoned
        batch_id, pairs, results, pending, limit = batch
        index = message[2]
        if kind in ("gold", "gold-ok"):
            if w.inflight[0] == index:
                w.phase = "gold" if kind == "gold" else None
            return
        if kind != "result" or index not in w.inflight:
            return
        _kind, _bid, _index, ok, reason, seconds = message
        results[index] = Verdict(bool(ok), str(reason), float(seconds))
        w.inflight.remove(index)
        w.phase = None
        w.item_started = now
        w.deadline = now + limit if limit else math.inf
        self._start_failures = 0
        pred, gold = pairs[index]
        overran = str(reason).startswith(("timeout", "out of memory"))
        if overran:
            self.stats["timeouts"] += 1
            logger.warning("verifier: %s after %.2f s on answer %s (gold %s); scored 0.0",
                           reason, seconds, preview(pred), preview(gold))
        if overran and str(reason).endswith("in gold"):
            self._mark_bad_gold(gold, f"could not be parsed ({reason})")

    def _enforce_deadlines(self) -> None:
        now = time.monotonic()
        for slot, w in enumerate(self._workers):
            if w is None:
                continue
            if w.inflight and now >= w.deadline:
                batch_id, pairs, results, pending, limit = self._batch
                index = w.inflight.popleft()
                pred, gold = pairs[index]
                results[index] = Verdict(False, "timeout (worker killed)", now - w.item_started)
                self.stats["timeouts"] += 1
                logger.warning("verifier: answer %s (gold %s) overran its %.2f s limit; worker %s killed, "
                               "scored 0.0", preview(pred), preview(gold), limit, w.proc.pid)
                if w.phase == "gold":
                    self._mark_bad_gold(gold, f"took over {limit:.2f} s to parse")
                pending.extendleft(reversed(w.inflight))
                w.inflight.clear()
                self._workers[slot] = None
                self._kill(w)
                self._workers[slot] = self._spawn()  # warms up while the others carry on
            elif not w.ready and not w.inflight and now >= w.startup_deadline:
                logger.error("verifier worker %s did not start within %.0f s; replacing it",
                             w.proc.pid, self.startup_timeout)
                self._workers[slot] = None
                self._kill(w)
                self._start_failed()

    def _on_death(self, slot: int, w: _Worker, batch: tuple[Any, ...] | None) -> None:
        self._workers[slot] = None
        self._kill(w)
        code = w.proc.exitcode
        if w.inflight and batch is not None:
            batch_id, pairs, results, pending, limit = batch
            index = w.inflight.popleft()
            self.stats["crashes"] += 1
            results[index] = Verdict(False, f"worker crashed (exit code {code})", time.monotonic() - w.item_started)
            logger.warning("verifier worker %s crashed (exit code %s) on answer %s (gold %s); scored 0.0",
                           w.proc.pid, code, preview(pairs[index][0]), preview(pairs[index][1]))
            pending.extendleft(reversed(w.inflight))
            w.inflight.clear()
            self._workers[slot] = self._spawn()
        elif not w.ready:
            logger.error("verifier worker %s exited during start-up (exit code %s)", w.proc.pid, code)
            self._start_failed()


_POOLS: weakref.WeakSet[VerifierPool] = weakref.WeakSet()
_DEFAULT_POOL: VerifierPool | None = None
_DEFAULT_LOCK = threading.Lock()
_IN_FORKED_CHILD = False


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
    """Kill and reap the workers of every pool in this process (registered with :mod:`atexit`).

    >>> shutdown()
    """
    for pool in list(_POOLS):
        with contextlib.suppress(Exception):
            pool.close(lock_timeout=1.0)


def _after_fork_in_child() -> None:
    global _DEFAULT_LOCK, _IN_FORKED_CHILD
    _DEFAULT_LOCK = threading.Lock()
    _IN_FORKED_CHILD = True
    for pool in list(_POOLS):
        with contextlib.suppress(Exception):
            pool._after_fork_in_child()


atexit.register(shutdown)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
