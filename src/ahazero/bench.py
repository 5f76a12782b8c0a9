"""``ahazero bench`` / ``make bench``: rollout throughput, step split, the decode step against the GPU's limits.

Each case (a generation backend, or memory/speed presets with the ``auto`` backend, at one
batch size) trains the config for ``warmup + steps`` GRPO steps in a fresh subprocess, so
compile caches and GPU memory never leak from one case into the next. Every case uses the
same seed, prompts, lengths and completions per prompt; ``--batches`` sweeps the completions
per step (more prompts per step, the same completions per prompt). Per measured step
(warm-up steps are reported apart, since they include compilation) it records:

- generated tokens per second of the rollout (completion tokens / generation seconds), and
  completions per second of the whole step,
- the step split into generation, reward computation and the rest (log-prob passes and the
  policy update),
- the decode step: its mean time and rows, the bytes it reads (weights + KV cache) and FLOPs
  it does per second, and both as a % of the GPU's peaks (:mod:`ahazero.bench_roofline`;
  measured by the ``graph`` sampler, estimated from the batch's shape for ``hf`` and ``compiled``),
- the update: its forward and backward time (the log-prob passes of old and reference
  policies apart), the tokens it computed and scored, its padding share, tokens per second and
  MFU (model FLOPs against the GPU's bf16 peak, :func:`ahazero.bench_update.update_flops`),
  and the optimizer step,
- peak GPU memory (allocated and reserved by PyTorch's allocator),
- the mean of each reward, so a faster backend that changes what is learned shows up.

``--update-variants padded,sorted,packed,shared`` adds the update's A/B to every case: before
each step's update, each variant computes it on the same completions
(:mod:`ahazero.bench_update`), and a second table compares them (the A/B's own time is taken
out of the case's step time).

Results print as one table and are written as one JSON (default ``runs/bench/rollouts.json``);
the cases' short runs (traces included) go beside it in ``<json stem>-runs/<case>/`` and are
replaced by the next bench of the same case (never a folder the bench did not create).

Example:
    $ ahazero bench configs/default.yaml --backends hf,compiled --steps 3
    $ ahazero bench configs/default.yaml --backends graph --batches 128,256,512,1024
    $ ahazero bench configs/default.yaml --backends auto --presets lora-24gb,full-bf16
    $ ahazero bench configs/default.yaml --backends graph --prompts 64 --update-variants padded,packed,shared
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from ahazero.bench_report import (
    add_peak_shares,
    compare_cases,
    print_table,
    print_update_table,
    summarize_case,
)
from ahazero.bench_update import parse_update_variants
from ahazero.cache.atomic_files import atomic_write_text
from ahazero.config.cli_numbers import check_count

__all__ = ["BenchSettings", "add_parser", "bench_overrides", "parse_batches", "run_case", "summarize_case"]

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
        for flag, value in (("--prompts", prompts), ("--generations", generations), ("--max-tokens", max_tokens),
                            ("--steps", steps)):
            check_count(flag, value)
        check_count("--warmup", warmup, least=0)
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
    so one optimizer step sees ``prompts x generations`` completions (with ``auto`` micro-batches,
    ``generation_batch_size`` is set and ``auto`` splits it).

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

    total = settings.completions_per_step
    if cfg.grpo.get("per_device_train_batch_size") == "auto":  # auto splits the step into micro-batches itself
        shape: dict[str, Any] = {"grpo.generation_batch_size": total}
    else:
        per_device = int(cfg.grpo.get("per_device_train_batch_size", 8))
        if total % per_device:
            raise ConfigError(f"grpo.per_device_train_batch_size ({per_device}) must divide the bench batch "
                              f"({settings.prompts} prompts x {settings.generations} completions = {total})")
        shape = {"grpo.per_device_train_batch_size": per_device,
                 "grpo.gradient_accumulation_steps": total // per_device}
    return {
        "name": name,
        "output_root": output_root,
        "generation.backend": backend,
        "logging.report_to": ["none"],
        "grpo.max_steps": settings.warmup + settings.steps,
        "grpo.num_generations": settings.generations,
        **shape,
        "grpo.max_completion_length": settings.max_tokens,
        "grpo.save_strategy": "no",
    }


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
            record = {"step": state.global_step, "step_seconds": time.perf_counter() - self._start,
                      "optimizer_seconds": getattr(self, "_optimizer_seconds", 0.0)}
            if cuda:
                record["peak_allocated_gib"] = torch.cuda.max_memory_allocated() / 2**30
                record["peak_reserved_gib"] = torch.cuda.max_memory_reserved() / 2**30
            records.append(record)

        def on_pre_optimizer_step(self, args, state, control, **kwargs):
            if cuda:
                torch.cuda.synchronize()
            self._optimizer_start = time.perf_counter()

        def on_optimizer_step(self, args, state, control, **kwargs):
            if cuda:
                torch.cuda.synchronize()
            self._optimizer_seconds = time.perf_counter() - self._optimizer_start

        def on_log(self, args, state, control, logs=None, **kwargs):
            if records and logs:
                for key, value in logs.items():
                    if key == "reward" or (key.startswith("rewards/") and key.endswith("/mean")):
                        records[-1][key] = float(value)

    return StepRecorder()


def run_case(config: str, overrides: list[str], *, backend: str, presets: list[str],
             settings: BenchSettings, out_dir: Path, batch: int | None = None,
             update_variants: list[str] | None = None) -> dict[str, Any]:
    """Train one case in this process (its run goes to ``out_dir/<case>``); return per-step records and summary.

    ``batch`` (a value of ``--batches``) only names the case; ``settings`` holds its shape.
    With ``update_variants``, each step's update is also computed in each of them first
    (:class:`~ahazero.bench_update.UpdateProbe`).

    Example:
        >>> r = run_case("configs/smoke.yaml", [], backend="hf", presets=[],   # doctest: +SKIP
        ...              settings=BenchSettings(steps=2), out_dir=Path("runs/bench"))
        >>> r["summary"]["tokens_per_second"] > 0                              # doctest: +SKIP
        True
    """
    import torch

    from ahazero.bench_update import UpdateProbe, summarize_variants
    from ahazero.config.schema import apply_overrides
    from ahazero.config.validate import check_config
    from ahazero.observe.rundir import RunDir, RunDirError
    from ahazero.rollout.decode_cost import model_facts
    from ahazero.training.assemble import build_trainer, load_for_device
    from ahazero.training.auto_sizes import resolve_auto_sizes

    cuda = torch.cuda.is_available()
    label = _case_label(backend, presets, batch)
    cfg = load_for_device(config, cuda=cuda, presets=presets, overrides=overrides)
    cfg = apply_overrides(cfg, bench_overrides(cfg, settings, backend=backend, name=label,
                                               output_root=str(out_dir)))
    cfg, _ = resolve_auto_sizes(cfg, cuda=cuda)
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
    facts = model_facts(trainer.model)
    records: list[dict[str, Any]] = []
    trainer.add_callback(_step_callback(records))
    probe = UpdateProbe(trainer, update_variants) if update_variants else None
    trainer.update_probe = probe
    started = time.perf_counter()
    trainer.train()
    wall = time.perf_counter() - started
    by_step: dict[int, dict[str, float]] = {}
    for timing in [*trainer.rollout_timings, *trainer.update_timings]:  # several batches per step add up
        merged = by_step.setdefault(int(timing["step"]), {})
        for key, value in timing.items():
            if key not in ("step", "peak_allocated_gib", "tokens_per_second", "update_tokens_per_second",
                           "update_padding_share"):
                merged[key] = merged.get(key, 0.0) + value
    for record in records:
        record.update(by_step.get(record["step"], {}))
    extra = {}
    if probe is not None:
        for record in records:  # the step without the probe: its time taken out, its generation's peak put back
            probed = next((r for r in probe.records if r["step"] == record["step"]), {})
            record["step_seconds"] -= probed.get("probe_seconds", 0.0)
            before = probed.get("generation_peak_gib")
            if before is not None and record.get("peak_allocated_gib") is not None:
                record["peak_allocated_gib"] = max(record["peak_allocated_gib"], before)
        extra["update_variants"] = summarize_variants(probe.records, settings.warmup, facts)
    return {
        "case": label,
        "backend": backend,
        "resolved_backend": checked.backend,
        "presets": presets,
        "batch": settings.completions_per_step,
        "prompts": settings.prompts,
        "status": "ok",
        "train_seconds": round(wall, 2),
        "model": facts,
        "steps": records,
        "summary": summarize_case(records, settings.warmup, settings.completions_per_step, facts=facts),
        **extra,
    }


def _scratch_dir(out: Path) -> Path:
    """Where the cases' short runs go: ``<out stem>-runs/`` beside the JSON file."""
    return out.parent / f"{out.stem}-runs"


