"""The commands of the stages wing: ``sample``, ``sft``, ``coldstart`` and ``stages``.

Example:
    $ ahazero sample configs/default.yaml --model final --n 8 --prompts 500 --max-per-prompt 2
    $ ahazero sample configs/default.yaml --from-traces runs/default --steps 41:60
    $ ahazero coldstart configs/coldstart.yaml --n 300 --out runs/coldstart-set.jsonl
    $ ahazero coldstart configs/aha-reflect.yaml --style plain --out runs/plain-set.jsonl
    $ ahazero sft my-sft.yaml sft.data=runs/coldstart-set.jsonl
    $ ahazero stages configs/coldstart.yaml --resume

    >>> import argparse
    >>> parser = argparse.ArgumentParser(); sub = parser.add_subparsers()
    >>> add_parsers(sub)
    >>> args = parser.parse_args(["sample", "c.yaml", "seed=1", "--n", "4"])
    >>> args.n, args.overrides, args.func.__name__
    (4, ['seed=1'], 'cmd_sample')
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from rich.console import Console

from ahazero.config.cli_numbers import check_count
from ahazero.config.schema import ConfigError, ExperimentConfig
from ahazero.config.stage_schema import COLDSTART_STYLES, SLIP_KINDS

__all__ = ["add_parsers", "cmd_coldstart", "cmd_sample", "cmd_sft", "cmd_stages", "train_stages"]


#: What the commands say: plain text, no markup or wrapping (paths and JSON stay intact).
_out = Console(markup=False, highlight=False, soft_wrap=True)
_err = Console(stderr=True, markup=False, highlight=False, soft_wrap=True)


def _load(args: argparse.Namespace, *, cuda: bool) -> ExperimentConfig:
    from ahazero.training.assemble import load_for_device

    return load_for_device(args.config, cuda=cuda, presets=getattr(args, "preset", None), overrides=args.overrides)


def _samples_error(err: Exception) -> int:
    _err.print(f"samples error: {err}")
    return 2


def _no_stages(cfg: ExperimentConfig, command: str) -> None:
    if cfg.stages:
        raise ConfigError(f"this config has stages; `ahazero {command}` runs one step: use `ahazero stages CONFIG` "
                          "(or drop the 'stages' section)")


def cmd_sample(args: argparse.Namespace) -> int:
    """``ahazero sample``: rejection sampling from a model, or from a run's traces."""
    from ahazero.models.loading import gpu_available
    from ahazero.observe.trace_select import parse_steps, resolve_run
    from ahazero.stages.sample import SampleRequest, sample, sample_from_traces
    from ahazero.stages.samples import SamplesError, render_summary

    cuda = gpu_available()
    cfg = _load(args, cuda=cuda)
    _no_stages(cfg, "sample")
    try:
        if args.from_traces:
            model_only = [f"--{k.replace('_', '-')}" for k in ("model", "n", "prompts", "batch_size")
                          if getattr(args, k) is not None]
            if model_only or args.split != "train":
                raise ConfigError(f"{', '.join(model_only or ['--split'])}: not with --from-traces (the traces hold "
                                  "the train split's completions)")
            request = SampleRequest(max_per_prompt=args.max_per_prompt, min_language=args.min_language, out=args.out,
                                    overwrite=args.overwrite)
            try:
                steps = parse_steps(args.steps) if args.steps else (None, None)
            except ValueError as err:
                raise ConfigError(f"--steps: {err}") from None
            run = resolve_run(args.from_traces) or Path(args.from_traces)  # a path, or a name under runs/
            summary = sample_from_traces(cfg, run, request, steps=steps)
        else:
            if args.steps:
                raise ConfigError("--steps: only with --from-traces")
            request = SampleRequest(model=args.model, split=args.split, n=8 if args.n is None else args.n,
                                    max_per_prompt=args.max_per_prompt, prompts=args.prompts,
                                    min_language=args.min_language,
                                    batch_size=256 if args.batch_size is None else args.batch_size, out=args.out,
                                    overwrite=args.overwrite)
            summary = sample(cfg, request, cuda=cuda)
    except SamplesError as err:
        return _samples_error(err)
    _out.print(render_summary(summary))
    _out.print("wrote " + ", ".join(summary["files"]))
    return 0


