"""Resolve the config's rewards and refuse what cannot be a reward, before any model loads.

For each ``rewards`` entry: the reward is built by the registry (a module that exits, calls
``os._exit`` or raises while it is imported is a config error naming the module, not an exit);
a ``module:function`` path may not name the standard library or a builtin (``os:system``);
the callable must take the keyword arguments TRL passes (``completions`` and ``**kwargs``);
the dataset columns it needs must exist in the task; the weights must not all be 0.

A ``module:function`` reward is then wrapped in :class:`~ahazero.config.reward_guard.GuardedReward`,
which checks every call: an exception, an exit, or a result outside the contract of
:mod:`ahazero.config.reward_output` (one finite number, or None, per completion) stops the run
with a :class:`~ahazero.config.reward_output.RewardError` naming the reward and the step, or,
with ``on_reward_error: skip``, scores the batch None with a warning. Registry rewards keep
that contract by their own tests.

Example:
    >>> guard = GuardedReward(lambda completions, **kw: "1.0", key="rewards.0", label="my:reward")
    >>> guard(completions=["a", "b"])
    Traceback (most recent call last):
    ...
    ahazero.config.reward_output.RewardOutputError: rewards.0 ('my:reward') returned a str; ...
"""

from __future__ import annotations

import inspect
import sys
from collections.abc import Sequence
from typing import Any

from ahazero.config.exit_guard import ExitRequested, exits_raise
from ahazero.config.reward_guard import AsyncGuardedReward, GuardedReward, guard_reward, unwrap_reward
from ahazero.config.reward_output import RewardError, RewardOutputError, check_reward_output

__all__ = ["AsyncGuardedReward", "GuardedReward", "RewardError", "RewardOutputError", "check_reward_output",
           "check_reward_signature", "refuse_stdlib", "resolve_rewards"]

#: Keyword arguments TRL's GRPOTrainer passes to every reward besides the dataset columns.
TRL_REWARD_KWARGS = ("prompts", "completions", "completion_ids", "trainer_state", "log_extra", "log_metric")


def _defining_module(func: Any) -> str:
    """The module a reward's code comes from (its class's module for an instance)."""
    inner = unwrap_reward(func)
    if inspect.isfunction(inner) or inspect.isbuiltin(inner) or inspect.ismethod(inner) or isinstance(inner, type):
        return str(getattr(inner, "__module__", None) or "")
    return str(getattr(type(inner), "__module__", None) or "")


def _stdlib(module: str) -> bool:
    return module.split(".")[0] in sys.stdlib_module_names


def refuse_stdlib(path: str, func: Any | None = None) -> None:
    """Raise :class:`ValueError` when a reward path (or the callable it names) is from the standard library.

    Example:
        >>> import os
        >>> refuse_stdlib("os:system", os.system)
        Traceback (most recent call last):
        ...
        ValueError: 'os:system' is a function of Python's standard library ('os'), not a reward; ...
        >>> refuse_stdlib("my_rewards:brevity")
    """
    module = path.partition(":")[0].strip()
    defined = _defining_module(func) if func is not None else ""
    culprit = module if _stdlib(module) else defined if defined and _stdlib(defined) else None
    hint = "name a function of your own module, e.g. my_rewards:brevity"
    if culprit is not None:
        raise ValueError(f"{path!r} is a function of Python's standard library ({culprit!r}), not a reward; {hint}")
    if inspect.isbuiltin(unwrap_reward(func)):
        raise ValueError(f"{path!r} is a compiled builtin function ({defined or 'no module'}), not a reward; {hint}")


