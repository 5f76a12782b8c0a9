"""Resolve the config's rewards and refuse what cannot be a reward, before any model loads.

For each ``rewards`` entry: the reward is built by the registry (a module that exits or
raises while it is imported is a config error naming the module, not an exit); a
``module:function`` path may not name the standard library or a builtin (``os:system``);
the callable must take the keyword arguments TRL passes (``completions`` and ``**kwargs``);
the dataset columns it needs must exist in the task; the weights must not all be 0.

A ``module:function`` reward is then wrapped in :class:`GuardedReward`, which checks what it
returns on every call: one number (or None) per completion, finite. Anything else stops the
run with a :class:`RewardOutputError` naming the reward, instead of a crash inside TRL or a
silently wrong score. Registry rewards keep that contract by their own tests.

Example:
    >>> guard = GuardedReward(lambda completions, **kw: "1.0", key="rewards.0", label="my:reward")
    >>> guard(completions=["a", "b"])
    Traceback (most recent call last):
    ...
    ahazero.config.reward_checks.RewardOutputError: rewards.0 ('my:reward') returned a str; ...
"""

from __future__ import annotations

import functools
import inspect
import math
import numbers
import sys
from collections.abc import Callable, Sequence
from typing import Any

__all__ = ["GuardedReward", "RewardOutputError", "check_reward_output", "check_reward_signature",
           "refuse_stdlib", "resolve_rewards"]

#: Keyword arguments TRL's GRPOTrainer passes to every reward besides the dataset columns.
TRL_REWARD_KWARGS = ("prompts", "completions", "completion_ids", "trainer_state", "log_extra", "log_metric")


class RewardOutputError(ValueError):
    """A reward returned something that is not one finite number (or None) per completion."""


def _unwrap(func: Any) -> Any:
    while isinstance(func, functools.partial):
        func = func.func
    return func


def _defining_module(func: Any) -> str:
    """The module a reward's code comes from (its class's module for an instance)."""
    inner = _unwrap(func)
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
    if inspect.isbuiltin(_unwrap(func)):
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


def _number(value: Any) -> float | None:
    """``value`` as a float when it is a real number (numpy and 0-d torch scalars too), else None."""
    if isinstance(value, numbers.Real):
        return float(value)
    item = getattr(value, "item", None)
    if callable(item) and getattr(value, "ndim", None) == 0:
        inner = item()
        if isinstance(inner, numbers.Real):
            return float(inner)
    return None


def check_reward_output(output: Any, n: int, key: str, label: str) -> list[Any]:
    """The reward values as a list, or :class:`RewardOutputError` naming the reward and what is wrong.

    Valid: a sequence (list, tuple, 1-D array or tensor) of ``n`` values, each a finite real
    number, NaN or None (None and NaN both mean "not applicable").

    Example:
        >>> check_reward_output((1, 0.5, None), 3, "rewards.0", "my:r")
        [1, 0.5, None]
        >>> check_reward_output([1.0], 3, "rewards.0", "my:r")
        Traceback (most recent call last):
        ...
        ahazero.config.reward_checks.RewardOutputError: rewards.0 ('my:r') returned 1 value(s) for 3 completions; ...
    """
    what = f"{key} ('{label}')"
    contract = f"a reward returns a list with one number (or None) per completion, {n} here"
    if isinstance(output, str | bytes | dict | set | frozenset) or not hasattr(output, "__iter__"):
        raise RewardOutputError(f"{what} returned a {type(output).__name__}; {contract}")
    values = list(output)
    if len(values) != n:
        raise RewardOutputError(f"{what} returned {len(values)} value(s) for {n} completions; {contract}")
    for i, value in enumerate(values):
        if value is None:
            continue
        number = _number(value)
        if number is None:
            shown = repr(value) if len(repr(value)) <= 40 else repr(value)[:40] + "..."
            raise RewardOutputError(f"{what} returned {shown} ({type(value).__name__}) for completion {i}; "
                                    f"{contract}")
        if math.isinf(number):
            raise RewardOutputError(f"{what} returned {number} for completion {i}; rewards must be finite "
                                    "(None means 'not applicable')")
    return values


class GuardedReward:
    """A reward callable whose every result is checked by :func:`check_reward_output`.

    Keeps the wrapped reward's ``__name__`` (TRL's column name) and forwards other attributes
    (``required_columns``, options) to it.

    Example:
        >>> guard = GuardedReward(lambda completions, **kw: [1.0] * len(completions), key="rewards.0", label="m:f")
        >>> guard(completions=["a", "b"]), guard.__name__
        ([1.0, 1.0], '<lambda>')
    """

    def __init__(self, func: Callable[..., Any], *, key: str, label: str) -> None:
        self._inner = func
        self._key = key
        self._label = label
        self.__name__ = getattr(_unwrap(func), "__name__", None) or type(_unwrap(func)).__name__

    @property
    def wrapped(self) -> Callable[..., Any]:
        """The reward callable inside the guard."""
        return self._inner

    def _count(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> int:
        completions = kwargs.get("completions", args[0] if args else None)
        return len(completions) if completions is not None else 0

    def __call__(self, *args: Any, **kwargs: Any) -> list[Any]:
        output = self._inner(*args, **kwargs)
        return check_reward_output(output, self._count(args, kwargs), self._key, self._label)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name in ("_inner", "_key", "_label"):
            raise AttributeError(name)
        return getattr(self._inner, name)


class AsyncGuardedReward(GuardedReward):
    """:class:`GuardedReward` for an ``async`` reward (TRL awaits it)."""

    async def __call__(self, *args: Any, **kwargs: Any) -> list[Any]:  # type: ignore[override]
        output = await self._inner(*args, **kwargs)
        return check_reward_output(output, self._count(args, kwargs), self._key, self._label)


def _is_async(func: Any) -> bool:
    inner = _unwrap(func)
    return inspect.iscoroutinefunction(inner) or inspect.iscoroutinefunction(type(inner).__call__)


def _guard(func: Any, key: str, label: str) -> Any:
    try:
        import torch

        if isinstance(func, torch.nn.Module):  # a reward model: TRL scores it from its logits
            return func
    except ImportError:  # pragma: no cover - torch is a dependency
        pass
    cls = AsyncGuardedReward if _is_async(func) else GuardedReward
    return cls(func, key=key, label=label)


def _build(spec: Any) -> Any:
    """The registry's reward for ``spec``; any failure, ``SystemExit`` from an import included, is a ValueError."""
    import rewards as reward_registry

    name = spec.name.strip() if isinstance(spec.name, str) else spec.name
    if isinstance(name, str) and ":" in name:
        refuse_stdlib(name)
    try:
        return reward_registry.get_reward(spec.name, **spec.kwargs())
    except KeyboardInterrupt:
        raise
    except (ValueError, TypeError, ImportError, AttributeError):
        raise
    except BaseException as err:  # noqa: BLE001 - SystemExit or anything a user module raises on import
        module = str(name).partition(":")[0]
        raise ValueError(f"loading {str(name)!r} stopped: module {module!r} raised "
                         f"{type(err).__name__}({', '.join(map(repr, getattr(err, 'args', ())))}) "
                         "while it was imported or the reward was created") from None


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
        funcs.append(_guard(func, f"rewards.{i}", spec.name) if custom else func)
        weights.append(float(spec.weight))
    return funcs, weights
