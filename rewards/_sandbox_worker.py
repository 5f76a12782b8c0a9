"""The worker process of :mod:`rewards.sandbox`: checks answers with math-verify, one batch at a time.

Protocol over one duplex :class:`multiprocessing.connection.Connection` (all tuples):

* worker -> parent ``("ready", pid, startup_seconds)`` once set up;
* parent -> worker ``("batch", batch_id, [(index, pred, gold), ...], soft_limit)``;
  the worker acknowledges it with ``("batch-ok", batch_id)`` (a worker that dies before
  that was gone already: its items are not charged with the crash), then answers every
  item in order with
  ``("result", batch_id, index, equivalent, reason, seconds)``; before parsing a gold it
  has not parsed yet it sends ``("gold", batch_id, index)`` and afterwards
  ``("gold-ok", batch_id, index)``, so that the parent can tell a hostile gold from a hostile answer;
* parent -> worker ``("stop",)``, or end of file: the worker exits.

Each item runs under a *soft* limit (``SIGALRM`` via ``setitimer``, in this process's main
thread), which interrupts slow pure-Python sympy work and keeps the worker alive; the parent
enforces the *hard* limit by killing the worker (for hangs inside C code, e.g. a huge ``**``).
Messages are only sent while the soft timer is disarmed, so a timeout never tears a message.

>>> run_item("1+2x", "2x+1", soft_limit=0)
(True, 'equivalent')
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import sys
import time
from collections.abc import Callable
from typing import Any

from rewards import equivalence

__all__ = ["SoftTimeout", "run_item", "serve", "soft_limit", "warm_up"]


class SoftTimeout(BaseException):  # a BaseException: `except Exception` in sympy lets it through
    """Raised by the soft-limit alarm inside an item."""


_BAD_GOLDS: set[str] = set()
_WARMED = False  # True in workers forked from the fork server, which imported rewards._sandbox_preload


def soft_limit(limit: float) -> float:
    """The in-worker soft limit for a per-item ``limit``: a little below it, so it usually fires first.

    >>> soft_limit(2.0), soft_limit(0.5), soft_limit(0.2)
    (1.9, 0.4, 0.15000000000000002)
    """
    return max(limit * 0.75, limit - 0.1)


def _on_alarm(signum: int, frame: Any) -> None:
    raise SoftTimeout


# Typical answer shapes: parsing them once fills the LaTeX parser's prediction caches, which every
# worker forked afterwards inherits (a cold parser takes 50-300 ms on its first nested brackets).
_WARM_UP_ANSWERS = (
    "2x+1", "(x+1)(x-1)", "((x+1))", "{x+1}", "[0, 1]", "(0, 1]", r"\{1, 2\}", r"\frac{1}{2}",
    r"\sqrt{2}", r"\frac{\sqrt{3}}{2}", "2^{10}", "x^2+2x+1", r"\left(\frac{1}{2}\right)^{2}", r"3\pi/4",
    r"\infty", "x=5", r"\begin{pmatrix}1 & 2\\ 3 & 4\end{pmatrix}", r"\sin(x)", "e^{x}", r"\text{yes}",
)


def warm_up() -> None:
    """Import math-verify/sympy and exercise the LaTeX parser (the fork server does this before forking).

    >>> warm_up()
    """
    global _WARMED
    for answer in _WARM_UP_ANSWERS:
        with contextlib.suppress(Exception):
            equivalence.sympy_equivalent(answer, "2x")
    _WARMED = True


def _set_up(options: dict[str, Any]) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's business
    signal.signal(signal.SIGALRM, _on_alarm)
    if options.get("die_with_parent") and sys.platform.startswith("linux"):
        with contextlib.suppress(Exception):
            import ctypes

            parent = os.getppid()  # the fork server
            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
            if os.getppid() != parent:
                os._exit(0)  # the parent died before prctl took effect
    memory = options.get("memory_limit_bytes")
    if memory:
        with contextlib.suppress(Exception):
            import resource

            _soft, hard = resource.getrlimit(resource.RLIMIT_AS)
            limit = memory if hard == resource.RLIM_INFINITY else min(memory, hard)
            resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
    logging.getLogger("math_verify").setLevel(logging.ERROR)
    root = logging.getLogger()  # nothing from math-verify/sympy reaches the terminal; reasons go back
    for handler in list(root.handlers):
        root.removeHandler(handler)
    root.addHandler(logging.NullHandler())
    root.setLevel(logging.CRITICAL)
    logging.raiseExceptions = False


_MAX_TIMER_SECONDS = 7 * 24 * 3600.0  # a longer soft limit is no limit; setitimer rejects huge values


def _arm(seconds: float) -> None:
    if 0 < seconds <= _MAX_TIMER_SECONDS:  # false for nan too
        signal.setitimer(signal.ITIMER_REAL, max(seconds, 1e-3))


def _disarm() -> None:
    signal.setitimer(signal.ITIMER_REAL, 0)


def _failed_in(phase: str, gold: str, what: str) -> tuple[bool, str]:
    if phase != "gold":
        return False, what
    if len(_BAD_GOLDS) >= 1024:
        _BAD_GOLDS.clear()
    _BAD_GOLDS.add(gold)  # the rest of this batch may hold the same gold
    return False, f"{what} in gold"


def run_item(
    pred: str, gold: str, *, soft_limit: float, notify: Callable[[str], None] | None = None
) -> tuple[bool, str]:
    r"""``(equivalent, reason)`` for one normalised pair, under a soft limit (0: none); never raises.

    Call it from the main thread only (it uses ``SIGALRM`` when ``soft_limit > 0``).
    ``notify("gold")`` / ``notify("gold-ok")`` bracket the parsing of an uncached gold and
    are called with the timer disarmed.

    >>> run_item(r"\sqrt{8}", r"2\sqrt{2}", soft_limit=0), run_item("x", "y", soft_limit=0)
    ((True, 'equivalent'), (False, 'different'))
    """
    start = time.monotonic()
    phase = "answer"
    if gold in _BAD_GOLDS:
        return False, "gold overran its limit before"
    try:
        if not equivalence.gold_is_cached(gold):
            phase = "gold"
            if notify is not None:
                notify("gold")
            try:
                _arm(soft_limit)
                equivalence.parse_gold(gold, None)
            finally:
                _disarm()
            if notify is not None:
                notify("gold-ok")
            phase = "answer"
        remaining = soft_limit - (time.monotonic() - start) if soft_limit > 0 else 0.0
        if soft_limit > 0 and remaining <= 0:
            raise SoftTimeout
        try:
            _arm(remaining)
            ok = equivalence.sympy_equivalent(pred, gold)
        finally:
            _disarm()
        return ok, "equivalent" if ok else "different"
    except SoftTimeout:
        return _failed_in(phase, gold, "timeout")
    except MemoryError:
        return _failed_in(phase, gold, "out of memory")
    except RecursionError:
        return False, "too deeply nested"
    except Exception as exc:  # noqa: BLE001 - one bad item must not end the worker
        return False, f"error: {type(exc).__name__}: {str(exc)[:100]}"


def serve(conn: Any, options: dict[str, Any]) -> None:
    """Worker main loop (the target of the sandbox's processes); returns on ``stop`` or end of file."""
    start = time.monotonic()
    _set_up(options)
    if not _WARMED:
        warm_up()  # done once in the fork server when it preloaded this module
    conn.send(("ready", os.getpid(), time.monotonic() - start))
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return
        if not isinstance(message, tuple) or not message or message[0] == "stop":
            return
        if message[0] != "batch":
            continue
        _kind, batch_id, items, soft_limit = message
        conn.send(("batch-ok", batch_id))
        for index, pred, gold in items:

            def notify(event: str, _batch: Any = batch_id, _index: int = index) -> None:
                conn.send((event, _batch, _index))

            began = time.monotonic()
            ok, reason = run_item(pred, gold, soft_limit=soft_limit, notify=notify)
            conn.send(("result", batch_id, index, ok, reason, time.monotonic() - began))
