"""The ``ahazero`` command line.

Example:
    $ ahazero train configs/smoke.yaml grpo.max_steps=2
    $ ahazero check configs/default.yaml grpo.learning_rate=1e-6
    $ ahazero rewards
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from typing import Any

__all__ = ["main"]


def _setup_logging(verbose: bool) -> None:
    from rich.logging import RichHandler

    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(message)s",
        datefmt="[%X]",
        handlers=[RichHandler(show_path=False, rich_tracebacks=False)],
    )
    for noisy in ("httpx", "urllib3", "filelock", "datasets", "huggingface_hub"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def _load(args: argparse.Namespace, *, cuda: bool, say_cost: bool = False):
    """The config as it will run here: file, presets, the CPU profile without a GPU, then overrides."""
    from ahazero.training.assemble import load_for_device

    return load_for_device(args.config, cuda=cuda, presets=getattr(args, "preset", None), overrides=args.overrides,
                           say_cost=say_cost)


def _cmd_train(args: argparse.Namespace) -> int:
    import subprocess

    from ahazero.models.loading import gpu_available
    from ahazero.training.assemble import train
    from ahazero.training.launch import in_distributed_launch, launch_command, plan_launch

    cuda = gpu_available()
    cfg = _load(args, cuda=cuda, say_cost=True)  # validate the schema before launching anything
    if cfg.stages:  # a pipeline of stages (grpo, sample, sft, ...): the stages wing runs it
        from ahazero.stages.cli import train_stages

        return train_stages(cfg, args)
    if not in_distributed_launch():
        plan = plan_launch(gpus=args.gpus, num_machines=args.num_machines, machine_rank=args.machine_rank,
                           main_process_ip=args.main_process_ip, main_process_port=args.main_process_port,
                           strategy=args.strategy, accelerate_config=args.accelerate_config,
                           visible_gpus=_visible_gpus() if cuda else None)
        if plan is not None:
            for warning in plan.warnings:
                logging.getLogger("ahazero.cli").warning(warning)
            presets = [flag for name in args.preset for flag in ("--preset", name)]  # applied where they are here
            cmd = launch_command([args.config, *args.overrides, *presets], plan, resume=args.resume)
            print("launching: " + " ".join(cmd), file=sys.stderr)
            return subprocess.run(cmd, check=False).returncode
    run_dir = train(cfg, resume=args.resume)
    print(f"run directory: {run_dir}")
    return 0


def _visible_gpus() -> int:
    import torch

    return torch.cuda.device_count()


def _cmd_check(args: argparse.Namespace) -> int:
    from ahazero.config.schema import dump_config
    from ahazero.config.validate import check_config
    from ahazero.models.loading import gpu_available

    cuda = gpu_available() if args.device == "auto" else args.device == "cuda"
    cfg = _load(args, cuda=cuda)
    check_config(cfg, cuda=cuda)
    if cfg.stages:  # every stage's config too (models and samples files need not exist yet)
        from ahazero.stages.plan import plan_stages

        plan_stages(cfg, cuda=cuda, require_inputs=False)
    print(dump_config(cfg), end="")
    print(f"# config OK ({'GPU' if cuda else 'CPU profile'})", file=sys.stderr)
    _print_memory(args)
    return 0


def _print_memory(args: argparse.Namespace) -> None:
    """The memory the config (on a GPU) needs on a card of ``--card-gib``; with ``--all-presets``, with each preset alone."""
    from ahazero.config.presets import PRESETS, preset_override_strings
    from ahazero.config.schema import ConfigError, apply_overrides, load_config
    from ahazero.training.assemble import resolve_for_device
    from ahazero.training.auto_sizes import estimate_for_card, longest_prompt

    def on_gpu(presets: list[str]) -> Any:  # the config as it runs on a GPU, without the preset log lines
        return resolve_for_device(apply_overrides(load_config(args.config), preset_override_strings(presets)),
                                  cuda=True, overrides=args.overrides)

    try:  # check loads no model: only a tokenizer already on disk measures the prompts
        prompt = longest_prompt(on_gpu(args.preset), local_only=True)
    except Exception as err:  # the model's tokenizer is not on disk yet, or the task data are not readable
        print(f"# memory: not estimated (the prompts could not be measured: {_one_line(err)}; `ahazero fetch-model` "
              "or a first run puts the model on disk)", file=sys.stderr)
        return
    rows = [("this config", args.preset)] + ([(name, [name]) for name in PRESETS] if args.all_presets else [])
    for label, presets in rows:
        try:
            preset_cfg = on_gpu(presets)
        except ConfigError as err:  # a preset that needs a package this machine lacks (liger)
            print(f"# memory, {label}: not estimated ({_one_line(err)})", file=sys.stderr)
            continue
        plan = estimate_for_card(preset_cfg, card_gib=args.card_gib, prompt_tokens=prompt)
        text = plan if isinstance(plan, str) else plan.describe()
        print(f"# memory, {label}: {text}", file=sys.stderr)


def _cmd_rewards(args: argparse.Namespace) -> int:
    import rewards

    for name in rewards.available_rewards():
        options = ", ".join(f"{k}={v!r}" for k, v in rewards.reward_kwargs(name).items())
        print(f"{name:22s} {options}")
    print("\nor any 'module:function' path (e.g. my_rewards:length_penalty)")
    return 0


def _cmd_tasks(args: argparse.Namespace) -> int:
    from ahazero.tasks import available_tasks, task_options

    for name in available_tasks():
        options = ", ".join(f"{k}={v!r}" for k, v in task_options(name).items())
        print(f"{name:16s} {options}")
    return 0


def _cmd_models(args: argparse.Namespace) -> int:
    from ahazero.models.registry import NAMED_MODELS

    for name, entry in NAMED_MODELS.items():
        print(f"{name:36s} {entry.description}")
    print("\nor a hub id, a local model folder, or a local .gguf file")
    return 0


def _cmd_presets(args: argparse.Namespace) -> int:
    from ahazero.config.presets import PRESETS, describe_presets

    for name, description in describe_presets():
        print(f"{name:24s} {description}")
        for key, value in PRESETS[name][1].items():
            print(f"{'':24s}   {key}={value}")
    return 0


def _cmd_eval(args: argparse.Namespace) -> int:
    from ahazero.config.schema import load_config
    from ahazero.eval_report import decoding_origin
    from ahazero.evaluate import EvalSettings, evaluate, render_markdown
    from ahazero.models.loading import gpu_available
    from ahazero.observe.terminal import text_console

    cuda = gpu_available()
    cfg = _load(args, cuda=cuda)  # on a CPU: the CPU profile's run (e.g. runs/default-cpu)
    origin = decoding_origin(load_config(args.config), cfg, cuda=cuda, flag=args.max_new_tokens)
    settings = EvalSettings(
        split=args.split,
        limit=args.limit,
        batch_size=args.batch_size,
        max_new_tokens=(int(cfg.grpo.get("max_completion_length", 512)) if args.max_new_tokens is None
                        else args.max_new_tokens),
        samples=args.samples,
        temperature=args.temperature if args.temperature is not None else float(cfg.grpo.get("temperature", 1.0)),
        seed=cfg.seed,
    )
    results = evaluate(cfg, model=args.model, settings=settings, out_dir=args.out, origin=origin)
    out = text_console()  # a terminal wraps the summary at words (no number cut); a pipe gets whole lines
    out.print(render_markdown(results))
    out.print("wrote " + ", ".join(results["files"]))
    return 0


def _cmd_fetch_model(args: argparse.Namespace) -> int:
    from ahazero.models.registry import NAMED_MODELS, prepare_named_model

    if args.name not in NAMED_MODELS:
        print(f"unknown model '{args.name}'; valid choices: {', '.join(NAMED_MODELS)}", file=sys.stderr)
        return 2
    print(prepare_named_model(args.name))
    return 0


def _add_preset_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--preset", action="append", default=[], metavar="NAME",
                   help="apply a memory preset before the overrides (repeatable; see `ahazero presets`)")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for tests and docs).

    Example:
        >>> build_parser().parse_args(["train", "c.yaml", "seed=1"]).overrides
        ['seed=1']
    """
    parser = argparse.ArgumentParser(prog="ahazero", description="Toy-scale R1-Zero: GRPO with rule-based rewards.")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("train", help="train a config with GRPO into runs/<name>/")
    p.add_argument("config", help="YAML config, e.g. configs/smoke.yaml")
    p.add_argument("overrides", nargs="*", help="dotted overrides, e.g. grpo.learning_rate=1e-6")
    p.add_argument("--resume", action="store_true",
                   help="continue runs/<name> from its last checkpoint (a stages config: skip finished stages)")
    p.add_argument("--gpus", type=int, default=None, metavar="G",
                   help="train on G GPUs of this machine (one process each) through `accelerate launch`")
    p.add_argument("--strategy", choices=["ddp", "fsdp", "zero2", "zero3"], default=None,
                   help="multi-GPU strategy: configs/accelerate/<strategy>.yaml (default ddp)")
    p.add_argument("--accelerate-config", default=None, metavar="FILE",
                   help="an accelerate config file instead of --strategy's (it may also set the machine options)")
    p.add_argument("--num-machines", type=int, default=None, metavar="N",
                   help="machines in the job (run the same command on each, with its own --machine-rank)")
    p.add_argument("--machine-rank", type=int, default=None, metavar="R", help="this machine's rank, 0 to N-1")
    p.add_argument("--main-process-ip", default=None, metavar="IP",
                   help="address of the machine with rank 0 (needed when N > 1)")
    p.add_argument("--main-process-port", type=int, default=None, metavar="P",
                   help="port on the rank-0 machine the others connect to (accelerate's default: 29500)")
    _add_preset_option(p)
    p.set_defaults(func=_cmd_train)

    p = sub.add_parser("check", help="validate a config (no model loads) and print it resolved")
    p.add_argument("config")
    p.add_argument("overrides", nargs="*")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto",
                   help="check as if on this device (the CPU profile applies to 'cpu')")
    p.add_argument("--card-gib", type=float, default=80.0,
                   help="estimate the GPU memory the config needs on a card of this size (default 80)")
    p.add_argument("--all-presets", action="store_true",
                   help="also estimate the memory of the config with each preset (alone; one line each)")
    _add_preset_option(p)
    p.set_defaults(func=_cmd_check)

    sub.add_parser("rewards", help="list registered rewards and their options").set_defaults(func=_cmd_rewards)
    sub.add_parser("tasks", help="list registered tasks and their options").set_defaults(func=_cmd_tasks)
    sub.add_parser("models", help="list named models").set_defaults(func=_cmd_models)
    sub.add_parser("presets", help="list memory presets (--preset NAME)").set_defaults(func=_cmd_presets)

    p = sub.add_parser("eval", help="pass@1 / pass@k / maj@k and behaviours on a task's held-out split")
    p.add_argument("config", help="the run's config (task, prompt, rewards and run name come from it)")
    p.add_argument("overrides", nargs="*")
    p.add_argument("--model", default=None,
                   help="base | final | latest | step-N | a model path, hub id or name (default: final if present)")
    p.add_argument("--split", default="test", choices=["test", "train"])
    p.add_argument("--limit", type=int, default=None, help="evaluate only the first N problems")
    p.add_argument("--samples", type=int, default=0,
                   help="k samples per problem for pass@k and maj@k (0: greedy only; else at least 2)")
    p.add_argument("--temperature", type=float, default=None, help="sampling temperature (default: grpo's)")
    p.add_argument("--batch-size", type=int, default=64, help="sequences per generate call")
    p.add_argument("--max-new-tokens", type=int, default=None,
                   help="default: grpo.max_completion_length (else 512)")
    p.add_argument("--out", default=None, help="output folder (default: runs/<name>/eval)")
    p.set_defaults(func=_cmd_eval)

    p = sub.add_parser("fetch-model", help="fetch and convert a named model into the cache; print its folder")
    p.add_argument("name", help="a name from `ahazero models`")
    p.set_defaults(func=_cmd_fetch_model)

    from ahazero import bench
    from ahazero.experiments import calibrate, sweep
    from ahazero.observe import behaviours_cli, report, traces_cli
    from ahazero.stages import cli as stages_cli

    bench.add_parser(sub)
    traces_cli.add_parser(sub)
    behaviours_cli.add_parser(sub)
    report.add_parser(sub)
    sweep.add_parser(sub)
    calibrate.add_parser(sub)
    stages_cli.add_parsers(sub)
    return parser