def cmd_coldstart(args: argparse.Namespace) -> int:
    """``ahazero coldstart``: write the cold-start SFT set of the config's task.

    The config's first coldstart stage, when it has one, gives the defaults; the options win.
    """
    from ahazero.stages.coldstart import coldstart, coldstart_request, describe_set
    from ahazero.stages.samples import render_summary

    cfg = _load(args, cuda=False)
    spec = next((s for s in cfg.stages if s.kind == "coldstart"), None)
    kinds = [k.strip() for k in args.slip_kinds.split(",")] if args.slip_kinds is not None else None
    request = coldstart_request(spec, n=args.n, style=args.style, slip_fraction=args.slip_fraction,
                                slip_kinds=kinds, train_on_slips=args.train_on_slips, seed=args.seed)
    summary = coldstart(cfg, request, out=args.out, overwrite=args.overwrite)
    _out.print(render_summary(summary))
    _out.print(describe_set(summary))
    _out.print("wrote " + ", ".join(summary["files"]))
    return 0


def cmd_sft(args: argparse.Namespace) -> int:
    """``ahazero sft``: supervised fine-tuning on ``sft.data`` into ``runs/<name>/``."""
    from ahazero.models.loading import gpu_available
    from ahazero.stages.samples import SamplesError
    from ahazero.stages.sft import train_sft

    cuda = gpu_available()
    cfg = _load(args, cuda=cuda)
    _no_stages(cfg, "sft")
    try:
        run_dir = train_sft(cfg, resume=args.resume, cuda=cuda)
    except SamplesError as err:
        return _samples_error(err)
    _out.print(f"run directory: {run_dir}")
    return 0


def train_stages(cfg: ExperimentConfig, args: argparse.Namespace) -> int:
    """What ``ahazero train`` does with a config that has ``stages``: run them (one process)."""
    from ahazero.stages.runner import run_stages
    from ahazero.stages.samples import SamplesError

    gpus = check_count("--gpus", getattr(args, "gpus", None))
    machines = check_count("--num-machines", getattr(args, "num_machines", None))
    if (gpus or 1) > 1 or (machines or 1) > 1:
        raise ConfigError("--gpus / --num-machines: a stages config runs in one process; drop them")
    try:
        root = run_stages(cfg, resume=args.resume, stop_after=getattr(args, "stop_after", None))
    except SamplesError as err:
        return _samples_error(err)
    _out.print(f"stages run: {root} (report: {Path(root) / 'report.md'})")
    return 0


def cmd_stages(args: argparse.Namespace) -> int:
    """``ahazero stages``: run (or, with ``--report``, only report) a config's stages."""
    from ahazero.models.loading import gpu_available

    cuda = gpu_available()
    cfg = _load(args, cuda=cuda)
    if args.report:
        from ahazero.observe.rundir import RunDirError
        from ahazero.stages.plan import plan_stages
        from ahazero.stages.report import write_stage_report
        from ahazero.stages.runner import stages_lock

        if not cfg.run_dir.is_dir():
            raise RunDirError(f"{cfg.run_dir} holds no stages run yet; run `ahazero stages {args.config}` first")
        plan = plan_stages(cfg, cuda=cuda, require_inputs=False)
        with stages_lock(cfg):  # a running pipeline writes the report itself after each stage
            md, html = write_stage_report(cfg, plan)
        _out.print(md.read_text(encoding="utf-8"))
        _out.print("wrote " + ", ".join(str(p) for p in (md, html) if p))
        return 0
    return train_stages(cfg, args)


def _common(p: argparse.ArgumentParser, example: str = "configs/default.yaml") -> None:
    p.add_argument("config", help=f"YAML config, e.g. {example}")
    p.add_argument("overrides", nargs="*", help="dotted overrides, e.g. grpo.temperature=0.8")


