"""Checks of the command lines the unattended GPU scripts run, as ahazero would check them on a GPU.

The scripts' tests run them with a stand-in ``ahazero`` (``beyond_zero_fake.py``) that records each
command line; :func:`check_command` then parses and checks every recorded line with ahazero's own
parser and config checks, so a GPU session never meets a command that fails on its arguments.
"""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path
from types import ModuleType

from helpers import REPO


def script_workdir(tmp_path: Path, *scripts: str) -> Path:
    """A copy of ``scripts`` (and the step machinery they source) beside the repository's configs.

    A script run there writes its runs/ and logs/ into ``tmp_path``.
    """
    (tmp_path / "scripts").mkdir()
    for name in (*scripts, "gpu_steps.sh"):
        shutil.copy2(REPO / "scripts" / name, tmp_path / "scripts" / name)
    (tmp_path / "configs").symlink_to(REPO / "configs")
    return tmp_path


def load_script(name: str) -> ModuleType:
    """A Python script of scripts/ as a module (e.g. ``beyond_zero_table``)."""
    spec = importlib.util.spec_from_file_location(name, REPO / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def check_command(argv: list) -> tuple:
    """Parse and check one recorded command as ahazero would on a GPU; return (command, args, config)."""
    from ahazero.cli import build_parser
    from ahazero.config.validate import check_config
    from ahazero.evaluate import EvalSettings, check_settings, resolve_eval_model
    from ahazero.models.registry import NAMED_MODELS
    from ahazero.stages.coldstart import check_coldstart
    from ahazero.stages.plan import plan_stages
    from ahazero.stages.sample import SampleRequest, check_sample
    from ahazero.stages.sft import check_sft
    from ahazero.training.assemble import load_for_device

    args, extra = build_parser().parse_known_args(argv)  # as ahazero.cli.main: trailing overrides are allowed
    assert all("=" in e and not e.startswith("-") for e in extra), argv
    if args.command == "fetch-model":
        assert args.name in NAMED_MODELS, argv
        return args.command, args, None
    args.overrides.extend(extra)
    cfg = load_for_device(args.config, cuda=True, presets=getattr(args, "preset", None), overrides=args.overrides)
    assert not cfg.stages or args.command in ("coldstart", "stages", "check")  # the others refuse a stages config
    if args.command == "train":
        check_config(cfg, cuda=True)
    elif args.command == "sft":
        check_sft(cfg, cuda=True)
    elif args.command == "sample":
        check_sample(cfg, SampleRequest(model=args.model, split=args.split, n=args.n, prompts=args.prompts,
                                        max_per_prompt=args.max_per_prompt), cuda=True)
        assert Path(args.model).is_dir()
    elif args.command == "coldstart":
        check_coldstart(cfg, n=args.n)
    elif args.command == "check":  # as `ahazero check`: the config, then every stage's
        check_config(cfg, cuda=True)
        if cfg.stages:
            plan_stages(cfg, cuda=True, require_inputs=False)
    elif args.command == "stages":  # as `ahazero stages`: every stage's config
        plan_stages(cfg, cuda=True, require_inputs=False)
    elif args.command == "eval":
        check_settings(EvalSettings(split=args.split, limit=args.limit, batch_size=args.batch_size,
                                    max_new_tokens=args.max_new_tokens))
        check_config(cfg, cuda=True)
        _, tag = resolve_eval_model(cfg, args.model)
        assert (Path(args.out) / f"{tag}.json").is_file(), (argv, tag)  # the script's tag_of agrees with ahazero's
    else:
        raise AssertionError(f"unexpected command {argv}")
    return args.command, args, cfg
