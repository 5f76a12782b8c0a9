"""``ahazero bench`` / ``make bench``: rollout throughput, step-time split and peak memory.

Each case (a generation backend, optionally with memory presets) trains the config for
``warmup + steps`` GRPO steps in a fresh subprocess, so compile caches and GPU memory never
leak from one case into the next. Every case uses the same seed, prompts, batch and lengths.
Per measured step (warm-up steps are reported apart, since they include compilation) it
records:

- generated tokens per second of the rollout (completion tokens / generation seconds),
- the step split into generation, reward computation and the rest (log-prob passes and the
  policy update),
- peak GPU memory (allocated and reserved by PyTorch's allocator),
- the mean of each reward, so a faster backend that changes what is learned shows up.

Results print as a table and are written as JSON (default ``runs/bench/rollouts.json``); the
cases' short runs (traces included) go beside it in ``<json stem>-runs/<case>/`` and are
replaced by the next bench of the same case (never a folder the bench did not create).

Example:
    $ ahazero bench configs/default.yaml --backends hf,compiled --steps 3
    $ ahazero bench configs/default.yaml --backends auto --presets lora-24gb,full-bf16
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

__all__ = ["BenchSettings", "add_parser", "bench_overrides", "run_case", "summarize_case"]

logger = logging.getLogger("ahazero.bench")

#: File that marks a bench's scratch run directory (only such directories are ever replaced).
_MARKER = ".ahazero-bench"


class BenchSettings:
    """The batch shape and length every case shares.

    Example:
        >>> s = BenchSettings(prompts=8, generations=16, max_tokens=512, steps=3, warmup=1)
        >>> s.completions_per_step
        128
    """

    def __init__(self, *, prompts: int = 8, generations: int = 16, max_tokens: int = 512,
                 steps: int = 3, warmup: int = 1) -> None:
        if min(prompts, generations, max_tokens, steps) < 1 or warmup < 0:
            raise ValueError("prompts, generations, max_tokens and steps must be >= 1, warmup >= 0")
        self.prompts, self.generations, self.max_tokens = prompts, generations, max_tokens
        self.steps, self.warmup = steps, warmup

    @property
    def completions_per_step(self) -> int:
        return self.prompts * self.generations

    def as_dict(self) -> dict[str, int]:
        return {"prompts": self.prompts, "generations": self.generations, "max_tokens": self.max_tokens,
                "steps": self.steps, "warmup": self.warmup}


def bench_overrides(cfg: Any, settings: BenchSettings, *, backend: str, name: str, output_root: str) -> dict[str, Any]:
    """The overrides that give a config the bench's batch shape (no checkpoints, no trackers).

    The micro-batch (``per_device_train_batch_size``) is kept; gradient accumulation is set
    so one optimizer step sees ``prompts x generations`` completions.

    Example:
        >>> from ahazero.config.schema import validate_dict
        >>> cfg = validate_dict({"name": "x", "model": {"name_or_path": "tiny"},
        ...     "task": {"name": "arithmetic"}, "rewards": [{"name": "accuracy"}],
        ...     "grpo": {"per_device_train_batch_size": 32}})
        >>> o = bench_overrides(cfg, BenchSettings(), backend="hf", name="b", output_root="out")
        >>> o["grpo.gradient_accumulation_steps"], o["grpo.num_generations"]
        (4, 16)
    """
    from ahazero.config.schema import ConfigError

    per_device = int(cfg.grpo.get("per_device_train_batch_size", 8))
    total = settings.completions_per_step
    if total % per_device:
        raise ConfigError(f"grpo.per_device_train_batch_size ({per_device}) must divide the bench batch "
                          f"({settings.prompts} prompts x {settings.generations} completions = {total})")
    return {
        "name": name,
        "output_root": output_root,
        "generation.backend": backend,
        "logging.report_to": ["none"],
        "grpo.max_steps": settings.warmup + settings.steps,
        "grpo.num_generations": settings.generations,
        "grpo.per_device_train_batch_size": per_device,
        "grpo.gradient_accumulation_steps": total // per_device,
        "grpo.max_completion_length": settings.max_tokens,
        "grpo.save_strategy": "no",
    }


def summarize_case(steps: list[dict[str, Any]], warmup: int, completions_per_step: int) -> dict[str, Any]:
    """Aggregate per-step records (warm-up steps excluded) into the numbers the table shows.

    Example:
        >>> steps = [{"step_seconds": 9.0, "generation_seconds": 8.0, "reward_seconds": 0.1,
        ...           "generated_tokens": 800, "reward": 0.5, "peak_reserved_gib": 3.0}] * 3
        >>> s = summarize_case(steps, warmup=1, completions_per_step=128)
        >>> s["tokens_per_second"], s["generation_share"]
        (100.0, 0.889)
    """
    measured = steps[warmup:] or steps
    gen = sum(s.get("generation_seconds", 0.0) for s in measured)
    rew = sum(s.get("reward_seconds", 0.0) for s in measured)
    total = sum(s.get("step_seconds", 0.0) for s in measured)
    tokens = sum(s.get("generated_tokens", 0.0) for s in measured)
    out: dict[str, Any] = {
        "measured_steps": len(measured),
        "tokens_per_second": round(tokens / gen, 1) if gen else None,
        "mean_completion_tokens": round(tokens / (len(measured) * completions_per_step), 1),
        "step_seconds": round(total / len(measured), 3) if measured else None,
        "generation_seconds": round(gen / len(measured), 3) if measured else None,
        "reward_seconds": round(rew / len(measured), 4) if measured else None,
        "generation_share": round(gen / total, 3) if total else None,
        "reward_share": round(rew / total, 4) if total else None,
        "update_share": round(max(total - gen - rew, 0.0) / total, 3) if total else None,
        "warmup_step_seconds": [round(s.get("step_seconds", 0.0), 2) for s in steps[:warmup]],
    }
    for key in ("peak_allocated_gib", "peak_reserved_gib"):
        values = [s[key] for s in steps if s.get(key) is not None]
        out[key] = round(max(values), 2) if values else None
    reward_keys = sorted({k for s in measured for k in s if k == "reward" or k.startswith("rewards/")})
    for key in reward_keys:
        values = [s[key] for s in measured if s.get(key) is not None]
        out[key] = round(statistics.fmean(values), 4) if values else None
    return out


def _step_callback(records: list[dict[str, Any]]) -> Any:
    import torch
    from transformers import TrainerCallback

    cuda = torch.cuda.is_available()

    class StepRecorder(TrainerCallback):
        """Wall time, peak memory and the logged reward means of every optimizer step."""

        def on_step_begin(self, args, state, control, **kwargs):
            if cuda:
                torch.cuda.synchronize()
                torch.cuda.reset_peak_memory_stats()
            self._start = time.perf_counter()

        def on_step_end(self, args, state, control, **kwargs):
            if cuda:
                torch.cuda.synchronize()
            record = {"step": state.global_step, "step_seconds": time.perf_counter() - self._start}
            if cuda:
                record["peak_allocated_gib"] = torch.cuda.max_memory_allocated() / 2**30
                record["peak_reserved_gib"] = torch.cuda.max_memory_reserved() / 2**30
            records.append(record)

        def on_log(self, args, state, control, logs=None, **kwargs):
            if records and logs:
                for key, value in logs.items():
                    if key == "reward" or (key.startswith("rewards/") and key.endswith("/mean")):
                        records[-1][key] = float(value)

    return StepRecorder()


def run_case(config: str, overrides: list[str], *, backend: str, presets: list[str],
             settings: BenchSettings, out_dir: Path) -> dict[str, Any]:
    """Train one case in this process (its run goes to ``out_dir/<case>``); return per-step records and summary.

    Example:
        >>> r = run_case("configs/smoke.yaml", [], backend="hf", presets=[],   # doctest: +SKIP
        ...              settings=BenchSettings(steps=2), out_dir=Path("runs/bench"))
        >>> r["summary"]["tokens_per_second"] > 0                              # doctest: +SKIP
        True
    """
    import torch

    from ahazero.config.schema import apply_overrides
    from ahazero.config.validate import check_config
    from ahazero.observe.rundir import RunDir, RunDirError
    from ahazero.training.assemble import build_trainer, load_for_device

    cuda = torch.cuda.is_available()
    label = _case_label(backend, presets)
    cfg = load_for_device(config, cuda=cuda, presets=presets, overrides=overrides)
    cfg = apply_overrides(cfg, bench_overrides(cfg, settings, backend=backend, name=label,
                                               output_root=str(out_dir)))
    checked = check_config(cfg, cuda=cuda)
    marker = cfg.run_dir / _MARKER
    if cfg.run_dir.exists():
        if not marker.is_file():
            raise RunDirError(f"{cfg.run_dir} exists and was not written by `ahazero bench`; "
                              "pass another --out or move it")
        shutil.rmtree(cfg.run_dir)  # the previous bench of this case
    run_dir = RunDir(cfg.run_dir)
    run_dir.root.mkdir(parents=True)
    marker.write_text("scratch run of `ahazero bench`; replaced by the next bench\n", encoding="utf-8")
    trainer = build_trainer(cfg, checked=checked, run_dir=run_dir)
    records: list[dict[str, Any]] = []
    trainer.add_callback(_step_callback(records))
    started = time.perf_counter()
    trainer.train()
    wall = time.perf_counter() - started
    by_step: dict[int, dict[str, float]] = {}
    for timing in trainer.rollout_timings:  # several batches per step add up (num_iterations, eval)
        merged = by_step.setdefault(int(timing["step"]), {})
        for key, value in timing.items():
            if key not in ("step", "peak_allocated_gib", "tokens_per_second"):
                merged[key] = merged.get(key, 0.0) + value
    for record in records:
        record.update(by_step.get(record["step"], {}))
    return {
        "case": label,
        "backend": backend,
        "resolved_backend": checked.backend,
        "presets": presets,
        "status": "ok",
        "train_seconds": round(wall, 2),
        "steps": records,
        "summary": summarize_case(records, settings.warmup, settings.completions_per_step),
    }


def _scratch_dir(out: Path) -> Path:
    """Where the cases' short runs go: ``<out stem>-runs/`` beside the JSON file."""
    return out.parent / f"{out.stem}-runs"