def check_reward_signature(func: Any, path: str, columns: Sequence[str]) -> None:
    """Raise :class:`ValueError` unless ``func`` can be called the way TRL calls a reward.

    TRL calls ``func(prompts=..., completions=..., completion_ids=..., trainer_state=...,
    log_extra=..., log_metric=..., <every dataset column>=...)``, so a reward needs
    ``**kwargs`` and no required parameter that is not among those names.

    Example:
        >>> def brevity(completions, **kwargs): return [0.0] * len(completions)
        >>> check_reward_signature(brevity, "my:brevity", ["answer"])
        >>> def strict(completions, extra): return [0.0] * len(completions)
        >>> check_reward_signature(strict, "my:strict", ["answer"])
        Traceback (most recent call last):
        ...
        ValueError: reward 'my:strict' cannot be called as a reward: its signature (completions, extra) has no ...
    """
    try:
        params = inspect.signature(func).parameters
    except (TypeError, ValueError):
        raise ValueError(f"reward {path!r} has no readable signature; a reward is a Python function or callable "
                         "object taking (completions, **kwargs)") from None
    signature = f"({', '.join(str(p) for p in params.values())})"
    given = set(TRL_REWARD_KWARGS) | set(columns)
    problems = []
    if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        problems.append("has no **kwargs")
    required = [p for p in params.values() if p.default is inspect.Parameter.empty
                and p.kind not in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)]
    missing = [p.name for p in required if p.kind is inspect.Parameter.POSITIONAL_ONLY or p.name not in given]
    if missing:
        problems.append(f"requires {', '.join(missing)}, which is neither passed by TRL nor a dataset column")
    if problems:
        raise ValueError(
            f"reward {path!r} cannot be called as a reward: its signature {signature} "
            f"{' and '.join(problems)}; a reward takes (completions, **kwargs) and is called with "
            f"{', '.join(TRL_REWARD_KWARGS)} and the dataset columns ({', '.join(columns)})"
        )


def _build(spec: Any) -> Any:
    """The registry's reward for ``spec``; any failure, an exit from an import included, is a ValueError."""
    import rewards as reward_registry

    name = spec.name.strip() if isinstance(spec.name, str) else spec.name
    if isinstance(name, str) and ":" in name:
        refuse_stdlib(name)
    try:
        with exits_raise():  # os._exit() while the module is imported: an error here, not a silent exit 0
            return reward_registry.get_reward(spec.name, **spec.kwargs())
    except KeyboardInterrupt:
        raise
    except (ValueError, TypeError, ImportError, AttributeError):
        raise
    except BaseException as err:  # noqa: BLE001 - SystemExit or anything a user module raises on import
        module = str(name).partition(":")[0]
        did = (f"called {err}" if isinstance(err, ExitRequested)
               else f"raised {type(err).__name__}({', '.join(map(repr, getattr(err, 'args', ())))})")
        raise ValueError(f"loading {str(name)!r} stopped: module {module!r} {did} while it was imported or the "
                         "reward was created") from None


def resolve_rewards(cfg: Any, task: Any, provided: Sequence[str]) -> tuple[list[Any], list[float]]:
    """Build every reward of ``cfg`` for ``task``; raise ``ValueError`` messages keyed ``rewards.N``.

    ``provided`` are the dataset columns the rewards are called with.

    Example:
        >>> from ahazero.config.schema import validate_dict
        >>> from ahazero.tasks import get_task
        >>> cfg = validate_dict({"name": "x", "model": {"name_or_path": "tiny"},
        ...     "task": {"name": "arithmetic"}, "rewards": [{"name": "os:system"}]})
        >>> resolve_rewards(cfg, get_task("arithmetic"), ["prompt", "answer"])
        Traceback (most recent call last):
        ...
        ValueError: rewards.0: 'os:system' is a function of Python's standard library ('os'), not a reward; ...
    """
    import rewards as reward_registry

    if all(spec.weight == 0 for spec in cfg.rewards):
        raise ValueError("rewards: every weight is 0, so every advantage is 0 and training learns nothing; "
                         "give at least one reward a non-zero weight (a weight-0 reward is still logged)")
    funcs, weights = [], []
    for i, spec in enumerate(cfg.rewards):
        try:
            func = _build(spec)
        except (ValueError, TypeError, ImportError, AttributeError) as err:
            key = f"rewards.{i}.name" if "unknown reward" in str(err) else f"rewards.{i}"
            raise ValueError(f"{key}: {err}") from None
        custom = ":" in spec.name
        try:
            if custom:
                refuse_stdlib(spec.name, func)
            check_reward_signature(func, spec.name, provided)
        except ValueError as err:
            raise ValueError(f"rewards.{i}: {err}") from None
        missing = [c for c in reward_registry.required_columns(func) if c not in provided]
        if missing:
            raise ValueError(
                f"rewards.{i} ('{spec.name}') needs dataset column(s) {', '.join(missing)}, which task "
                f"'{cfg.task.name}' does not provide; it provides: {', '.join(sorted(task.columns))}"
            )
        funcs.append(guard_reward(func, f"rewards.{i}", spec.name, cfg.on_reward_error) if custom else func)
        weights.append(float(spec.weight))
    return funcs, weights
