"""The run directory: what a run writes, and how a reader finds it.

Layout of ``runs/<name>/``::

    config.yaml     the resolved config (after overrides and the CPU profile)
    run.json        package versions, seed, device, start time, command line
    metrics.jsonl   one JSON object per logged step
    checkpoints/    TRL/transformers checkpoints (checkpoint-<step>/), for --resume
    model/          the final model and tokenizer
    tensorboard/    TensorBoard event files (when logging.report_to has tensorboard)

Example:
    >>> import tempfile
    >>> rd = RunDir(tempfile.mkdtemp() + "/demo")
    >>> rd.metrics.name, rd.checkpoints.name
    ('metrics.jsonl', 'checkpoints')
"""

from __future__ import annotations

import json
import platform
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["RunDir", "RunDirError", "read_jsonl", "read_metrics"]


class RunDirError(RuntimeError):
    """A run directory cannot be used as asked (it holds another run, or no checkpoint)."""


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
        """Steps of the complete checkpoints present, ascending.

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

    def has_progress(self) -> bool:
        """True when the folder holds a started run (checkpoints or logged steps)."""
        return bool(self.checkpoint_steps()) or (self.metrics.is_file() and self.metrics.stat().st_size > 0)

    def resume_step(self, *, resume: bool) -> int | None:
        """Check the folder for a new or resumed run, without touching it.

        Returns the checkpoint step to resume from (``None`` for a fresh start). A folder that
        already holds a run is never reused for a fresh start: resume it, or pick another name.
        Read-only, so every process of a distributed run can call it and agree.

        Example:
            >>> import tempfile
            >>> RunDir(tempfile.mkdtemp() + "/new").resume_step(resume=False) is None
            True
        """
        if resume:
            steps = self.checkpoint_steps()
            if steps:
                return steps[-1]
            if self.has_progress():
                raise RunDirError(
                    f"{self.root} has no complete checkpoint to resume from; start a new run "
                    "with another name (e.g. name=<new>) or lower grpo.save_steps"
                )
            return None
        if self.has_progress():
            raise RunDirError(
                f"{self.root} already holds a run; pass --resume to continue it, or choose another "
                "name (override name=<new>)"
            )
        return None

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
        self.config.write_text(config_text, encoding="utf-8")
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
        self.info.write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")


def _readable_json(path: Path) -> bool:
    """True when ``path`` holds valid JSON (a checkpoint killed while writing it does not)."""
    try:
        json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return True


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    """Objects of a JSON-lines file that may still be written to, or torn by a killed run.

    A missing file is ``[]``; undecodable lines (a torn last line) and lines that are not
    JSON objects are skipped.

    Example:
        >>> import tempfile, pathlib
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "m.jsonl"
        >>> _ = p.write_text('{"step": 1, "reward": 0.5}\\nnot json\\n[1]\\n{"step": 2, "rew')
        >>> read_jsonl(p)
        [{'step': 1, 'reward': 0.5}]
    """
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    except (FileNotFoundError, IsADirectoryError):
        return []
    rows = []
    for line in text.splitlines():
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(obj, dict):
            rows.append(obj)
    return rows


def read_metrics(path: str | Path) -> list[dict[str, Any]]:
    """Read ``metrics.jsonl`` (see :func:`read_jsonl`): one object per logged step.

    Example:
        >>> import tempfile, pathlib
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "m.jsonl"
        >>> _ = p.write_text('{"step": 1, "reward": 0.5}\\n{"step": 2, "rew')
        >>> read_metrics(p)
        [{'step': 1, 'reward': 0.5}]
    """
    return read_jsonl(path)
