"""Cross-checks of a config against the registries and TRL, run before any model loads.

:func:`check_config` resolves the task (and reads the head of a local data file), every
reward (:mod:`ahazero.config.reward_checks`), checks the ``grpo`` numbers
(:mod:`ahazero.config.grpo_ranges`), builds the ``GRPOConfig`` (so TRL's own batch-size
checks run now, not after a minute of model loading) and checks the run directory
(:mod:`ahazero.config.run_paths`). Every failure is a
:class:`~ahazero.config.schema.ConfigError` naming the key and the valid choices.

Example:
    >>> from ahazero.config.schema import validate_dict
    >>> cfg = validate_dict({"name": "x", "model": {"name_or_path": "tiny"},
    ...     "task": {"name": "arithmetic"}, "rewards": [{"name": "acuracy"}]})
    >>> check_config(cfg)
    Traceback (most recent call last):
    ...
    ahazero.config.schema.ConfigError: rewards.0.name: unknown reward 'acuracy'; valid choices: ...
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import logging
import os
import types
import typing
from dataclasses import dataclass
from typing import Any

from ahazero.config.grpo_ranges import check_grpo_ranges
from ahazero.config.run_paths import check_run_dir
from ahazero.config.schema import ConfigError, ExperimentConfig
from ahazero.config.throughput import check_throughput_settings

__all__ = ["CheckedConfig", "auto_placeholders", "backend_fallback", "build_grpo_config", "check_config",
           "check_grpo_key", "resolve_task", "resolved_backend"]

logger = logging.getLogger("ahazero.config.validate")

#: GRPOConfig fields that ahazero sets from its own sections.
OWNED_GRPO_KEYS = {
    "output_dir": "set by 'name' and 'output_root' (the run directory)",
    "report_to": "use 'logging.report_to'",
    "seed": "use the top-level 'seed'",
    "reward_weights": "give each reward a 'weight' under 'rewards'",
}

#: Columns the pipeline adds to every task's rows.
PIPELINE_COLUMNS = ("prompt", "prefill")


@dataclass
class CheckedConfig:
    """What validation resolved: the task, the reward callables and the GRPO arguments."""

    config: ExperimentConfig
    task: Any
    reward_funcs: list[Any]
    reward_weights: list[float]
    grpo_args: Any
    backend: str = "hf"


def _task_options(cfg: ExperimentConfig) -> dict[str, Any]:
    options = cfg.task.options()
    options.setdefault("seed", cfg.seed)
    return options


def resolve_task(cfg: ExperimentConfig) -> Any:
    """The config's task, built with its options (and the run's seed); its local data files checked.

    Example:
        >>> from ahazero.config.schema import validate_dict
        >>> resolve_task(validate_dict({"name": "x", "model": {"name_or_path": "tiny"},
        ...     "task": {"name": "arithmetic"}, "rewards": [{"name": "accuracy"}]})).name
        'arithmetic'
    """
    from ahazero.tasks import get_task

    try:
        task = get_task(cfg.task.name, **_task_options(cfg))
    except (ValueError, TypeError) as err:
        key = "task.name" if cfg.task.name not in _task_names() else "task"
        raise ConfigError(f"{key}: {err}") from None
    check_data = getattr(task, "check_data", None)  # tasks reading local files check them up front
    if callable(check_data):
        try:
            check_data()
        except (ValueError, OSError) as err:
            raise ConfigError(f"task.{err}") from None
    return task


def _task_names() -> list[str]:
    from ahazero.tasks import available_tasks

    return available_tasks()


def _resolve_rewards(cfg: ExperimentConfig, task: Any) -> tuple[list[Any], list[float]]:
    from ahazero.config.reward_checks import resolve_rewards

    try:
        return resolve_rewards(cfg, task, sorted(set(task.columns) | set(PIPELINE_COLUMNS)))
    except ValueError as err:
        raise ConfigError(str(err)) from None


def _check_groups(cfg: ExperimentConfig, funcs: list[Any]) -> None:
    """``groups.reward`` must name one of the config's rewards (as its metrics do) or be 'total'."""
    names = [str(getattr(f, "__name__", type(f).__name__)) for f in funcs]
    if cfg.groups.zero_variance == "drop" and cfg.groups.reward not in (*names, "total"):
        raise ConfigError(
            f"groups.reward: {cfg.groups.reward!r} is not a reward of this config; valid choices: "
            f"{', '.join(names)} or 'total' (the weighted sum)"
        )


