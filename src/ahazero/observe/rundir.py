"""The run directory: what a run writes, and how a reader finds it.

Layout of ``runs/<name>/``::

    config.yaml     the resolved config (after overrides and the CPU profile)
    run.json        package versions, seed, device, start time, command line
    metrics.jsonl   one JSON object per logged step
    checkpoints/    TRL/transformers checkpoints (checkpoint-<step>/), for --resume
    model/          the final model and tokenizer
    tensorboard/    TensorBoard event files (when logging.report_to has tensorboard)
    .lock           held by the one process writing the run (:mod:`ahazero.observe.run_lock`)

What a resume finds damaged is set aside, not deleted (:mod:`ahazero.observe.run_repair`):
``metrics.jsonl.damaged``, ``traces/damaged/`` and ``checkpoints/damaged/``.

Example:
    >>> import tempfile
    >>> rd = RunDir(tempfile.mkdtemp() + "/demo")
    >>> rd.metrics.name, rd.checkpoints.name
    ('metrics.jsonl', 'checkpoints')
"""

from __future__ import annotations

import json
import platform
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ahazero.cache.atomic_files import atomic_write_text, write_error_message
from ahazero.observe.checkpoints import checkpoint_problem, is_torn
from ahazero.observe.records import Problem, check_metrics_row, check_object, read_checked

__all__ = ["ResumePoint", "RunDir", "RunDirError", "RunWriteError", "read_jsonl", "read_metrics", "write_failure"]


class RunDirError(RuntimeError):
    """A run directory cannot be used as asked (it holds another run, or no checkpoint)."""


class RunWriteError(RunDirError):
    """Writing the run directory failed (the disk is full, or the folder is not writable)."""


@dataclass(frozen=True)
class ResumePoint:
    """Where a run (re)starts, decided before any model loads.

    ``step`` is the checkpoint to resume from (None: a fresh start); ``target`` the step the run
    trains to; ``finished`` says the checkpoint already reached it (nothing to train);
    ``passed_over`` lists newer checkpoints that cannot be resumed from, as ``(step, why)``.
    """

    step: int | None = None
    target: int | None = None
    finished: bool = False
    passed_over: tuple[tuple[int, str], ...] = ()


