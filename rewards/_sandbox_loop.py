"""The verifier pool's loop: worker bookkeeping, dispatching calls to workers, results, deadlines, deaths.

:class:`WorkerLoop` is the half of :class:`rewards.sandbox.VerifierPool` that talks to the
workers; the pool adds the public methods, who runs this loop (one thread at a time) and
fork safety. The worker's side of the protocol is in :mod:`rewards._sandbox_worker`.

>>> Verdict(True, "equivalent", 0.01).reason
'equivalent'
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import threading
import time
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from multiprocessing.connection import wait as wait_for
from typing import Any

from rewards._base import preview
from rewards._sandbox_start import ForkServer, StartError

logger = logging.getLogger("rewards.sandbox")

__all__ = ["MAX_WAIT_SECONDS", "UNAVAILABLE", "Call", "Verdict", "WorkerLoop", "limit_seconds", "process_running"]

UNAVAILABLE = "verifier unavailable"
"""The reason of an item that no worker could check (they could not start)."""
_MAX_BAD_GOLDS = 1024
_MAX_START_FAILURES = 3
_BROKEN_COOLDOWN_SECONDS = 30.0
_KILL_JOIN_SECONDS = 2.0
MAX_WAIT_SECONDS = 3600.0
"""The longest single wait; deadlines further away are waited for in steps (``select`` rejects huge timeouts)."""


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
class Call:
    """One :meth:`VerifierPool.check` call: its pairs, results, items not yet sent, and workers on it."""

    id: int
    pairs: list[tuple[str, str]]
    results: list[Verdict | None]
    pending: deque[int]
    limit: float | None
    soft: float
    chunk: int
    busy: int = 0
    finished: bool = False

    def verdicts(self) -> list[Verdict]:
        """The results, with "not checked" for any item that got none.

        >>> Call(1, [("x", "x")], [None], deque(), None, 0.0, 1).verdicts()[0].reason
        'not checked'
        """
        return [r if r is not None else Verdict(False, "not checked", 0.0) for r in self.results]


@dataclass(eq=False)
class _Worker:
    pid: int
    conn: Any
    started_at: float
    startup_deadline: float
    ready: bool = False
    acked: bool = False
    call: Call | None = None
    inflight: deque[int] = field(default_factory=deque)
    deadline: float = math.inf
    item_started: float = 0.0
    phase: str | None = None


def limit_seconds(timeout_seconds: float | None) -> float | None:
    """A per-item limit in seconds, or None for none (None, 0, negative, nan and inf all mean none).

    >>> limit_seconds(2), limit_seconds(1e9), limit_seconds(float("inf")), limit_seconds(0)
    (2.0, 1000000000.0, None, None)
    """
    if timeout_seconds is None:
        return None
    value = float(timeout_seconds)
    return value if value > 0 and math.isfinite(value) else None


def process_running(pid: int) -> bool:
    """True while ``pid`` runs (a zombie does not count where ``/proc`` tells).

    >>> process_running(os.getpid())
    True
    """
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            return stat.read().rsplit(b")", 1)[1].split()[0] not in (b"Z", b"X")
    except OSError:
        pass
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    return True


class WorkerLoop:
    """Worker slots and the loop that serves registered calls with them (run by one thread at a time)."""

    size: int
    startup_timeout: float
    memory_limit_mb: int | None
    stats: dict[str, int]
    last_startup_seconds: float | None
    _cond: threading.Condition
    _stopped: bool
    _server: ForkServer
    _workers: list[_Worker | None]
    _bad_golds: OrderedDict[str, None]
    _calls: list[Call]
    _start_failures: int
    _broken_until: float
    _wake_r: Any

    def _slot_of(self, conn: Any) -> int | None:
        for slot, w in enumerate(self._workers):
            if w is not None and w.conn is conn:
                return slot
        return None

    def _spawn(self) -> _Worker | None:
        if self._stopped:
            return None
        options = {
            "die_with_parent": True,
            "memory_limit_bytes": self.memory_limit_mb * 2**20 if self.memory_limit_mb else None,
        }
        began = time.monotonic()
        try:
            pid, conn = self._server.fork(options, timeout=self.startup_timeout)
        except StartError as exc:
            logger.error("could not start a verifier worker: %s", exc)
            self._start_failed()
            return None
        self.stats["started"] += 1
        return _Worker(pid=pid, conn=conn, started_at=began, startup_deadline=time.monotonic() + self.startup_timeout)

    def _start_failed(self) -> None:
        self._start_failures += 1
        if self._start_failures >= _MAX_START_FAILURES:
            self._broken_until = time.monotonic() + _BROKEN_COOLDOWN_SECONDS
            self._start_failures = 0
            logger.error("verifier workers failed to start %d times in a row; not trying again for %.0f s "
                         "(answers that need sympy are checked in-process on the main thread meanwhile, and "
                         "score 0.0 elsewhere)", _MAX_START_FAILURES, _BROKEN_COOLDOWN_SECONDS)

    def _ensure_workers(self, wanted: int | None = None) -> None:
        """Start workers until ``wanted`` of them are free (None: every slot); a pool starts only what its work needs."""
        for slot, w in enumerate(self._workers):
            if w is not None and w.ready and not w.inflight and w.conn.poll():
                self._drain(slot)  # an idle worker has nothing to say: this is its end of file
        free = sum(1 for w in self._workers if w is not None and not w.inflight)
        missing = (len(self._workers) if wanted is None else wanted) - free
        for slot in range(len(self._workers)):
            if missing <= 0 or time.monotonic() < self._broken_until:
                return
            if self._workers[slot] is None:
                self._workers[slot] = self._spawn()
                missing -= 1

    def _kill(self, w: _Worker) -> None:
        self._server.kill(w.pid)
        with contextlib.suppress(Exception):
            w.conn.close()
        self.stats["killed"] += 1

    def _mark_bad_gold(self, gold: str, why: str) -> None:
        with self._cond:
            if gold not in self._bad_golds:
                logger.warning("verifier: gold answer %s %s; every answer to it scores 0.0 from now on",
                               preview(gold), why)
            self._bad_golds[gold] = None
            self._bad_golds.move_to_end(gold)
            while len(self._bad_golds) > _MAX_BAD_GOLDS:
                self._bad_golds.popitem(last=False)

    def _drop(self, slot: int) -> None:
        """Kill the worker in ``slot`` and leave the slot empty; items it had not answered go back to their call."""
        w = self._workers[slot]
        self._workers[slot] = None
        if w is None:
            return
        if w.call is not None:
            w.call.pending.extendleft(reversed(w.inflight))
        w.inflight.clear()
        self._release(w)
        self._kill(w)

    def _release(self, w: _Worker) -> None:
        if w.call is not None:
            w.call.busy -= 1
            w.call = None

    # -- the loop -----------------------------------------------------------------------------

    def _serve(self, until: Call) -> None:
        """Serve every registered call until ``until`` is finished."""
        while not until.finished:
            with self._cond:
                calls = list(self._calls)
            if any(c.pending for c in calls):
                self._ensure_workers(sum(math.ceil(len(c.pending) / c.chunk) for c in calls if not c.finished))
            if not any(w is not None for w in self._workers):
                for c in calls:
                    while c.pending:
                        c.results[c.pending.popleft()] = Verdict(False, UNAVAILABLE, 0.0)
                self._finish(calls)
                continue
            self._dispatch(calls)
            waiting = [w for w in self._workers if w is not None and (w.inflight or not w.ready)]
            if waiting:
                deadline = min(w.deadline if w.inflight else w.startup_deadline for w in waiting)
                timeout = min(MAX_WAIT_SECONDS, max(0.0, deadline - time.monotonic()))
                for conn in wait_for([w.conn for w in waiting] + [self._wake_r], timeout=timeout):
                    if conn is self._wake_r:
                        with contextlib.suppress(OSError):
                            self._wake_r.recv(4096)
                        continue
                    slot = self._slot_of(conn)
                    if slot is not None:
                        self._drain(slot)
                self._enforce_deadlines()
            self._finish(calls)

    def _finish(self, calls: list[Call]) -> None:
        done = [c for c in calls if not c.finished and not c.pending and c.busy == 0]
        if done:
            with self._cond:
                for c in done:
                    c.finished = True
                    if c in self._calls:
                        self._calls.remove(c)
                self._cond.notify_all()

    def _dispatch(self, calls: list[Call]) -> None:
        for slot, w in enumerate(self._workers):
            if w is None or not w.ready or w.inflight:
                continue
            open_calls = [c for c in calls if c.pending and not c.finished]
            if not open_calls:
                break
            call = min(open_calls, key=lambda c: (c.busy, c.id))
            items: list[int] = []
            while call.pending and len(items) < call.chunk:
                i = call.pending.popleft()
                if call.pairs[i][1] in self._bad_golds:
                    call.results[i] = Verdict(False, "gold overran its limit before", 0.0)
                else:
                    items.append(i)
            if not items:
                continue
            try:
                w.conn.send(("batch", call.id, [(i, *call.pairs[i]) for i in items], call.soft))
            except Exception as exc:  # noqa: BLE001 - it died while idle: retry these on another
                logger.warning("verifier worker %s is gone (%s); replacing it", w.pid, type(exc).__name__)
                call.pending.extendleft(reversed(items))
                self._workers[slot] = None
                self._kill(w)
                self._start_failed()
                continue
            now = time.monotonic()
            w.call, w.inflight, w.item_started, w.phase, w.acked = call, deque(items), now, None, False
            w.deadline = now + call.limit if call.limit else math.inf
            call.busy += 1
        parallel = sum(1 for c in calls if c.busy > 0)
        if parallel > self.stats["peak_parallel_calls"]:
            self.stats["peak_parallel_calls"] = parallel

    def _drain(self, slot: int) -> None:
        w = self._workers[slot]
        while w is not None and self._workers[slot] is w:
            try:
                if not w.conn.poll():
                    return
                message = w.conn.recv()
            except Exception:  # noqa: BLE001 - EOFError/OSError: the worker died
                self._on_death(slot, w)
                return
            self._handle(w, message)

    def _handle(self, w: _Worker, message: Any) -> None:
        kind = message[0]
        now = time.monotonic()
        if kind == "ready":
            w.ready = True
            self._start_failures = 0
            self.stats["ready"] += 1
            self.last_startup_seconds = now - w.started_at
            logger.debug("verifier worker %s ready in %.2f s", message[1], self.last_startup_seconds)
            return
        call = w.call
        if call is None or message[1] != call.id or not w.inflight:
            return  # stale: from a batch that was abandoned
        if kind == "batch-ok":
            w.acked = True
            return
        index = message[2]
        if kind in ("gold", "gold-ok"):
            if w.inflight[0] == index:
                w.phase = "gold" if kind == "gold" else None
            return
        if kind != "result" or index not in w.inflight:
            return
        _kind, _call_id, _index, ok, reason, seconds = message
        call.results[index] = Verdict(bool(ok), str(reason), float(seconds))
        w.inflight.remove(index)
        w.phase = None
        w.item_started = now
        w.deadline = now + call.limit if call.limit else math.inf
        self._start_failures = 0
        if not w.inflight:
            self._release(w)
        pred, gold = call.pairs[index]
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
            if w.inflight and now >= w.deadline and w.call is not None:
                call = w.call
                index = w.inflight.popleft()
                pred, gold = call.pairs[index]
                call.results[index] = Verdict(False, "timeout (worker killed)", now - w.item_started)
                self.stats["timeouts"] += 1
                logger.warning("verifier: answer %s (gold %s) overran its %.2f s limit; worker %s killed, "
                               "scored 0.0", preview(pred), preview(gold), call.limit, w.pid)
                if w.phase == "gold":
                    self._mark_bad_gold(gold, f"took over {call.limit:.2f} s to parse")
                call.pending.extendleft(reversed(w.inflight))
                w.inflight.clear()
                self._release(w)
                self._workers[slot] = None
                self._kill(w)
                self._workers[slot] = self._spawn()  # warms up while the others carry on
            elif not w.ready and not w.inflight and now >= w.startup_deadline:
                logger.error("verifier worker %s did not start within %.0f s; replacing it",
                             w.pid, self.startup_timeout)
                self._workers[slot] = None
                self._kill(w)
                self._start_failed()

    def _on_death(self, slot: int, w: _Worker) -> None:
        self._workers[slot] = None
        self._kill(w)
        code = self._server.exit_code(w.pid, timeout=_KILL_JOIN_SECONDS)
        if w.inflight and w.call is not None and not w.acked:  # it was gone before it took the batch
            logger.warning("verifier worker %s died while idle (exit code %s); its items go to another", w.pid, code)
            w.call.pending.extendleft(reversed(w.inflight))
            w.inflight.clear()
            self._release(w)
            self._start_failed()  # bounded: a worker that cannot even take a batch is a start failure
            self._workers[slot] = None if time.monotonic() < self._broken_until else self._spawn()
        elif w.inflight and w.call is not None:
            call = w.call
            index = w.inflight.popleft()
            self.stats["crashes"] += 1
            call.results[index] = Verdict(False, f"worker crashed (exit code {code})", time.monotonic() - w.item_started)
            logger.warning("verifier worker %s crashed (exit code %s) on answer %s (gold %s); scored 0.0",
                           w.pid, code, preview(call.pairs[index][0]), preview(call.pairs[index][1]))
            call.pending.extendleft(reversed(w.inflight))
            w.inflight.clear()
            self._release(w)
            self._workers[slot] = self._spawn()
        elif not w.ready:
            logger.error("verifier worker %s exited during start-up (exit code %s)", w.pid, code)
            self._start_failed()
