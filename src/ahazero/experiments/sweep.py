"""``ahazero sweep CONFIG --grid KEY=V1,V2 ...``: train (and evaluate) every variant of a grid, then summarise.

Every variant is an ordinary run (``runs/<sweep>-<variant>``, trained by ``ahazero train``
in a subprocess, resumable); ``--parallel K`` runs K of them at once (a small model leaves a
big GPU mostly idle). The whole grid is validated before anything starts. Finished variants
are skipped; a stopped sweep continues with ``--resume``. ``--eval`` evaluates the base
model once per distinct model, task and prompt, and each variant after training, on the
held-out split (``ahazero eval``). Written to ``sweeps/<name>/``: ``plan.json``,
``summary.md`` and ``summary.json`` (see :mod:`ahazero.experiments.summary`), the base
evals (``base-<key>/``) and ``report/report.html`` (``ahazero report`` of all runs, overlaid).
Each variant's output goes to ``runs/<sweep>-<variant>/sweep.log``. ``--variant LABEL [config=FILE]
[preset=NAME] [KEY=V ...]`` adds a named variant beside the grid's, with its own overrides and,
optionally, another config file (a reference recipe in the same summary).

Example:
    $ ahazero sweep configs/aha.yaml --grid grpo.temperature=1.0,1.2 --grid rewards.1.weight=0,0.1 \\
          --eval --parallel 4
    $ ahazero sweep configs/aha.yaml --grid grpo.temperature=1.0,1.2 --grid rewards.1.weight=0,0.1 \\
          --eval --parallel 4 --resume          # after an interruption
    $ ahazero sweep configs/aha.yaml --seeds 3 --variant b512 --variant b128 grpo.max_steps=60 \\
          grpo.gradient_accumulation_steps=4 grpo.learning_rate=5e-6 --eval --parallel 2

    >>> command_prefix()[1:]
    ['-m', 'ahazero']
"""

from __future__ import annotations

import json
import os
import shlex
import shutil
import sys
import time
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape

from ahazero.cache.atomic_files import atomic_write_text
from ahazero.config.output_paths import check_output_folder
from ahazero.experiments.plan import SweepPlan, VariantPlan, build_plan, sweep_folder
from ahazero.experiments.runner import INTERRUPTED, Job, SweepInterrupted, run_jobs, tail
from ahazero.experiments.summary import progress_line, variant_row, write_summary
from ahazero.observe.run_lock import RunLock

__all__ = ["add_parser", "command_prefix", "run_sweep", "run_sweep_command", "sweep_jobs", "sweep_lock"]

_BASE_FILES = ("base.json", "base.md", "base-samples.jsonl")


def command_prefix() -> list[str]:
    """How a sweep calls ``ahazero``: this Python, ``-m ahazero``."""
    return [sys.executable, "-m", "ahazero"]


def sweep_jobs(plan: SweepPlan, *, prefix: list[str], eval_batch_size: int) -> list[Job]:
    """The jobs a plan still needs: base evals first, then each variant's train (and eval) commands.

    Example:
        >>> plan = build_plan("configs/smoke.yaml", grid=["seed=1,2"], cuda=False)   # doctest: +SKIP
        >>> [j.name for j in sweep_jobs(plan, prefix=["ahazero"], eval_batch_size=8)]  # doctest: +SKIP
        ['smoke-seed_1', 'smoke-seed_2']
    """
    jobs = []
    base_jobs: dict[str, Job] = {}
    batch = ["--batch-size", str(eval_batch_size)]
    for base in plan.bases.values():
        if not base.done:
            command = [*prefix, "eval", base.config or plan.config, *base.overrides, "--model", "base", "--out",
                       str(base.folder), *batch]
            base_jobs[base.key] = Job(f"base model ({base.folder.name})", [command], base.folder / "eval.log",
                                      payload=("base", base))
            jobs.append(base_jobs[base.key])
    for vp in plan.variants:
        config = vp.config or plan.config
        presets = [flag for name in (vp.presets if vp.config else plan.presets) for flag in ("--preset", name)]
        commands = []
        if vp.state in ("new", "resume", "restart"):
            commands.append([*prefix, "train", config, *vp.overrides, *presets]
                            + (["--resume"] if vp.state == "resume" else []))
        if plan.evaluate and vp.state != "finished":
            commands.append([*prefix, "eval", config, *vp.overrides, "--model", "final", *batch])
        if commands:
            jobs.append(Job(vp.variant.run_name, commands, vp.run.root / "sweep.log", payload=("variant", vp),
                            before=_after_base_eval(plan, vp, base_jobs.get(vp.base_key), len(commands) - 1)))
    return jobs