@dataclass(frozen=True)
class RunDir:
    """Paths inside one run directory."""

    root: Path

    def __init__(self, root: str | Path) -> None:
        object.__setattr__(self, "root", Path(root))

    @property
    def config(self) -> Path:
        return self.root / "config.yaml"

    @property
    def info(self) -> Path:
        return self.root / "run.json"

    @property
    def metrics(self) -> Path:
        return self.root / "metrics.jsonl"

    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints"

    @property
    def model(self) -> Path:
        return self.root / "model"

    @property
    def traces(self) -> Path:
        return self.root / "traces"

    @property
    def tensorboard(self) -> Path:
        return self.root / "tensorboard"

    def checkpoint_steps(self) -> list[int]:
        """Steps of the checkpoints whose ``trainer_state.json`` is readable, ascending.

        What ``ahazero eval --model latest`` may load; whether one can be resumed from is
        :meth:`resume_point`'s question.

        Example:
            >>> import tempfile
            >>> RunDir(tempfile.mkdtemp()).checkpoint_steps()
            []
        """
        steps = []
        if self.checkpoints.is_dir():
            for child in self.checkpoints.glob("checkpoint-*"):
                suffix = child.name.removeprefix("checkpoint-")
                if suffix.isdigit() and _readable_json(child / "trainer_state.json"):
                    steps.append(int(suffix))
        return sorted(steps)

    def checkpoint_folders(self) -> list[int]:
        """Steps of every ``checkpoint-<step>`` folder, complete or not, ascending.

        Example:
            >>> import tempfile, pathlib
            >>> rd = RunDir(tempfile.mkdtemp())
            >>> (rd.checkpoints / "checkpoint-3").mkdir(parents=True)
            >>> rd.checkpoint_folders(), rd.checkpoint_steps()
            ([3], [])
        """
        if not self.checkpoints.is_dir():
            return []
        return sorted(int(p.name.removeprefix("checkpoint-")) for p in self.checkpoints.glob("checkpoint-*")
                      if p.is_dir() and p.name.removeprefix("checkpoint-").isdigit())

    def has_progress(self) -> bool:
        """True when the folder holds a started run (checkpoints or logged steps)."""
        return bool(self.checkpoint_steps()) or (self.metrics.is_file() and self.metrics.stat().st_size > 0)

    def resume_point(self, *, resume: bool, max_steps: int | None = None) -> ResumePoint:
        """Decide where a new or resumed run starts, without touching the folder.

        A folder that already holds a run is never reused for a fresh start: resume it, or
        pick another name. A resume starts from the newest checkpoint that passes
        :func:`ahazero.observe.checkpoints.checkpoint_problem`; newer ones that do not are
        listed in ``passed_over``. ``max_steps`` is the step the run trains to (``grpo.max_steps``;
        when not positive, the one the checkpoint recorded); a checkpoint at or past it means
        the run is ``finished``.

        Example:
            >>> import tempfile
            >>> RunDir(tempfile.mkdtemp() + "/new").resume_point(resume=False)
            ResumePoint(step=None, target=None, finished=False, passed_over=())
        """
        if not resume:
            if self.has_progress():
                raise RunDirError(
                    f"{self.root} already holds a run; pass --resume to continue it, or choose another "
                    "name (override name=<new>)"
                )
            return ResumePoint()
        passed: list[tuple[int, str]] = []
        for step in reversed(self.checkpoint_folders()):
            folder = self.checkpoints / f"checkpoint-{step}"
            problem = checkpoint_problem(folder)
            if problem is None:
                target = max_steps if max_steps is not None and max_steps > 0 else _saved_max_steps(folder)
                return ResumePoint(step=step, target=target, finished=target is not None and step >= target,
                                   passed_over=tuple(passed))
            passed.append((step, problem))
        if self.has_progress() or any(not is_torn(why) for _, why in passed):
            found = "; ".join(f"checkpoint-{step}: {why}" for step, why in passed) or "none was saved yet"
            raise RunDirError(
                f"{self.root} has no complete checkpoint to resume from ({found}); start a new run "
                "with another name (e.g. name=<new>), or lower grpo.save_steps"
            )
        return ResumePoint(passed_over=tuple(passed))

    def resume_step(self, *, resume: bool) -> int | None:
        """The checkpoint step :meth:`resume_point` resumes from (``None`` for a fresh start).

        Example:
            >>> import tempfile
            >>> RunDir(tempfile.mkdtemp() + "/new").resume_step(resume=False) is None
            True
        """
        return self.resume_point(resume=resume).step

    def prepare(self, *, resume: bool) -> int | None:
        """:meth:`resume_step`, then create the folder.

        Example:
            >>> import tempfile
            >>> rd = RunDir(tempfile.mkdtemp() + "/new")
            >>> rd.prepare(resume=False) is None and rd.root.is_dir()
            True
        """
        step = self.resume_step(resume=resume)
        self.root.mkdir(parents=True, exist_ok=True)
        return step

    def replace_model(self, staged: Path) -> None:
        """Put a completely written model folder in the place of ``model/`` (by renames, never half of one).

        Example:
            >>> import tempfile
            >>> rd = RunDir(tempfile.mkdtemp())
            >>> staged = rd.root / ".model.tmp"; staged.mkdir()
            >>> rd.replace_model(staged); rd.model.is_dir(), staged.exists()
            (True, False)
        """
        old = self.root / ".model.old"
        shutil.rmtree(old, ignore_errors=True)
        if self.model.exists():
            self.model.rename(old)
        Path(staged).rename(self.model)
        shutil.rmtree(old, ignore_errors=True)

    def write_info(self, *, config_text: str, seed: int, device: str, extra: dict[str, Any] | None = None) -> None:
        """Write ``config.yaml`` and ``run.json`` (versions, seed, device, command line)."""
        import importlib.metadata as md

        from ahazero import __version__

        versions = {"ahazero": __version__, "python": platform.python_version()}
        for pkg in ("torch", "transformers", "trl", "datasets", "accelerate", "peft", "math-verify", "sympy"):
            try:
                versions[pkg] = md.version(pkg)
            except md.PackageNotFoundError:
                versions[pkg] = None
        atomic_write_text(self.config, config_text, then="start the command again")
        info = {
            "versions": versions,
            "seed": seed,
            "device": device,
            "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "command": sys.argv,
            **(extra or {}),
        }
        history = []
        if self.info.is_file():
            try:
                history = json.loads(self.info.read_text()).get("history", [])
            except (json.JSONDecodeError, AttributeError):
                history = []
        info["history"] = history + [{"started_at": info["started_at"], "command": sys.argv}]
        atomic_write_text(self.info, json.dumps(info, indent=2) + "\n", then="start the command again")


