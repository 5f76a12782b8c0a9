"""Put a run directory in order before a resume, so that every step is recorded exactly once.

Run by the one process that writes the run (it holds :class:`ahazero.observe.run_lock.RunLock`),
after :meth:`ahazero.observe.rundir.RunDir.resume_point` chose the checkpoint ``N``:

- **checkpoints** newer than ``N`` that cannot be resumed from: one cut short by a kill while
  saving (no readable ``trainer_state.json``) is deleted; any other (a truncated
  ``optimizer.pt``, a missing ``rng_state.pth``, ...) is moved to ``checkpoints/damaged/``;
- **metrics.jsonl**: lines logged after step ``N`` are dropped (training logs them again); a
  file missing when ``N`` > 0 is reported (the metrics of steps 1 to ``N`` are lost);
  damaged lines (not JSON, ``{"step": null}``, a value that is not a number) are reported by
  line number and moved to ``metrics.jsonl.damaged`` (one JSON object per line: ``line``,
  ``reason``, ``text``);
- **traces/**: files of steps after ``N`` are deleted (training writes them again), a damaged
  one after it is moved to ``traces/damaged/`` first; a damaged file of a step up to ``N``
  cannot be regenerated: the original goes to ``traces/damaged/`` and the step keeps its
  readable records. Anything else under a step file's name (a folder) is moved to
  ``traces/damaged/`` too. Leftover temp files (``.step-*.tmp``) are removed.

Every change is logged (a warning for damage, naming the file and line).

Example:
    >>> import tempfile, pathlib
    >>> from ahazero.observe.rundir import RunDir
    >>> rd = RunDir(tempfile.mkdtemp())
    >>> _ = rd.metrics.write_text('{"step": 1}\\n{"step": null}\\n{"step": 2}\\n{"step": 3}\\n')
    >>> report = repair_metrics(rd.metrics, keep_through=2)
    >>> report.dropped, [p.line for p in report.damaged], rd.metrics.read_text()
    (1, [2], '{"step": 1}\\n{"step": 2}\\n')
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from ahazero.cache.atomic_files import atomic_write_text
from ahazero.observe.checkpoints import is_torn, weights_problem
from ahazero.observe.records import Problem, check_metrics_row, check_trace_record, scan_lines
from ahazero.observe.rundir import ResumePoint, RunDir, RunDirError
from ahazero.observe.tracing import trace_steps

__all__ = ["MetricsRepair", "TracesRepair", "clear_passed_over", "finish_from_checkpoint", "prepare_restart",
           "repair_metrics", "repair_traces", "set_aside"]

logger = logging.getLogger("ahazero.observe.run_repair")

#: Files of a checkpoint that are training state, not part of the saved model.
_STATE_FILES = ("optimizer.pt", "optimizer.bin", "scheduler.pt", "scaler.pt", "trainer_state.json")


def set_aside(path: Path, folder: Path) -> Path:
    """Move ``path`` into ``folder`` under a free name (``name``, ``name-2``, ...); return where it went.

    Example:
        >>> import tempfile, pathlib
        >>> d = pathlib.Path(tempfile.mkdtemp())
        >>> _ = (d / "a.jsonl").write_text("x")
        >>> set_aside(d / "a.jsonl", d / "damaged").relative_to(d).as_posix()
        'damaged/a.jsonl'
    """
    folder.mkdir(parents=True, exist_ok=True)
    stem, suffix = (path.stem, path.suffix) if path.is_file() else (path.name, "")
    target = folder / path.name
    n = 1
    while target.exists():
        n += 1
        target = folder / f"{stem}-{n}{suffix}"
    shutil.move(str(path), str(target))
    return target


def _span(first: int, last: int) -> str:
    return f"step {first}" if first == last else f"steps {first}-{last}"


def clear_passed_over(run_dir: RunDir, point: ResumePoint) -> list[Path]:
    """Delete torn checkpoints newer than the resume point and set damaged ones aside; return where those went.

    Example:
        >>> import tempfile
        >>> rd = RunDir(tempfile.mkdtemp())
        >>> (rd.checkpoints / "checkpoint-4").mkdir(parents=True)
        >>> clear_passed_over(rd, ResumePoint(step=None, passed_over=((4, "optimizer.pt: missing"),)))
        [PosixPath('.../checkpoints/damaged/checkpoint-4')]
    """
    moved = []
    for step, why in point.passed_over:
        folder = run_dir.checkpoints / f"checkpoint-{step}"
        if not folder.exists():
            continue
        redo = _span((point.step or 0) + 1, step)
        start = f"checkpoint-{point.step}" if point.step is not None else "the start"
        if is_torn(why):
            shutil.rmtree(folder)
            logger.warning("checkpoint-%d was cut short while saving (%s): removed it; resuming from %s, "
                           "%s trained again", step, why, start, redo)
        else:
            target = set_aside(folder, run_dir.checkpoints / "damaged")
            moved.append(target)
            logger.warning("checkpoint-%d cannot be resumed from: %s. Resuming from %s instead (%s trained "
                           "again); the damaged checkpoint is kept in %s (delete it when you no longer need it)",
                           step, why, start, redo, target)
    return moved


@dataclass
class MetricsRepair:
    """What :func:`repair_metrics` changed: lines dropped after the checkpoint, damaged lines set aside."""

    dropped: int = 0
    damaged: list[Problem] = field(default_factory=list)


def repair_metrics(path: Path, *, keep_through: int) -> MetricsRepair:
    """Keep the good lines of ``metrics.jsonl`` up to step ``keep_through``; set damaged lines aside.

    Good lines are kept byte for byte; the file is rewritten atomically only when something
    changes. Damaged lines are appended to ``<file>.damaged`` and logged with their line number.
    """
    report = MetricsRepair()
    if keep_through > 0 and not path.is_file():
        logger.warning("%s is missing: the metrics of steps 1-%d are lost (the checkpoint and traces/ keep what "
                       "they hold); training logs from step %d on into a new file, and `ahazero report` shows only "
                       "those steps", path, keep_through, keep_through + 1)
        return report
    kept: list[str] = []
    aside: list[tuple[int, str, str, str]] = []  # line number, reason, where, text
    last_good: int | None = None
    changed = False
    for line in scan_lines(path, check_metrics_row):
        changed = changed or not line.terminated  # a last line without its newline: rewrite it whole
        if line.record is None:
            report.damaged.append(Problem(str(path), line.number, line.reason or "unusable"))
            step = (last_good or 0) + 1  # the step the line most likely belonged to
            where = (f"after step {last_good}" if last_good is not None else "before the first step") + (
                f"; steps after {keep_through} are logged again" if step > keep_through
                else f"; step {step} is not after the checkpoint (step {keep_through}), so it is not logged again")
            aside.append((line.number, line.reason or "unusable", where, line.text))
            changed = True
            continue
        last_good = line.record["step"]
        if line.record["step"] > keep_through:
            report.dropped += 1
            changed = True
            continue
        kept.append(line.text)
    if not changed:
        return report
    if aside:
        damaged_file = path.with_name(path.name + ".damaged")
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        with damaged_file.open("a", encoding="utf-8") as fh:
            for number, reason, _, text in aside:
                fh.write(json.dumps({"line": number, "reason": reason, "text": text, "set_aside_at": stamp},
                                    ensure_ascii=False) + "\n")
        for number, reason, where, _ in aside[:10]:
            logger.warning("%s line %d: %s (%s); set aside in %s", path, number, reason, where, damaged_file)
        if len(aside) > 10:
            logger.warning("%s: %d more damaged lines set aside in %s", path, len(aside) - 10, damaged_file)
    atomic_write_text(path, "".join(text + "\n" for text in kept), then="continue the run with --resume")
    if report.dropped:
        logger.info("resuming at step %d: dropped %d metric lines logged after it (logged again as training "
                    "repeats those steps)", keep_through, report.dropped)
    return report


@dataclass
class TracesRepair:
    """What :func:`repair_traces` changed: steps dropped, damaged lines found, files set aside."""

    dropped: list[int] = field(default_factory=list)
    damaged: list[Problem] = field(default_factory=list)
    set_aside: list[Path] = field(default_factory=list)


def repair_traces(folder: Path, *, keep_through: int) -> TracesRepair:
    """Drop trace files after step ``keep_through``; set damaged files aside (see the module docstring).

    Example:
        >>> import tempfile, pathlib
        >>> d = pathlib.Path(tempfile.mkdtemp())
        >>> _ = (d / "step-000001.jsonl").write_text('{"step": 1}\\n{"step": 1, "rew')
        >>> _ = (d / "step-000002.jsonl").write_text('{"step": 2}\\n')
        >>> r = repair_traces(d, keep_through=1)
        >>> r.dropped, [p.line for p in r.damaged], (d / "step-000001.jsonl").read_text()
        ([2], [2], '{"step": 1}\\n')
    """
    report = TracesRepair()
    for step in trace_steps(folder):
        path = folder / f"step-{step:06d}.jsonl"
        if not path.is_file():  # a folder (or a link to nowhere) where a step's trace file belongs
            report.damaged.append(Problem(str(path), 0, "not a file"))
            target = set_aside(path, folder / "damaged")
            report.set_aside.append(target)
            again = ("the step is traced again" if step > keep_through
                     else f"step {step} is before the checkpoint and cannot be traced again")
            logger.warning("%s is not a file; moved it to %s (%s)", path, target, again)
            continue
        lines = list(scan_lines(path, check_trace_record))
        bad = [Problem(str(path), x.number, x.reason or "unusable") for x in lines if x.record is None]
        report.damaged += bad
        if step > keep_through:
            report.dropped.append(step)
            if bad:
                target = set_aside(path, folder / "damaged")
                report.set_aside.append(target)
                logger.warning("%s: %d damaged lines (first: line %d, %s); moved to %s, the step is traced "
                               "again", path, len(bad), bad[0].line, bad[0].reason, target)
            else:
                path.unlink(missing_ok=True)
        elif bad:
            good = "".join(x.text + "\n" for x in lines if x.record is not None)
            target = set_aside(path, folder / "damaged")
            atomic_write_text(path, good, then="continue the run with --resume")
            report.set_aside.append(target)
            logger.warning("%s: %d damaged lines (first: line %d, %s); step %d is before the checkpoint and "
                           "cannot be traced again: it keeps its %d readable records, the original file is "
                           "kept in %s", path, len(bad), bad[0].line, bad[0].reason, step,
                           len(lines) - len(bad), target)
    for tmp in folder.glob(".step-*.tmp"):
        tmp.unlink(missing_ok=True)
    if report.dropped:
        logger.info("removed traces of %d steps after step %d (%s-%s); they are traced again",
                    len(report.dropped), keep_through, report.dropped[0], report.dropped[-1])
    return report


def prepare_restart(run_dir: RunDir, point: ResumePoint) -> tuple[MetricsRepair, TracesRepair]:
    """Everything above, for a run about to (re)start at ``point``: checkpoints, metrics, traces.

    Example:
        >>> import tempfile
        >>> m, t = prepare_restart(RunDir(tempfile.mkdtemp()), ResumePoint())
        >>> m.dropped, t.dropped
        (0, [])
    """
    clear_passed_over(run_dir, point)
    keep = point.step or 0
    return repair_metrics(run_dir.metrics, keep_through=keep), repair_traces(run_dir.traces, keep_through=keep)


def _model_problem(model: Path, checkpoint: Path) -> str | None:
    """Why ``model/`` is not the final model of a run whose last checkpoint is ``checkpoint``, or None."""
    if not model.is_dir():
        return "missing"
    problem = weights_problem(model)
    if problem:
        return f"damaged ({problem})"
    if not any((model / n).is_file() for n in ("config.json", "adapter_config.json")):
        return "incomplete (no config.json)"
    weights = [p for p in model.iterdir() if p.suffix in (".safetensors", ".bin")]
    saved = (checkpoint / "trainer_state.json").stat().st_mtime
    if weights and max(p.stat().st_mtime for p in weights) < saved:
        return f"older than {checkpoint.name} (the run stopped after that checkpoint, before its final save)"
    return None


def finish_from_checkpoint(run_dir: RunDir, step: int) -> Path | None:
    """Write ``model/`` from the final checkpoint when it is missing, damaged or older; return it, or None.

    A finished run's ``model/`` is what the final checkpoint saved, less the training state
    (optimizer, scheduler, RNG, trainer state), and it is written after that checkpoint; when
    it is not, it is rebuilt by copying (into a temp folder, then renamed into place).
    """
    model = run_dir.model
    checkpoint = run_dir.checkpoints / f"checkpoint-{step}"
    problem = _model_problem(model, checkpoint)
    if problem is None:
        return None
    staged = run_dir.root / ".model.tmp"
    shutil.rmtree(staged, ignore_errors=True)
    shutil.copytree(checkpoint, staged, copy_function=shutil.copyfile, ignore=lambda _d, names: [
        n for n in names if n in _STATE_FILES or (n.startswith("rng_state") and n.endswith(".pth"))])
    if weights_problem(staged) is not None:
        shutil.rmtree(staged, ignore_errors=True)
        raise RunDirError(f"{model} is {problem} and {checkpoint} holds no consolidated model to rebuild it from; "
                          f"evaluate the checkpoint with --model step-{step}")
    run_dir.replace_model(staged)
    logger.warning("%s was %s: rebuilt it from %s", model, problem, checkpoint)
    return model