def _one_line(err: BaseException) -> str:
    """An error message on one line (a reward's or TRL's message may span several).

    Example:
        >>> _one_line(ValueError("bad value\\n  in line 2"))
        'bad value in line 2'
    """
    return " ".join(str(err).split())


def _end_progress_bars() -> None:
    """Close the progress bars an error cut short, so that the error starts a line of its own."""
    try:
        from tqdm import tqdm

        for bar in list(getattr(tqdm, "_instances", ())):
            bar.close()
    except Exception:  # noqa: BLE001 - only cosmetics
        pass


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``ahazero`` console script; returns the exit code.

    Example:
        >>> main(["check", "missing.yaml"])  # prints "config error: config file not found: ..."
        2
    """
    from ahazero.cache.atomic_files import FileWriteError
    from ahazero.cache.fetch import FetchError
    from ahazero.config.exit_guard import UnfinishedRunError
    from ahazero.config.output_paths import OutputPathError
    from ahazero.config.reward_output import RewardError
    from ahazero.config.schema import ConfigError
    from ahazero.evaluate import EvalError
    from ahazero.models.model_argument import ModelArgumentError
    from ahazero.observe.rundir import RunDirError
    from ahazero.tasks.base import TaskDataError

    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    # key=value overrides may also come after an option (`train c.yaml --preset lora seed=1`)
    if extra and isinstance(getattr(args, "overrides", None), list) and all(
        "=" in e and not e.startswith("-") for e in extra
    ):
        args.overrides.extend(extra)
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    _setup_logging(args.verbose)
    try:
        return args.func(args)
    except OutputPathError as err:  # an output path that cannot (or may not) be written
        print(f"path error: {_one_line(err)}", file=sys.stderr)
        return 2
    except ModelArgumentError as err:  # a model that cannot load, found before it loads or when it does
        print(f"model error: {_one_line(err)}", file=sys.stderr)
        return 2
    except FileWriteError as err:  # a result file that could not be written (full disk, read-only)
        print(f"write error: {_one_line(err)}", file=sys.stderr)
        return 2
    except ConfigError as err:
        print(f"config error: {_one_line(err)}", file=sys.stderr)
        return 2
    except EvalError as err:
        print(f"eval error: {_one_line(err)}", file=sys.stderr)
        return 2
    except RewardError as err:
        _end_progress_bars()
        print(f"reward error: {_one_line(err)}", file=sys.stderr)
        return 2
    except UnfinishedRunError as err:
        _end_progress_bars()
        print(f"run error: {_one_line(err)}", file=sys.stderr)
        return 1
    except FetchError as err:
        print(f"fetch error: {err}", file=sys.stderr)
        return 1
    except RunDirError as err:
        print(f"run directory error: {err}", file=sys.stderr)
        return 2
    except TaskDataError as err:  # unusable data file, dataset not on the hub, damaged bundled copy
        print(f"data error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