def _case_label(backend: str, presets: list[str], batch: int | None = None) -> str:
    return "-".join([backend, *presets, *([f"b{batch}"] if batch else [])])


def parse_batches(text: str, generations: int) -> list[int]:
    """``--batches``: completions per step, each a positive multiple of ``--generations``.

    Example:
        >>> parse_batches("128,256", 16)
        [128, 256]
        >>> parse_batches("100", 16)
        Traceback (most recent call last):
        ...
        ahazero.config.schema.ConfigError: --batches: 100 is not a multiple of --generations (16); e.g. 96 or 112
    """
    from ahazero.config.schema import ConfigError

    batches = []
    for item in (t.strip() for t in text.split(",")):
        if not item:
            continue
        if not item.isdigit() or int(item) < 1:
            raise ConfigError(f"--batches: '{item}' is not a positive whole number of completions per step")
        batch = int(item)
        if batch % generations:
            low = batch // generations * generations
            raise ConfigError(f"--batches: {batch} is not a multiple of --generations ({generations}); "
                             f"e.g. {low or generations} or {low + generations}")
        batches.append(batch)
    return batches


def _machine(*, tbps: float | None = None, tflops: float | None = None) -> dict[str, Any]:
    import torch
    import transformers
    import trl

    from ahazero.bench_roofline import device_peaks

    device = torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu"
    return {"torch": torch.__version__, "transformers": transformers.__version__, "trl": trl.__version__,
            "device": device, **device_peaks(device, tbps=tbps, tflops=tflops)}