def _after_base_eval(plan: SweepPlan, vp: VariantPlan, base_job: Job | None, eval_index: int) -> Any:
    """``Job.before`` for a variant: its eval waits for the base model's, whose numbers it shows beside its own."""
    def before(index: int) -> bool:
        if not plan.evaluate or index != eval_index:
            return True
        if base_job is not None and base_job.exit_code is None:
            return False  # still running (base evals start before any variant, so it will end)
        _copy_base_eval(plan, vp)
        return True
    return before


def _copy_base_eval(plan: SweepPlan, vp: VariantPlan) -> None:
    """Put the shared base eval into the variant's ``eval/`` (for ``ahazero report`` of that run alone)."""
    base = plan.bases.get(vp.base_key)
    if base is None or not base.done or not vp.run.root.is_dir():
        return
    target = vp.run.root / "eval"
    target.mkdir(exist_ok=True)
    for name in _BASE_FILES:
        if (base.folder / name).is_file() and not (target / name).exists():
            shutil.copyfile(base.folder / name, target / name)


def _base_eval(plan: SweepPlan, key: str) -> dict[str, Any] | None:
    base = plan.bases.get(key)
    if base is None or not base.done:
        return None
    try:
        return json.loads((base.folder / "base.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _row(plan: SweepPlan, vp: VariantPlan, exit_code: int | None) -> dict[str, Any]:
    return variant_row(vp.run.root, label=vp.variant.label, values=vp.variant.values, seed=vp.variant.seed,
                       base=_base_eval(plan, vp.base_key), exit_code=exit_code)


def _child_env(parallel: int) -> dict[str, str]:
    env = dict(os.environ)
    if "OMP_NUM_THREADS" not in env and parallel > 1:  # K processes share the CPU cores
        env["OMP_NUM_THREADS"] = str(max(1, (os.cpu_count() or 1) // parallel))
    return env


def run_sweep(plan: SweepPlan, *, parallel: int = 1, eval_batch_size: int = 200, command: str = "ahazero sweep",
              prefix: list[str] | None = None, console: Console | None = None, overlay: bool = True) -> int:
    """Run what a validated plan still needs, write the summary and the overlay report; return the exit code.

    0: every variant finished; 1: some failed (the others ran; see their ``sweep.log``); 130:
    interrupted (the running ones were stopped; the same command with ``--resume`` continues).

    Example:
        >>> plan = build_plan("configs/smoke.yaml", grid=["seed=1,2"], cuda=False)   # doctest: +SKIP
        >>> run_sweep(plan, parallel=2)                                               # doctest: +SKIP
        0
    """
    console = console or Console(soft_wrap=True)
    with sweep_lock(plan.name, plan.out):  # one sweep writes this folder (and starts its variants) at a time
        return _run_sweep(plan, parallel=parallel, eval_batch_size=eval_batch_size, command=command,
                          prefix=prefix or command_prefix(), console=console, overlay=overlay)


def sweep_lock(name: str, out: Path) -> RunLock:
    """The lock of a sweep's folder: held while the sweep runs, so a second sweep of it is refused at once.

    Example:
        >>> sweep_lock("aha", Path("sweeps/aha")).label
        "sweep 'aha' (sweeps/aha)"
    """
    return RunLock(out, label=f"sweep {name!r} ({out})",
                   hint="wait for it to end (or stop it), or give this sweep another --name or --out")


def _set_aside(vp: VariantPlan, console: Console) -> None:
    """Move a variant stopped before its first checkpoint aside (``<run>.stopped-<time>``), never one being written."""
    with RunLock(vp.run.root):  # refused (RunLockedError) while another process trains it
        aside = vp.run.root.with_name(f"{vp.run.root.name}.stopped-{time.strftime('%Y%m%d-%H%M%S')}")
        vp.run.root.rename(aside)
    console.print(f"{vp.variant.run_name}: stopped before its first checkpoint; starting it again "
                  f"(the old run folder is now {aside})")


def _run_sweep(plan: SweepPlan, *, parallel: int, eval_batch_size: int, command: str, prefix: list[str],
               console: Console, overlay: bool) -> int:
    atomic_write_text(plan.out / "plan.json", json.dumps({"command": command, "started": time.strftime(
        "%Y-%m-%dT%H:%M:%S%z"), **plan.to_json()}, indent=2) + "\n")
    for vp in plan.variants:
        if vp.state == "restart":  # stopped before its first checkpoint: start again, keep the old folder
            _set_aside(vp, console)
        elif vp.state == "finished":
            console.print(f"{vp.variant.run_name}: finished earlier, skipped")
    jobs = sweep_jobs(plan, prefix=prefix, eval_batch_size=eval_batch_size)
    variant_jobs = [j for j in jobs if j.payload[0] == "variant"]
    done = [0]

    def on_finish(job: Job) -> None:
        kind, item = job.payload
        if kind == "base":
            if job.exit_code == 0:
                e = _base_eval(plan, item.key) or {}
                numbers = ", ".join(f"{label} {e[key]:.1%}" for key, label in (
                    ("pass@1", "pass@1"), ("reflection_rate", "reflection"),
                    ("reflection_rate_drgrpo", "reflection (Dr. GRPO)")) if isinstance(e.get(key), int | float))
                console.print(f"base model evaluated ({item.folder}): {numbers or 'no numbers'}")
            else:
                console.print(f"[red]base model eval failed (exit {job.exit_code})[/red]: "
                              + escape(" / ".join(tail(job.log))) + f"; log {escape(str(job.log))}")
            return
        done[0] += 1
        _copy_base_eval(plan, item)
        row = _row(plan, item, job.exit_code)
        line = progress_line(row, done[0], len(variant_jobs), job.seconds, job.log)
        if job.exit_code:
            line += " · " + " / ".join(tail(job.log))
        console.print(line, markup=False, highlight=False, soft_wrap=True)

    code = 0
    exit_codes: dict[str, int | None] = {}
    try:
        run_jobs(jobs, parallel=parallel, env=_child_env(parallel), on_finish=on_finish)
    except SweepInterrupted:
        code = 130
    for job in jobs:
        exit_codes[job.name] = job.exit_code
        if job.exit_code not in (None, 0) and code == 0:
            code = 1
    for vp in plan.variants:
        _copy_base_eval(plan, vp)
    rows = [_row(plan, vp, exit_codes.get(vp.variant.run_name)) for vp in plan.variants]
    bases = [{"key": b.key, "folder": str(b.folder), **b.describe, "eval": _base_eval(plan, b.key),
              "variants": [vp.variant.label for vp in plan.variants if vp.base_key == b.key]}
             for b in plan.bases.values()]
    report = _overlay_report(plan, console) if overlay else None
    info = {"name": plan.name, "command": command, "config": plan.config, "overrides": plan.overrides,
            "grid": {a.key: list(a.raw) for a in plan.axes}, "variants": plan.explicit_json(), "seeds": plan.seeds,
            "notes": plan.notes, "report": None if report is None else str(report)}
    paths = write_summary(plan.out, info, rows, bases)
    console.print(f"wrote {paths[1]} and {paths[0]}" + (f"; overlay report {report}" if report else ""))
    if code == 130:
        stopped = [j.name for j in jobs if j.exit_code == INTERRUPTED]
        console.print(f"[yellow]interrupted[/yellow] (stopped: {', '.join(stopped) or 'none'}); the same command "
                      "with --resume continues the sweep")
    elif code == 1:
        failed = [j.name for j in jobs if j.exit_code not in (None, 0)]
        console.print(f"[red]{len(failed)} job(s) failed[/red]: {', '.join(failed)} (their sweep.log / eval.log "
                      "says why); the same command with --resume retries them")
    return code


def _overlay_report(plan: SweepPlan, console: Console) -> Path | None:
    runs = [vp.run.root for vp in plan.variants if vp.run.metrics.is_file() and vp.run.metrics.stat().st_size]
    if not runs:
        return None
    try:
        import matplotlib  # noqa: F401

        from ahazero.observe.report import build_report
    except ImportError:
        console.print("[yellow]no overlay report: it needs matplotlib[/yellow] (pip install matplotlib)")
        return None
    return build_report(runs, plan.out / "report", title=f"sweep {plan.name}")


def add_parser(subparsers: Any) -> Any:
    """Register ``ahazero sweep`` and return its parser.

    Example:
        >>> import argparse
        >>> parser = argparse.ArgumentParser(); sub = parser.add_subparsers()
        >>> _ = add_parser(sub)
        >>> args = parser.parse_args(["sweep", "c.yaml", "grpo.max_steps=5", "--grid", "seed=1,2", "--parallel", "2"])
        >>> args.grid, args.parallel, args.overrides
        (['seed=1,2'], 2, ['grpo.max_steps=5'])
    """
    p = subparsers.add_parser(
        "sweep", help="train (and evaluate) every variant of a grid of overrides; summary.md + overlay report",
        description="Each variant is an ordinary run (runs/<sweep>-<variant>) trained by `ahazero train` in a "
                    "subprocess; the whole grid is validated first; finished variants are skipped.")
    p.add_argument("config", help="the base config, e.g. configs/aha.yaml")
    p.add_argument("overrides", nargs="*", help="dotted overrides for every variant, e.g. grpo.max_steps=100")
    p.add_argument("--grid", action="append", default=[], metavar="KEY=V1,V2",
                   help="one axis of the grid (repeatable; values are YAML; commas inside [] or {} do not split)")
    p.add_argument("--variant", action="append", nargs="+", default=[], metavar=("LABEL", "KEY=V"),
                   help="a named variant beside the grid's (repeatable): its overrides, and optionally config=FILE "
                        "(another config) and preset=NAME; with no --grid only these run")
    p.add_argument("--seeds", type=int, default=1, help="N seeds per grid point (seed, seed+1, ...; default 1)")
    p.add_argument("--eval", action="store_true", dest="evaluate",
                   help="evaluate the base model (once per model/task/prompt) and each trained variant on the "
                        "held-out split")
    p.add_argument("--name", default=None, help="the sweep's name (default: the config file's name)")
    p.add_argument("--resume", action="store_true", help="continue variants that stopped part-way")
    p.add_argument("--parallel", type=int, default=1, help="variants run at once (default 1)")
    p.add_argument("--out", default=None, help="the sweep's folder (default sweeps/<name>)")
    p.add_argument("--eval-batch-size", type=int, default=200, help="sequences per generate call in the evals")
    p.add_argument("--no-report", action="store_false", dest="report", help="skip the overlay report")
    p.add_argument("--dry-run", action="store_true", help="validate and show the plan; run nothing")
    p.add_argument("--preset", action="append", default=[], metavar="NAME", help="a memory preset for training")
    p.set_defaults(func=run_sweep_command)
    return p


def _command_line(args: Any) -> str:
    parts = ["ahazero", "sweep", args.config, *args.overrides]
    for spec in args.grid:
        parts += ["--grid", spec]
    for spec in getattr(args, "variant", None) or []:
        parts += ["--variant", *spec]
    for name, flag in (("seeds", "--seeds"), ("name", "--name"), ("parallel", "--parallel"), ("out", "--out")):
        value = getattr(args, name)
        if value is not None and not (name in ("seeds", "parallel") and value == 1):
            parts += [flag, str(value)]
    parts += [f for f, on in (("--eval", args.evaluate), ("--resume", args.resume)) if on]
    for name in args.preset:
        parts += ["--preset", name]
    return shlex.join(parts)


def run_sweep_command(args: Any, console: Console | None = None, prefix: list[str] | None = None) -> int:
    """Run ``ahazero sweep`` with parsed ``args``; config mistakes raise ConfigError (exit 2 in the CLI).

    Example:
        >>> import argparse
        >>> run_sweep_command(argparse.Namespace(config="configs/smoke.yaml", overrides=[], grid=["seed"],
        ...     seeds=1, evaluate=False, name=None, resume=False, parallel=1, out=None, eval_batch_size=8,
        ...     dry_run=True, preset=[], report=True))
        Traceback (most recent call last):
        ...
        ahazero.config.schema.ConfigError: --grid 'seed' must look like KEY=V1,V2,...
    """
    from ahazero.config.schema import ConfigError

    console = console or Console(soft_wrap=True)
    if args.parallel < 1:
        raise ConfigError(f"--parallel must be at least 1 (got {args.parallel})")
    if args.eval_batch_size < 1:
        raise ConfigError(f"--eval-batch-size must be at least 1 (got {args.eval_batch_size})")
    name, out = sweep_folder(args.config, args.name, args.out)
    lock = sweep_lock(name, check_output_folder(out))
    lock.check_free()  # a sweep of this folder runs: say so first (a plan read now would be stale)
    plan = _build(args)  # every variant validated before anything is written
    for note in plan.notes:
        console.print(f"note: {note}")
    if args.dry_run:
        return _show_plan(plan, args.eval_batch_size, console)
    with lock:
        plan = _build(args)  # again under the lock: the run folders as they are now that no other sweep can start
        return run_sweep(plan, parallel=args.parallel, eval_batch_size=args.eval_batch_size,
                         command=_command_line(args), prefix=prefix, console=console,
                         overlay=getattr(args, "report", True))


def _build(args: Any) -> SweepPlan:
    return build_plan(args.config, grid=args.grid, overrides=args.overrides, presets=args.preset, seeds=args.seeds,
                      name=args.name, out=args.out, evaluate=args.evaluate, resume=args.resume,
                      variants=getattr(args, "variant", None) or [])


def _show_plan(plan: SweepPlan, eval_batch_size: int, console: Console) -> int:
    for vp in plan.variants:
        console.print(f"{vp.variant.run_name}: {vp.state}  ({' '.join(vp.variant.overrides) or 'no grid values'})",
                      markup=False, highlight=False, soft_wrap=True)
    for job in sweep_jobs(plan, prefix=["ahazero"], eval_batch_size=eval_batch_size):
        for command in job.commands:
            console.print("  " + shlex.join(command), markup=False, highlight=False, soft_wrap=True)
    console.print(f"{len(plan.variants)} variant(s) valid; nothing run (--dry-run)")
    return 0