@functools.cache
def _grpo_fields() -> dict[str, dataclasses.Field]:
    from trl import GRPOConfig

    return {f.name: f for f in dataclasses.fields(GRPOConfig) if f.init}


def _check_type(key: str, value: Any, annotation: Any) -> None:
    """Reject obvious type mistakes for the simple scalar fields (TRL does not check them)."""
    if isinstance(annotation, str):
        annotation = {"int": int, "float": float, "bool": bool, "str": str}.get(annotation, annotation)
    origin = typing.get_origin(annotation)
    allowed = typing.get_args(annotation) if origin in (typing.Union, types.UnionType) else (annotation,)
    if value is None:
        if type(None) in allowed:
            return
    simple = [a for a in allowed if a in (int, float, bool, str)]
    if not simple or len(simple) != len([a for a in allowed if a is not type(None)]):
        return  # enums, lists, dicts, literals: TRL validates those itself
    ok = any(
        (a is bool and isinstance(value, bool))
        or (a is int and isinstance(value, int) and not isinstance(value, bool))
        or (a is float and isinstance(value, int | float) and not isinstance(value, bool))
        or (a is str and isinstance(value, str))
        for a in simple
    )
    if not ok:
        names = " or ".join(a.__name__ for a in simple)
        raise ConfigError(f"grpo.{key}: expected {names}, got {value!r} ({type(value).__name__})")


def check_grpo_key(key: str) -> None:
    """Raise :class:`ConfigError` unless ``grpo.<key>`` is a field of ``trl.GRPOConfig`` that ahazero leaves to it.

    Example:
        >>> check_grpo_key("learning_rate")
        >>> check_grpo_key("learning_rat")
        Traceback (most recent call last):
        ...
        ahazero.config.schema.ConfigError: unknown key 'grpo.learning_rat' (did you mean 'learning_rate'...
    """
    if key in OWNED_GRPO_KEYS:
        raise ConfigError(f"grpo.{key} is set by ahazero: {OWNED_GRPO_KEYS[key]}")
    fields = _grpo_fields()
    if key not in fields:
        close = difflib.get_close_matches(key, list(fields), n=3)
        hint = f" (did you mean {', '.join(repr(c) for c in close)}?)" if close else ""
        raise ConfigError(
            f"unknown key 'grpo.{key}'{hint}; the grpo section takes any field of trl.GRPOConfig: "
            f"{', '.join(sorted(fields))}"
        )


def build_grpo_config(cfg: ExperimentConfig, *, cuda: bool | None = None) -> Any:
    """Build ``trl.GRPOConfig`` from the ``grpo`` section plus ahazero's own settings.

    ahazero's defaults (logging every step, bf16 only on a GPU that has it, ...) apply unless
    the ``grpo`` section sets the key. Unknown keys are errors that list close matches.

    Example:
        >>> from ahazero.config.schema import validate_dict
        >>> cfg = validate_dict({"name": "x", "model": {"name_or_path": "tiny"},
        ...     "task": {"name": "arithmetic"}, "rewards": [{"name": "accuracy"}],
        ...     "grpo": {"num_generations": 4, "per_device_train_batch_size": 8}})
        >>> build_grpo_config(cfg, cuda=False).num_generations
        4
    """
    import torch
    from trl import GRPOConfig

    if cuda is None:
        cuda = torch.cuda.is_available()
    fields = _grpo_fields()
    grpo = auto_placeholders(cfg.grpo)
    for key, value in grpo.items():
        check_grpo_key(key)
        _check_type(key, value, fields[key].type)
    try:
        check_grpo_ranges(grpo)
    except ValueError as err:
        raise ConfigError(str(err)) from None
    backend_settings = _backend_settings(cfg, cuda=_on_gpu(cfg, cuda=bool(cuda)))

    bf16 = bool(cuda and torch.cuda.is_bf16_supported())
    settings: dict[str, Any] = {
        "logging_steps": 1,
        "save_strategy": "steps",
        "save_steps": 50,
        "bf16": bf16,
        "use_cpu": not cuda,
        "log_completions": False,
        "report_to": [r for r in cfg.logging.report_to if r != "none"] or "none",
        "seed": cfg.seed,
        "output_dir": str(cfg.run_dir / "checkpoints"),
        "reward_weights": [float(r.weight) for r in cfg.rewards],
    }
    settings.update(backend_settings)
    settings.update(grpo)
    if settings.get("max_steps", -1) == -1 and "num_train_epochs" not in cfg.grpo:
        settings.setdefault("num_train_epochs", 1)
    try:
        return GRPOConfig(**settings)
    except (ValueError, TypeError, ArithmeticError) as err:
        raise ConfigError(f"grpo: {' '.join(str(err).split())}") from None


