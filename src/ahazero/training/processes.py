"""What the processes of a distributed run must agree on before training starts.

Every process reads the run directory to decide where training starts (a fresh run, or the
last complete checkpoint). On one machine they all read the same files; on several machines
they agree only when the run directory lies on a filesystem every machine shares. A process
that sees something else would start from another step and hang the job later, so the
processes compare what they saw first and all stop with one clear error if it differs.

Example:
    >>> import tempfile
    >>> from ahazero.observe.rundir import RunDir
    >>> agreed_resume_step(RunDir(tempfile.mkdtemp() + "/new"), resume=False) is None
    True
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from ahazero.observe.rundir import RunDir, RunDirError

__all__ = ["agreed_resume_step", "machine_count"]


def _gather(values: list[Any]) -> list[Any]:
    from accelerate.utils import gather_object

    return gather_object(values)


def _describe(outcome: tuple[str, Any]) -> str:
    kind, value = outcome
    if kind == "error":
        return f"an error ({value})"
    return "a fresh start" if value is None else f"checkpoint-{value}"


def agreed_resume_step(run_dir: RunDir, *, resume: bool,
                       gather: Callable[[list[Any]], list[Any]] = _gather) -> int | None:
    """:meth:`RunDir.resume_step` as every process sees it; an error unless all of them agree.

    ``gather`` collects one item from each process in rank order (accelerate's
    ``gather_object``; a single process gets its own list back).

    Example:
        >>> import tempfile
        >>> rd = RunDir(tempfile.mkdtemp() + "/new")
        >>> agreed_resume_step(rd, resume=True, gather=lambda items: items * 2)  # two processes, both fresh
        >>> agreed_resume_step(rd, resume=True, gather=lambda items: items + [("step", 20)])
        Traceback (most recent call last):
        ...
        ahazero.observe.rundir.RunDirError: the processes see different things in .../new: process 0 sees a fresh start, process 1 sees checkpoint-20; ...
    """
    try:
        outcome: tuple[str, Any] = ("step", run_dir.resume_step(resume=resume))
    except RunDirError as err:
        outcome = ("error", str(err))
    seen = [tuple(item) for item in gather([outcome])]
    if any(item != seen[0] for item in seen):
        views = ", ".join(f"process {rank} sees {_describe(item)}" for rank, item in enumerate(seen))
        raise RunDirError(
            f"the processes see different things in {run_dir.root}: {views}; on several machines the run "
            "directory must lie on a filesystem every machine shares, at the same path (output_root)"
        )
    kind, value = seen[0]
    if kind == "error":
        raise RunDirError(value)
    return value


def machine_count(num_processes: int, env: dict[str, str] | None = None) -> int:
    """How many machines a run spans: all processes over the processes on this machine.

    ``LOCAL_WORLD_SIZE`` is set by torchrun (which ``accelerate launch`` runs); without it
    the run is on one machine.

    Example:
        >>> machine_count(16, {"LOCAL_WORLD_SIZE": "8"}), machine_count(1, {})
        (2, 1)
    """
    env = os.environ if env is None else env
    local = int(env.get("LOCAL_WORLD_SIZE") or num_processes or 1)
    return max(1, num_processes // max(1, local))
