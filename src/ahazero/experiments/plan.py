"""A sweep's plan: every variant's config validated before anything runs, and what each still needs.

Each variant is the config file with the common overrides, its grid values, its seed and
``name=<sweep>-<variant>``, resolved for this machine (presets, the CPU profile without a
GPU) and checked like ``ahazero check``. A variant's run directory decides its state:

- ``new``: nothing there yet: train (and evaluate);
- ``finished``: trained (``train_runtime`` logged, final model saved) and, with ``--eval``,
  evaluated: skipped;
- ``needs_eval``: trained, not evaluated yet: evaluate only;
- ``resume`` / ``restart`` (``--resume`` only): stopped part-way, with or without a complete
  checkpoint: continue from the checkpoint, or start it again (the old folder is kept
  beside it as ``<run>.stopped-<time>``).

A run directory trained with a different config is an error (choose another ``--name``), as
is a stopped one without ``--resume`` and one another process is writing (its lock is held:
an ``ahazero train`` of it, or another sweep's). With ``--eval`` the base model is evaluated once per
distinct model, task (its held-out split) and prompt: the variants that share them share it.
A ``--variant`` with its own ``config=`` file trains, and is evaluated, with that file.

Example:
    >>> plan = build_plan("configs/smoke.yaml", grid=["grpo.learning_rate=1e-4,1e-3"],   # doctest: +SKIP
    ...                   overrides=["grpo.max_steps=1"], cuda=False)
    >>> [(v.variant.run_name, v.state) for v in plan.variants]                           # doctest: +SKIP
    [('smoke-learning_rate_1e-4', 'new'), ('smoke-learning_rate_1e-3', 'new')]
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ahazero.config.schema import ConfigError, ExperimentConfig, dump_config
from ahazero.experiments.grid import (
    ExplicitVariant,
    GridAxis,
    Variant,
    check_name,
    check_size,
    expand,
    parse_grid,
    parse_variant,
)
from ahazero.observe.run_lock import RunLock
from ahazero.observe.rundir import RunDir, read_metrics

__all__ = ["BaseEval", "SweepPlan", "VariantPlan", "base_key", "build_plan", "config_differences", "is_finished",
           "sweep_folder"]

logger = logging.getLogger("ahazero.experiments.plan")

#: Task options that filter the train split only: variants differing in them share a base eval.
TRAIN_ONLY_TASK_OPTIONS = ("calibration", "pass_rate_band", "num_train")


@dataclass
class VariantPlan:
    """One variant: its config file, presets, resolved config, run directory, state and base-eval group."""

    variant: Variant
    cfg: ExperimentConfig
    overrides: list[str]  # everything given to `ahazero train` after the config file
    state: str
    base_key: str
    config: str = ""  # the config file it trains with (the sweep's, or its --variant's config=)
    presets: list[str] = field(default_factory=list)  # the sweep's --preset flags, then its own preset=

    @property
    def run(self) -> RunDir:
        return RunDir(self.cfg.run_dir)


@dataclass
class BaseEval:
    """One evaluation of the untrained model, shared by the variants with the same model, task and prompt."""

    key: str
    folder: Path
    overrides: list[str]  # a member variant's overrides (the eval command reads its config from them)
    describe: dict[str, Any]
    config: str = ""  # that variant's config file

    @property
    def done(self) -> bool:
        return (self.folder / "base.json").is_file()


@dataclass
class SweepPlan:
    """Everything a sweep runs, validated."""

    name: str
    config: str
    out: Path
    overrides: list[str]
    presets: list[str]
    axes: list[GridAxis]
    seeds: list[int] | None
    evaluate: bool
    resume: bool
    variants: list[VariantPlan]
    bases: dict[str, BaseEval] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    explicit: list[ExplicitVariant] = field(default_factory=list)  # the --variant flags

    def explicit_json(self) -> dict[str, Any]:
        """The ``--variant`` flags as ``{label: {config, presets, overrides}}``."""
        return {v.label: {"config": v.config or self.config, "presets": list(v.presets),
                          "overrides": list(v.overrides)} for v in self.explicit}

    def to_json(self) -> dict[str, Any]:
        """What ``plan.json`` records."""
        return {"name": self.name, "config": self.config, "out": str(self.out), "overrides": self.overrides,
                "presets": self.presets, "grid": {a.key: list(a.raw) for a in self.axes}, "seeds": self.seeds,
                "evaluate": self.evaluate, "notes": self.notes, "explicit_variants": self.explicit_json(),
                "variants": [{"label": v.variant.label, "run_dir": str(v.cfg.run_dir), "state": v.state,
                              "config": v.config, "presets": v.presets, "overrides": v.overrides,
                              "base_eval": v.base_key} for v in self.variants],
                "base_evals": {k: {"folder": str(b.folder), **b.describe} for k, b in self.bases.items()}}


def is_finished(run: RunDir) -> bool:
    """True when a run finished training: ``train_runtime`` logged and the final model saved.

    Example:
        >>> import tempfile
        >>> is_finished(RunDir(tempfile.mkdtemp()))
        False
    """
    from ahazero.models.loading import is_model_folder

    return is_model_folder(run.model) and any("train_runtime" in r for r in read_metrics(run.metrics))


def _flatten(data: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(data, dict):
        out: dict[str, Any] = {}
        for key, value in data.items():
            out.update(_flatten(value, f"{prefix}{key}."))
        return out
    if isinstance(data, list) and data and all(isinstance(x, dict) for x in data):
        out = {}
        for i, value in enumerate(data):
            out.update(_flatten(value, f"{prefix}{i}."))
        return out
    return {prefix.rstrip("."): data}


def config_differences(old_text: str, new_text: str) -> list[str]:
    """The dotted keys whose values differ between two dumped configs, as ``key: old -> new``.

    Example:
        >>> config_differences("a: 1\\nb: {c: 2}\\n", "a: 1\\nb: {c: 3}\\n")
        ['b.c: 2 -> 3']
    """
    old, new = _flatten(yaml.safe_load(old_text) or {}), _flatten(yaml.safe_load(new_text) or {})
    return [f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in sorted(set(old) | set(new)) if old.get(k) != new.get(k)]


def base_key(checked_task: Any, cfg: ExperimentConfig, max_new_tokens: int) -> tuple[str, dict[str, Any]]:
    """A short hash of what the base model's held-out eval depends on, and that description.

    Example:
        >>> from ahazero.config.schema import validate_dict
        >>> from ahazero.tasks import get_task
        >>> cfg = validate_dict({"name": "x", "model": {"name_or_path": "tiny"}, "task": {"name": "arithmetic"},
        ...                      "rewards": [{"name": "accuracy"}]})
        >>> a, _ = base_key(get_task("arithmetic"), cfg, 256)
        >>> b, _ = base_key(get_task("arithmetic", num_train=10, pass_rate_band=[0, 1]), cfg, 256)
        >>> a == b, a == base_key(get_task("arithmetic", seed=1), cfg, 256)[0]
        (True, False)
    """
    task = {k: v for k, v in checked_task.model_dump(mode="json").items() if k not in TRAIN_ONLY_TASK_OPTIONS}
    describe = {"model": cfg.model.model_dump(mode="json", exclude={"lora"}),
                "task": {"name": cfg.task.name, **task}, "prompt": cfg.prompt.model_dump(mode="json"),
                "max_new_tokens": max_new_tokens,  # the rewards' options decide what counts as correct / formatted
                "rewards": [{"name": r.name, **r.kwargs()} for r in cfg.rewards]}
    digest = hashlib.sha1(json.dumps(describe, sort_keys=True).encode("utf-8")).hexdigest()[:10]
    return digest, describe


@contextlib.contextmanager
def _quiet(name: str) -> Iterator[None]:
    log = logging.getLogger(name)
    level = log.level
    log.setLevel(logging.ERROR)
    try:
        yield
    finally:
        log.setLevel(level)


def sweep_folder(config: str, name: str | None = None, out: str | Path | None = None) -> tuple[str, Path]:
    """The sweep's name (``--name``, else the config file's name) and folder (``--out``, else ``sweeps/<name>``).

    Example:
        >>> sweep_folder("configs/aha.yaml")
        ('aha', PosixPath('sweeps/aha'))
    """
    name = check_name(name or Path(config).stem)
    return name, Path(out) if out is not None else Path("sweeps") / name


def _state(run: RunDir, *, evaluate: bool, resume: bool) -> str:
    if is_finished(run):
        return "needs_eval" if evaluate and not (run.root / "eval" / "final.json").is_file() else "finished"
    if run.has_progress():
        if not resume:
            return "stopped"
        return "resume" if run.checkpoint_steps() else "restart"
    return "new"


def _check_axis_keys(cfg: ExperimentConfig, axes: Sequence[GridAxis]) -> None:
    """:class:`ConfigError` naming the first ``--grid`` key the config does not have (each tried with its first value)."""
    from ahazero.config.schema import apply_overrides
    from ahazero.config.validate import check_grpo_key

    for axis in axes:
        try:
            apply_overrides(cfg, [f"{axis.key}={axis.raw[0]}"])
            head, _, rest = axis.key.partition(".")
            if head == "grpo" and rest:
                check_grpo_key(rest.split(".")[0])
        except ConfigError as err:
            raise ConfigError(f"--grid {axis.key}: {err}") from None


def build_plan(config: str, *, grid: Sequence[str] = (), overrides: Sequence[str] = (), presets: Sequence[str] = (),
               seeds: int = 1, name: str | None = None, out: str | Path | None = None, evaluate: bool = False,
               resume: bool = False, cuda: bool | None = None,
               variants: Sequence[Sequence[str]] = ()) -> SweepPlan:
    """Validate every variant of a sweep and decide what each needs; :class:`ConfigError` on any problem.

    Nothing is written: a plan with a mistake in its last variant fails before the first runs.
    ``variants`` are ``--variant`` flags (``[LABEL, KEY=V, ...]``), run beside the grid's.

    Example:
        >>> import tempfile, pathlib
        >>> config = pathlib.Path(tempfile.mkdtemp()) / "mini.yaml"
        >>> _ = config.write_text("name: x\\nmodel: {name_or_path: tiny}\\ntask: {name: arithmetic}\\n"
        ...                       "rewards: [{name: accuracy}]\\n")
        >>> build_plan(str(config), grid=["grpo.learning_rat=1e-4"], cuda=False)
        Traceback (most recent call last):
        ...
        ahazero.config.schema.ConfigError: --grid grpo.learning_rat: unknown key 'grpo.learning_rat' ...
    """
    from ahazero.config.validate import check_config
    from ahazero.models.loading import gpu_available
    from ahazero.training.assemble import load_for_device

    cuda = gpu_available() if cuda is None else cuda
    if seeds < 1:
        raise ConfigError(f"--seeds must be at least 1 (got {seeds})")
    axes = parse_grid(list(grid))
    explicit = [parse_variant(list(spec)) for spec in variants]
    common = list(overrides)
    if any(o.split("=", 1)[0].strip() == "name" for o in common):
        raise ConfigError("name=... is set by the sweep for each variant (<sweep>-<variant>); use --name for the "
                          "sweep's name")
    base_cfg = load_for_device(config, cuda=cuda, presets=list(presets), overrides=common)
    _check_axis_keys(base_cfg, axes)  # a mistyped key is named before the size of the grid is
    check_size(axes, explicit, seeds)
    name, out_dir = sweep_folder(config, name, out)
    notes: list[str] = []
    seed_list = None
    if seeds > 1:
        if any(a.key == "seed" for a in axes) or any("seed" in v.values for v in explicit):
            raise ConfigError("--seeds and --grid seed=... both set the seed; use one of them")
        seed_list = [base_cfg.seed + i for i in range(seeds)]
        if "seed" not in base_cfg.task.options():  # the same problems for every seed
            common.append(f"task.seed={base_cfg.seed}")
            notes.append(f"--seeds vary the training seed only: task.seed is kept at {base_cfg.seed} for every "
                         "variant, so all seeds train and evaluate on the same problems")
    variant_list = expand(axes, sweep=name, seeds=seed_list, variants=explicit)

    plans: list[VariantPlan] = []
    bases: dict[str, BaseEval] = {}
    problems: list[str] = []
    for variant in variant_list:
        check_name(variant.run_name, "variant name")
        all_overrides = [*common, *variant.overrides, f"name={variant.run_name}"]
        variant_config, variant_presets = variant.config or str(config), [*presets, *variant.presets]
        try:
            with _quiet("ahazero.training.assemble"):  # the CPU-profile warning was given once above
                cfg = load_for_device(variant_config, cuda=cuda, presets=variant_presets, overrides=all_overrides)
            checked = check_config(cfg, cuda=cuda)
        except ConfigError as err:
            raise ConfigError(f"variant {variant.run_name}: {err}") from None
        run = RunDir(cfg.run_dir)
        if run.config.is_file():
            changed = config_differences(run.config.read_text(encoding="utf-8"), dump_config(cfg))
            if changed:
                problems.append(f"{run.root} holds a run of another config ({'; '.join(changed[:3])}); "
                                "choose another --name")
                continue
        state = _state(run, evaluate=evaluate, resume=resume)
        holder = RunLock(run.root).holder() if state != "finished" else None
        if holder is not None:  # never restarted, resumed or trained beside the process writing it
            problems.append(f"{run.root} is being written by another process ({holder}); wait for it to end "
                            "(or stop it), or choose another --name")
            continue
        if state == "stopped":
            problems.append(f"{run.root} holds a run that did not finish; pass --resume to continue it")
            continue
        key, describe = base_key(checked.task, cfg, int(checked.grpo_args.max_completion_length))
        if evaluate and key not in bases:
            bases[key] = BaseEval(key, out_dir / f"base-{key}", all_overrides, describe, variant_config)
        plans.append(VariantPlan(variant, cfg, all_overrides, state, key, variant_config, variant_presets))
    if problems:
        raise ConfigError("; ".join(problems))
    if len({str(p.cfg.run_dir) for p in plans}) < len(plans):
        raise ConfigError("two variants share a run directory; make their grid values or --variant labels differ")
    for note in notes:
        logger.info(note)
    return SweepPlan(name=name, config=str(config), out=out_dir, overrides=common, presets=list(presets), axes=axes,
                     seeds=seed_list, evaluate=evaluate, resume=resume, variants=plans, bases=bases, notes=notes,
                     explicit=explicit)