def auto_placeholders(grpo: dict[str, Any]) -> dict[str, Any]:
    """The ``grpo`` section with ``per_device_train_batch_size: auto`` as one micro-batch per step, for checking.

    ``auto`` is resolved from the GPU's memory when training starts
    (:mod:`ahazero.training.auto_sizes`); the optimizer step's completions come from
    ``grpo.generation_batch_size``, which it splits into micro-batches (choosing
    ``gradient_accumulation_steps`` too). Until then the checks see the whole step as one
    micro-batch, which TRL's batch rules accept whenever any split is possible.

    Example:
        >>> auto_placeholders({"per_device_train_batch_size": "auto", "generation_batch_size": 512,
        ...                    "gradient_accumulation_steps": 4})
        {'per_device_train_batch_size': 512, 'generation_batch_size': 512, 'gradient_accumulation_steps': 1}
        >>> auto_placeholders({"per_device_train_batch_size": "auto"})
        Traceback (most recent call last):
        ...
        ahazero.config.schema.ConfigError: grpo.per_device_train_batch_size 'auto' splits an optimizer step's completions into micro-batches: give their number in grpo.generation_batch_size (e.g. 512)
    """
    value = grpo.get("per_device_train_batch_size")
    if value != "auto":
        if isinstance(value, str):
            raise ConfigError(f"grpo.per_device_train_batch_size: expected an integer >= 1 or 'auto', got {value!r}")
        return grpo
    step = grpo.get("generation_batch_size")
    if not isinstance(step, int) or isinstance(step, bool) or step < 1:
        raise ConfigError("grpo.per_device_train_batch_size 'auto' splits an optimizer step's completions into "
                          "micro-batches: give their number in grpo.generation_batch_size (e.g. 512)")
    if grpo.get("steps_per_generation") is not None:
        raise ConfigError("grpo.per_device_train_batch_size 'auto' chooses the micro-batches of each generation "
                          "batch: drop grpo.steps_per_generation")
    processes = int(os.environ.get("WORLD_SIZE", "1") or 1)
    if step % processes:
        raise ConfigError(f"grpo.generation_batch_size ({step}) must divide among the {processes} processes")
    return {**grpo, "per_device_train_batch_size": step // processes, "gradient_accumulation_steps": 1}


def resolved_backend(cfg: ExperimentConfig, *, cuda: bool) -> str:
    """The concrete rollout backend a config runs with on this machine.

    A ``grpo`` section that selects a generation path itself (``use_vllm``, ...) keeps it
    and counts as ``custom``. Under FSDP or ZeRO-3 the CUDA-graph backends give way to
    ``hf`` (:func:`backend_fallback` says why).

    Example:
        >>> from ahazero.config.schema import validate_dict
        >>> cfg = validate_dict({"name": "x", "model": {"name_or_path": "tiny"},
        ...     "task": {"name": "arithmetic"}, "rewards": [{"name": "accuracy"}]})
        >>> resolved_backend(cfg, cuda=False)
        'hf'
    """
    return backend_fallback(cfg, cuda=cuda)[0]


def backend_fallback(cfg: ExperimentConfig, *, cuda: bool) -> tuple[str, str | None]:
    """:func:`resolved_backend`, with the warning to show when the training strategy changed it.

    Example:
        >>> from ahazero.config.schema import validate_dict
        >>> cfg = validate_dict({"name": "x", "model": {"name_or_path": "tiny"},
        ...     "task": {"name": "arithmetic"}, "rewards": [{"name": "accuracy"}],
        ...     "generation": {"backend": "graph"}, "grpo": {"deepspeed": {"zero_optimization": {"stage": 3}}}})
        >>> backend, why = backend_fallback(cfg, cuda=True)
        >>> backend, why[:50]
        ('hf', "generation.backend 'graph' cannot run under ZeRO-3")
    """
    from ahazero.config.sharding import backend_under_sharding, sharding_in_use

    return backend_under_sharding(_chosen_backend(cfg, cuda=cuda), sharding_in_use(cfg.grpo))


def _chosen_backend(cfg: ExperimentConfig, *, cuda: bool) -> str:
    """What ``generation.backend`` (or the ``grpo`` section) picks, before the strategy is considered."""
    from ahazero.config.backend_choice import BACKEND_GRPO_KEYS, resolve_backend

    own = [k for k in BACKEND_GRPO_KEYS if k in cfg.grpo]
    if own:
        if cfg.generation.backend != "auto":
            raise ConfigError(
                f"grpo.{own[0]} and generation.backend both choose how rollouts are generated; "
                f"keep generation.backend ('{cfg.generation.backend}') and drop grpo.{own[0]}"
            )
        return "custom"
    try:
        backend = resolve_backend(cfg.generation.backend, cuda=cuda)
    except ValueError as err:
        raise ConfigError(f"generation.backend: {err}") from None
    if backend == "graph":
        backend = _graph_or_fallback(cfg)
    return backend


def _graph_or_fallback(cfg: ExperimentConfig) -> str:
    """``graph`` implements temperature/top-k/top-p only: other sampling settings need ``compiled``."""
    from ahazero.config.backend_choice import GRAPH_UNSUPPORTED

    used = [k for k, neutral in GRAPH_UNSUPPORTED.items() if cfg.grpo.get(k, neutral) != neutral]
    if not used:
        return "graph"
    if cfg.generation.backend == "graph":
        raise ConfigError(f"generation.backend 'graph' does not implement grpo.{used[0]}; use 'compiled' or 'hf' "
                          f"(or 'auto', which picks 'compiled' for such settings)")
    return "compiled"


def _on_gpu(cfg: ExperimentConfig, *, cuda: bool) -> bool:
    """Whether training runs on the GPU: one is present and ``grpo.use_cpu`` does not say otherwise."""
    return cuda and not cfg.grpo.get("use_cpu", False)


def _backend_settings(cfg: ExperimentConfig, *, cuda: bool) -> dict[str, Any]:
    from ahazero.config.backend_choice import backend_grpo_settings

    backend = resolved_backend(cfg, cuda=cuda)
    if backend == "custom":
        return {}
    return backend_grpo_settings(backend)


def check_config(cfg: ExperimentConfig, *, cuda: bool | None = None) -> CheckedConfig:
    """Run every check that needs no model; return what was resolved.

    Example:
        >>> from ahazero.config.schema import validate_dict
        >>> cfg = validate_dict({"name": "x", "model": {"name_or_path": "tiny"},
        ...     "task": {"name": "arithmetic"}, "rewards": [{"name": "accuracy"}],
        ...     "grpo": {"num_generations": 3, "per_device_train_batch_size": 8}})
        >>> check_config(cfg, cuda=False)
        Traceback (most recent call last):
        ...
        ahazero.config.schema.ConfigError: grpo: generation_batch_size (8) must be divisible by num_generations (3).
    """
    import torch

    if cuda is None:
        cuda = torch.cuda.is_available()
    task = resolve_task(cfg)
    funcs, weights = _resolve_rewards(cfg, task)
    _check_groups(cfg, funcs)
    grpo_args = build_grpo_config(cfg, cuda=cuda)
    try:
        check_run_dir(cfg.run_dir, cfg.output_root)
    except ValueError as err:
        raise ConfigError(str(err)) from None
    backend, why = backend_fallback(cfg, cuda=_on_gpu(cfg, cuda=cuda))
    if why and os.environ.get("RANK", "0") == "0":  # once per run, not once per process
        logger.warning(why)
    check_throughput_settings(cfg, backend=backend, grpo_args=grpo_args)
    return CheckedConfig(config=cfg, task=task, reward_funcs=funcs, reward_weights=weights, grpo_args=grpo_args,
                         backend=backend)