def _run_worker(args: argparse.Namespace) -> int:
    """Subprocess side: run one case, write its JSON (an error is a result too)."""
    settings = BenchSettings(**json.loads(args.settings))
    result_path = Path(args.worker)
    try:
        result = run_case(args.config, args.overrides, backend=args.backends, presets=args.presets_list,
                          settings=settings, out_dir=_scratch_dir(Path(args.out)), batch=args.case_batch,
                          update_variants=parse_update_variants(args.update_variants))
    except Exception as err:  # the parent reports it next to the other cases
        logger.exception("bench case failed")
        result = {"case": _case_label(args.backends, args.presets_list, args.case_batch), "backend": args.backends,
                  "presets": args.presets_list, "batch": settings.completions_per_step,
                  "status": f"error: {type(err).__name__}: {err}"[:500]}
    result_path.write_text(json.dumps(result), encoding="utf-8")
    return 0


def _cases(backends: list[str], presets: list[str], batches: list[int]) -> list[tuple[str, list[str], int | None]]:
    """(backend, presets, batch) per case: for each batch (or the one ``--prompts`` batch), every backend, then presets."""
    combos: list[tuple[str, list[str]]] = [(b, []) for b in backends]
    combos += [("auto", [p for p in combo.split("+") if p]) for combo in presets]
    return [(backend, combo, batch) for batch in (batches or [None]) for backend, combo in combos]


def _run_all(args: argparse.Namespace) -> int:
    from ahazero.config.presets import preset_overrides
    from ahazero.observe.run_lock import claim_output

    settings = BenchSettings(prompts=args.prompts, generations=args.generations, max_tokens=args.max_tokens,
                             steps=args.steps, warmup=args.warmup)
    backends = [b for b in args.backends.split(",") if b]
    presets = [p for p in args.presets.split(",") if p]
    for combo in presets:
        preset_overrides([p for p in combo.split("+") if p])  # unknown names fail now, not in a worker
    batches = parse_batches(args.batches, settings.generations)
    parse_update_variants(args.update_variants)  # unknown names fail now, not in a worker
    out = Path(args.out)
    with claim_output([out], overwrite=args.overwrite):  # before any case: a bad --out fails now, not at the end
        return _run_cases(args, settings, backends, presets, batches, out)