def _overwrite_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--overwrite", action="store_true",
                   help="replace an existing samples file (and the .rejected.jsonl / .summary.json beside it)")


def add_parsers(subparsers: Any) -> None:
    """Register ``sample``, ``coldstart``, ``sft`` and ``stages`` on the ``ahazero`` command line."""
    p = subparsers.add_parser("sample", help="rejection sampling: K completions per prompt, keep the correct ones")
    _common(p)
    p.add_argument("--model", default=None,
                   help="base | final | latest | step-N | a model path or name (default: final if present, else base)")
    p.add_argument("--split", default="train", help="task split to sample (train | test; default train)")
    p.add_argument("--n", type=int, default=None, help="completions per prompt (default 8)")
    p.add_argument("--max-per-prompt", type=int, default=1, help="kept completions per prompt at most (default 1)")
    p.add_argument("--prompts", type=int, default=None, help="only the first N prompts of the split (default all)")
    p.add_argument("--min-language", type=float, default=1.0,
                   help="least language consistency of a kept completion (default 1.0)")
    p.add_argument("--batch-size", type=int, default=None, help="sequences per generation batch (default 256)")
    p.add_argument("--out", default=None,
                   help="kept samples file (default runs/<name>/samples/<model>-<split>.jsonl); the rejected "
                        "ones and a summary go beside it")
    p.add_argument("--from-traces", default=None, metavar="RUN",
                   help="select from the completions RUN traced instead of sampling (no model)")
    p.add_argument("--steps", default=None, help="with --from-traces: the steps to use, A:B (default all)")
    _overwrite_option(p)
    p.set_defaults(func=cmd_sample)

    p = subparsers.add_parser("coldstart", help="write a long chain-of-thought SFT set from the task's structure")
    _common(p, "configs/coldstart.yaml")
    p.add_argument("--n", type=int, default=None,
                   help="examples (default: the config's coldstart stage's n, else 300)")
    p.add_argument("--style", default=None, choices=COLDSTART_STYLES,
                   help="checked (worked steps, a line that undoes each step, the answer), reflective (the answer, "
                        "then a check; some traces with a slip the check catches and corrects) or plain (the "
                        "reflective steps without checks: the matched control); default: the config's coldstart "
                        "stage's, else checked")
    p.add_argument("--slip-fraction", type=float, default=None,
                   help="reflective: share of the traces with a slip (default 0.3)")
    p.add_argument("--slip-kinds", default=None, metavar="KINDS",
                   help=f"reflective: comma-separated slips to make, of {','.join(SLIP_KINDS)} (default all)")
    p.add_argument("--train-on-slips", action=argparse.BooleanOptionalAction, default=None,
                   help="reflective: whether SFT trains on the slipped step's lines (default yes); with "
                        "--no-train-on-slips each record marks them as untrained_spans, left out of SFT's loss")
    p.add_argument("--seed", type=int, default=None,
                   help="seed of the choice of problems and slips (default: the config's seed)")
    p.add_argument("--out", default=None, help="output file (default runs/<name>/coldstart.jsonl)")
    _overwrite_option(p)
    p.set_defaults(func=cmd_coldstart)

    p = subparsers.add_parser("sft", help="supervised fine-tuning (TRL's SFTTrainer) on sft.data into runs/<name>/")
    _common(p)
    p.add_argument("--resume", action="store_true", help="continue runs/<name> from its last checkpoint")
    p.set_defaults(func=cmd_sft)

    p = subparsers.add_parser("stages", help="run a config's stages (grpo, sample, sft, coldstart) in order")
    _common(p, "configs/coldstart.yaml")
    p.add_argument("--resume", action="store_true", help="skip finished stages; continue the interrupted one")
    p.add_argument("--stop-after", default=None, metavar="STAGE", help="stop after this stage")
    p.add_argument("--report", action="store_true", help="only (re)write the report of the stages run so far")
    p.set_defaults(func=cmd_stages)