def _case_label(backend: str, presets: list[str]) -> str:
    return "-".join([backend, *presets])


def _machine() -> dict[str, Any]:
    import torch
    import transformers
    import trl

    info = {"torch": torch.__version__, "transformers": transformers.__version__, "trl": trl.__version__,
            "device": torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu"}
    return info


def _run_worker(args: argparse.Namespace) -> int:
    """Subprocess side: run one case, write its JSON (an error is a result too)."""
    settings = BenchSettings(**json.loads(args.settings))
    result_path = Path(args.worker)
    try:
        result = run_case(args.config, args.overrides, backend=args.backends, presets=args.presets_list,
                          settings=settings, out_dir=_scratch_dir(Path(args.out)))
    except Exception as err:  # the parent reports it next to the other cases
        logger.exception("bench case failed")
        result = {"case": _case_label(args.backends, args.presets_list), "backend": args.backends,
                  "presets": args.presets_list, "status": f"error: {type(err).__name__}: {err}"[:500]}
    result_path.write_text(json.dumps(result), encoding="utf-8")
    return 0


def _cases(backends: list[str], presets: list[str]) -> list[tuple[str, list[str]]]:
    cases: list[tuple[str, list[str]]] = [(b, []) for b in backends]
    for combo in presets:
        cases.append(("auto", [p for p in combo.split("+") if p]))
    return cases


def _run_all(args: argparse.Namespace) -> int:
    from ahazero.config.presets import preset_overrides

    settings = BenchSettings(prompts=args.prompts, generations=args.generations, max_tokens=args.max_tokens,
                             steps=args.steps, warmup=args.warmup)
    backends = [b for b in args.backends.split(",") if b]
    presets = [p for p in args.presets.split(",") if p]
    for combo in presets:
        preset_overrides([p for p in combo.split("+") if p])  # unknown names fail now, not in a worker
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    results = []
    cases = _cases(backends, presets)
    for i, (backend, combo) in enumerate(cases, 1):
        label = _case_label(backend, combo)
        logger.info("bench case %d/%d: %s", i, len(cases), label)
        result_file = out.parent / f".case-{label}.json"
        result_file.unlink(missing_ok=True)
        cmd = [sys.executable, "-m", "ahazero", "bench", args.config, *args.overrides, "--worker", str(result_file),
               "--backends", backend, "--out", str(out), "--settings", json.dumps(settings.as_dict())]
        for name in combo:
            cmd += ["--preset", name]
        proc = subprocess.run(cmd, check=False, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        if result_file.is_file():
            results.append(json.loads(result_file.read_text(encoding="utf-8")))
            result_file.unlink()
        else:
            results.append({"case": label, "backend": backend, "presets": combo,
                            "status": f"error: worker exited with code {proc.returncode}"})
    report = {"config": args.config, "overrides": args.overrides, "settings": settings.as_dict(),
              "machine": _machine(), "cases": results}
    _compare(results, settings.completions_per_step)
    out.write_text(json.dumps(report, indent=2), encoding="utf-8")
    _print_table(report)
    logger.info("wrote %s", out)
    return 0 if all(r["status"] == "ok" for r in results) else 1


def _compare(results: list[dict[str, Any]], completions_per_step: int) -> None:
    """Speed-up over the first ``hf`` case and whether its reward mean is within noise of it."""
    base = next((r for r in results if r["status"] == "ok" and r.get("resolved_backend") == "hf"), None)
    if base is None:
        return
    b = base["summary"]
    for r in results:
        if r["status"] != "ok":
            continue
        s = r["summary"]
        if b.get("tokens_per_second") and s.get("tokens_per_second"):
            s["speedup_vs_hf"] = round(s["tokens_per_second"] / b["tokens_per_second"], 2)
        first = next((k for k in s if k.startswith("rewards/")), None)
        if first and s.get(first) is not None and b.get(first) is not None:
            s["reward_delta_vs_hf"] = round(s[first] - b[first], 4)
            s["reward_checked"] = first
            s["reward_delta_se"] = _se_of_difference(s[first], b[first], s["measured_steps"] * completions_per_step,
                                                     b["measured_steps"] * completions_per_step)


def _se_of_difference(p1: float, p2: float, n1: int, n2: int) -> float | None:
    """Standard error of a difference of two reward means in [0, 1] (binomial bound)."""
    if n1 < 1 or n2 < 1:
        return None
    var = lambda p: max(min(p, 1.0), 0.0) * (1 - max(min(p, 1.0), 0.0))  # noqa: E731
    return round(math.sqrt(var(p1) / n1 + var(p2) / n2), 4)


def _print_table(report: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    s = report["settings"]
    table = Table(title=f"rollouts: {s['prompts']} prompts x {s['generations']} completions x "
                        f"{s['max_tokens']} max tokens, {s['steps']} measured steps ({report['machine']['device']})")
    for col in ("case", "backend", "tok/s", "speed-up", "step s", "gen %", "reward %", "update %",
                "peak GiB (alloc/reserved)", "reward mean", "status"):
        table.add_column(col)
    for r in report["cases"]:
        if r["status"] != "ok":
            table.add_row(r["case"], r.get("backend", ""), *[""] * 8, r["status"])
            continue
        m = r["summary"]
        pct = lambda x: f"{100 * x:.1f}" if x is not None else "-"  # noqa: E731
        peak = (f"{m['peak_allocated_gib']}/{m['peak_reserved_gib']}" if m.get("peak_reserved_gib") is not None
                else "-")
        table.add_row(r["case"], r.get("resolved_backend", ""), f"{m['tokens_per_second']}",
                      f"{m.get('speedup_vs_hf', '-')}", f"{m['step_seconds']}", pct(m["generation_share"]),
                      pct(m["reward_share"]), pct(m["update_share"]), peak, f"{m.get('reward', '-')}", "ok")
    Console(width=None if sys.stdout.isatty() else 200).print(table)


def add_parser(sub: Any) -> None:
    """Register ``ahazero bench`` on the CLI's subparsers."""
    p = sub.add_parser("bench", help="rollout throughput, step split and peak memory per generation backend")
    p.add_argument("config", help="the config to benchmark (model, task, rewards)")
    p.add_argument("overrides", nargs="*", help="dotted overrides applied to every case")
    p.add_argument("--backends", default="hf,compiled,paged",
                   help="comma-separated generation backends to compare (default hf,compiled,paged)")
    p.add_argument("--presets", default="",
                   help="comma-separated memory presets to measure with the auto backend; join presets "
                        "with '+' to combine them (e.g. lora-24gb,full-bf16+gradient-checkpointing)")
    p.add_argument("--prompts", type=int, default=8, help="prompts per step (default 8)")
    p.add_argument("--generations", type=int, default=16, help="completions per prompt (default 16)")
    p.add_argument("--max-tokens", type=int, default=512, help="max completion tokens (default 512)")
    p.add_argument("--steps", type=int, default=3, help="measured steps per case (default 3)")
    p.add_argument("--warmup", type=int, default=1, help="warm-up steps per case, reported apart (default 1)")
    p.add_argument("--out", default="runs/bench/rollouts.json", help="JSON output file")
    p.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    p.add_argument("--settings", default=None, help=argparse.SUPPRESS)
    p.add_argument("--preset", dest="presets_list", action="append", default=[], help=argparse.SUPPRESS)
    p.set_defaults(func=lambda args: _run_worker(args) if args.worker else _run_all(args))