def _run_cases(args: argparse.Namespace, settings: BenchSettings, backends: list[str], presets: list[str],
               batches: list[int], out: Path) -> int:
    """Every case in its own process, then the table and the JSON at ``out`` (claimed by the caller)."""
    results = []
    cases = _cases(backends, presets, batches)
    for i, (backend, combo, batch) in enumerate(cases, 1):
        label = _case_label(backend, combo, batch)
        shape = settings.as_dict()
        if batch:
            shape["prompts"] = batch // settings.generations
        logger.info("bench case %d/%d: %s", i, len(cases), label)
        result_file = out.parent / f".case-{label}.json"
        result_file.unlink(missing_ok=True)
        cmd = [sys.executable, "-m", "ahazero", "bench", args.config, *args.overrides, "--worker", str(result_file),
               "--backends", backend, "--out", str(out), "--settings", json.dumps(shape),
               "--update-variants", args.update_variants]
        if batch:
            cmd += ["--case-batch", str(batch)]
        for name in combo:
            cmd += ["--preset", name]
        proc = subprocess.run(cmd, check=False, env={**os.environ, "PYTHONUNBUFFERED": "1"})
        if result_file.is_file():
            results.append(json.loads(result_file.read_text(encoding="utf-8")))
            result_file.unlink()
        else:
            results.append({"case": label, "backend": backend, "presets": combo,
                            "batch": shape["prompts"] * settings.generations,
                            "status": f"error: worker exited with code {proc.returncode}"})
    machine = _machine(tbps=args.peak_tbps, tflops=args.peak_tflops)
    report = {"config": args.config, "overrides": args.overrides, "settings": settings.as_dict(),
              "batches": batches, "machine": machine, "cases": results}
    compare_cases(results)
    add_peak_shares(results, machine)
    atomic_write_text(out, json.dumps(report, indent=2))
    print_table(report)
    print_update_table(report)
    logger.info("wrote %s", out)
    return 0 if all(r["status"] == "ok" for r in results) else 1


def add_parser(sub: Any) -> None:
    """Register ``ahazero bench`` on the CLI's subparsers."""
    p = sub.add_parser("bench", help="rollout throughput, step split, the decode step and the update against the GPU's peaks, and peak memory per generation backend and batch")
    p.add_argument("config", help="the config to benchmark (model, task, rewards)")
    p.add_argument("overrides", nargs="*", help="dotted overrides applied to every case")
    p.add_argument("--backends", default="hf,compiled,paged",
                   help="comma-separated generation backends to compare (default hf,compiled,paged)")
    p.add_argument("--presets", default="",
                   help="comma-separated memory presets to measure with the auto backend; join presets "
                        "with '+' to combine them (e.g. lora-24gb,full-bf16+gradient-checkpointing)")
    p.add_argument("--prompts", type=int, default=8, help="prompts per step (default 8; see --batches)")
    p.add_argument("--batches", default="",
                   help="comma-separated completions per step to sweep (e.g. 128,256,512,1024), each a multiple of "
                        "--generations: every case runs at each (replaces --prompts)")
    p.add_argument("--peak-tbps", type=float, default=None,
                   help="the GPU's peak memory bandwidth in TB/s (default: from the device name)")
    p.add_argument("--peak-tflops", type=float, default=None,
                   help="the GPU's peak dense bf16 TFLOP/s (default: from the device name)")
    p.add_argument("--generations", type=int, default=16, help="completions per prompt (default 16)")
    p.add_argument("--max-tokens", type=int, default=512, help="max completion tokens (default 512)")
    p.add_argument("--steps", type=int, default=3, help="measured steps per case (default 3)")
    p.add_argument("--warmup", type=int, default=1, help="warm-up steps per case, reported apart (default 1)")
    p.add_argument("--update-variants", default="",
                   help="comma-separated ways to compute the update, each measured on the same completions before "
                        "every step's update of every case: padded, sorted, packed, shared (e.g. padded,packed,shared)")
    p.add_argument("--out", default="runs/bench/rollouts.json", help="JSON output file")
    p.add_argument("--overwrite", action="store_true",
                   help="replace an existing --out file (checked, and the file locked, before the first case)")
    p.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    p.add_argument("--settings", default=None, help=argparse.SUPPRESS)
    p.add_argument("--case-batch", type=int, default=None, help=argparse.SUPPRESS)
    p.add_argument("--preset", dest="presets_list", action="append", default=[], help=argparse.SUPPRESS)
    p.set_defaults(func=lambda args: _run_worker(args) if args.worker else _run_all(args))
