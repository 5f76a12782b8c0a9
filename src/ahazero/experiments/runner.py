"""Run jobs (each a sequence of commands) as subprocesses, at most K at once, each with its own log.

A job's commands run one after the other; a command that fails ends its job, not the others.
Every process starts in its own session (a Ctrl-C in the terminal reaches only the sweep,
which then stops them all) and, on Linux, is told to end when the sweep process dies, so an
interrupted sweep leaves no training running behind it. Output goes to the job's log file,
appended, with a header line per command.

Example:
    >>> import sys, tempfile, pathlib
    >>> log = pathlib.Path(tempfile.mkdtemp()) / "job.log"
    >>> job = Job("hello", [[sys.executable, "-c", "print('hi')"]], log)
    >>> [j.exit_code for j in run_jobs([job], parallel=1)]
    [0]
    >>> log.read_text().splitlines()[-1]
    'hi'
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import shlex
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

__all__ = ["Job", "SweepInterrupted", "run_jobs", "tail"]

logger = logging.getLogger("ahazero.experiments.runner")

#: Exit code recorded for a job stopped by an interrupted sweep.
INTERRUPTED = -2


class SweepInterrupted(Exception):
    """The sweep was interrupted (Ctrl-C or SIGTERM); its running jobs were stopped."""


@dataclass
class Job:
    """Commands to run one after the other, logging to ``log``; ``exit_code`` is set when it ends."""

    name: str
    commands: list[list[str]]
    log: Path
    payload: Any = None  # whatever the caller needs back in ``on_finish``
    #: Asked before command ``i`` starts; False: not yet (asked again at the next poll, the slot stays taken).
    before: Callable[[int], bool] | None = None
    exit_code: int | None = None
    seconds: float | None = None
    failed_command: list[str] | None = None
    _index: int = field(default=0, repr=False)
    _proc: subprocess.Popen | None = field(default=None, repr=False)
    _fh: IO[str] | None = field(default=None, repr=False)
    _start: float = field(default=0.0, repr=False)


def tail(path: Path, lines: int = 3) -> list[str]:
    """The last non-empty lines of a log file (for a failure message).

    Example:
        >>> import tempfile, pathlib
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "x.log"
        >>> _ = p.write_text("a\\n\\nb\\nc\\n")
        >>> tail(p, 2)
        ['b', 'c']
    """
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return []
    return [line.rstrip() for line in text.splitlines() if line.strip()][-lines:]


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    if sys.platform.startswith("linux"):
        with contextlib.suppress(Exception):
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _start_command(job: Job, env: dict[str, str] | None) -> None:
    command = job.commands[job._index]
    job.log.parent.mkdir(parents=True, exist_ok=True)
    job._fh = job.log.open("a", encoding="utf-8")
    job._fh.write(f"\n# {time.strftime('%Y-%m-%d %H:%M:%S')} $ {shlex.join(command)}\n")
    job._fh.flush()
    job._proc = subprocess.Popen(command, stdout=job._fh, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                 env=env, start_new_session=True, preexec_fn=_die_with_parent)


def _close(job: Job) -> None:
    if job._fh is not None:
        job._fh.close()
        job._fh = None


def _stop(jobs: Sequence[Job], grace: float) -> None:
    """SIGTERM each job's process group, then SIGKILL what is still there after ``grace`` seconds."""
    for job in jobs:
        if job._proc is None:  # waiting to start its next command
            job.exit_code, job.seconds = INTERRUPTED, time.monotonic() - job._start
            continue
        if job._proc.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(job._proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    for job in jobs:
        if job._proc is None:
            continue
        try:
            job._proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(job._proc.pid, signal.SIGKILL)
            job._proc.wait()
        job.exit_code = INTERRUPTED
        job.seconds = time.monotonic() - job._start
        _close(job)


class _Terminated(Exception):
    pass


def _on_sigterm(signum: int, frame: Any) -> None:
    raise _Terminated()


def run_jobs(jobs: Sequence[Job], *, parallel: int, env: dict[str, str] | None = None,
             on_finish: Callable[[Job], None] | None = None, poll_seconds: float = 0.2,
             grace_seconds: float = 30.0) -> list[Job]:
    """Run ``jobs`` in order, at most ``parallel`` at once; return them with ``exit_code`` set.

    ``on_finish`` is called in this thread as each job ends (in the order they end); a job's
    ``before(i)`` may hold command ``i`` back until something else is done. Ctrl-C
    or SIGTERM stops every running job (SIGTERM, then SIGKILL after ``grace_seconds``) and
    raises :class:`SweepInterrupted`; jobs that never started keep ``exit_code`` None.

    Example:
        >>> import sys, tempfile, pathlib
        >>> d = pathlib.Path(tempfile.mkdtemp())
        >>> jobs = [Job("bad", [[sys.executable, "-c", "raise SystemExit(3)"], ["never-run"]], d / "a.log"),
        ...         Job("good", [[sys.executable, "-c", "pass"]], d / "b.log")]
        >>> [(j.name, j.exit_code) for j in run_jobs(jobs, parallel=2)]
        [('bad', 3), ('good', 0)]
    """
    if parallel < 1:
        raise ValueError(f"--parallel must be at least 1 (got {parallel})")
    pending = list(jobs)
    running: list[Job] = []
    main = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _on_sigterm) if main else None
    # Ctrl-C stops the sweep even where an imported library had set SIGINT aside
    previous_int = signal.signal(signal.SIGINT, signal.default_int_handler) if main else None
    try:
        while pending or running:
            while pending and len(running) < parallel:
                job = pending.pop(0)
                job._start = time.monotonic()
                running.append(job)
            for job in list(running):
                if job._proc is None:  # its next command has not started yet
                    if job.before is None or job.before(job._index):
                        _start_command(job, env)
                    continue
                code = job._proc.poll()
                if code is None:
                    continue
                _close(job)
                if code == 0 and job._index + 1 < len(job.commands):
                    job._index += 1
                    job._proc = None
                    continue
                if code != 0:
                    job.failed_command = job.commands[job._index]
                job.exit_code, job.seconds = code, time.monotonic() - job._start
                running.remove(job)
                if on_finish is not None:
                    try:
                        on_finish(job)
                    except Exception:  # a report about one job must not stop the others
                        logger.exception("while reporting on %s", job.name)
            time.sleep(poll_seconds)
    except (KeyboardInterrupt, _Terminated):
        _stop(running, grace_seconds)
        raise SweepInterrupted(f"stopped {len(running)} running job(s)") from None
    finally:
        if main and previous is not None:
            signal.signal(signal.SIGTERM, previous)
        if main and previous_int is not None:
            signal.signal(signal.SIGINT, previous_int)
    return list(jobs)