def write_failure(path: Path, err: OSError) -> RunWriteError:
    """The error for a failed write of a run file: what failed, why, and what to do.

    Example:
        >>> import errno
        >>> str(write_failure(Path("runs/x/metrics.jsonl"), OSError(errno.ENOSPC, "No space left on device")))
        'cannot write runs/x/metrics.jsonl: No space left on device; free space on that disk, then continue the run with --resume'
    """
    return RunWriteError(write_error_message(path, err, then="continue the run with --resume"))


def _readable_json(path: Path) -> bool:
    """True when ``path`` holds valid JSON (a checkpoint killed while writing it does not)."""
    try:
        json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return True


def _saved_max_steps(folder: Path) -> int | None:
    """The ``max_steps`` a checkpoint's trainer state recorded (None when it has none)."""
    try:
        value = json.loads((folder / "trainer_state.json").read_text(encoding="utf-8")).get("max_steps")
    except (OSError, ValueError, AttributeError):
        return None
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def read_jsonl(path: str | Path, problems: list[Problem] | None = None) -> list[dict[str, Any]]:
    """Objects of a JSON-lines file that may still be written to, or torn by a killed run.

    A missing file is ``[]``; undecodable lines and lines that are not JSON objects are skipped
    and, when ``problems`` is given, reported there (file, line, reason).

    Example:
        >>> import tempfile, pathlib
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "m.jsonl"
        >>> _ = p.write_text('{"step": 1, "reward": 0.5}\\nnot json\\n[1]\\n{"step": 2, "rew')
        >>> found = []
        >>> read_jsonl(p, found), [q.line for q in found]
        ([{'step': 1, 'reward': 0.5}], [2, 3, 4])
    """
    return read_checked(path, check_object, problems)


def read_metrics(path: str | Path, problems: list[Problem] | None = None) -> list[dict[str, Any]]:
    """Read ``metrics.jsonl``: one object per logged step, each with an integer ``step`` and numbers.

    Lines that are not such objects (``{"step": null}``, a torn line) are skipped and, when
    ``problems`` is given, reported there; a last line cut short (the trainer is appending it
    right now, or was killed while doing so) is skipped without a report.

    Example:
        >>> import tempfile, pathlib
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "m.jsonl"
        >>> _ = p.write_text('{"step": 1, "reward": 0.5}\\n{"step": null}\\n{"step": 2, "rew')
        >>> found = []
        >>> read_metrics(p, found), [str(q).split("/")[-1] for q in found]
        ([{'step': 1, 'reward': 0.5}], ["m.jsonl line 2: 'step' is null, not an integer"])
    """
    return read_checked(path, check_metrics_row, problems, report_unfinished=False)
