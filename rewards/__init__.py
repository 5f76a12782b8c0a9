"""Reward functions for GRPO (TRL convention), and the registry that builds them by name.

A reward is a callable ``f(completions, **dataset_columns) -> list[float | None]``.
It is named either by a registry name (see :func:`available_rewards`) or by a
``package.module:attribute`` path to your own function or class.

>>> reward = get_reward("think_format", require_answer_tags=True)
>>> reward.__name__, required_columns(reward)
('think_format', ())
>>> reward(completions=["<think>2+2=4</think><answer>4</answer>"])
[1.0]
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import importlib
import inspect
import logging
from collections.abc import Callable
from typing import Any

logger = logging.getLogger(__name__)

__all__ = ["available_rewards", "get_reward", "required_columns", "reward_kwargs"]

_REGISTRY: dict[str, str] = {
    "accuracy": "rewards.accuracy:AccuracyReward",
    "countdown": "rewards.countdown:CountdownReward",
    "format_gate": "rewards.format_gate:FormatGateReward",
    "language_consistency": "rewards.language:LanguageConsistencyReward",
    "think_format": "rewards.think_format:ThinkFormatReward",
}

_CLASS_NAMES = {path.rsplit(":", 1)[1]: path for path in _REGISTRY.values()}


def available_rewards() -> list[str]:
    """Sorted registry names.

    >>> available_rewards()
    ['accuracy', 'countdown', 'format_gate', 'language_consistency', 'think_format']
    """
    return sorted(_REGISTRY)


def _unknown(name: Any) -> ValueError:
    return ValueError(
        f"unknown reward {name!r}; valid choices: {', '.join(available_rewards())}, "
        "or a 'module:function' path"
    )


def _import_path(path: str) -> Any:
    """The object named by ``package.module:attribute`` (attribute may be dotted); ValueError if missing."""
    module_name, sep, attr = path.partition(":")
    if not sep or not module_name.strip() or not attr.strip():
        raise ValueError(f"bad reward path {path!r}: expected 'package.module:attribute'")
    try:
        obj = importlib.import_module(module_name.strip())
    except Exception as exc:  # ImportError, or an error raised by the module itself
        raise ValueError(
            f"bad reward path {path!r}: cannot import module {module_name!r} ({type(exc).__name__}: {exc})"
        ) from exc
    for part in attr.strip().split("."):
        if not hasattr(obj, part):
            raise ValueError(f"bad reward path {path!r}: module {module_name!r} has no attribute {attr!r}")
        obj = getattr(obj, part)
    return obj


def _registry_class(name: str) -> type:
    return _import_path(_REGISTRY[name])


def _dataclass_options(cls: type) -> dict[str, Any]:
    options: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        if not f.init:
            continue
        if f.default is not dataclasses.MISSING:
            options[f.name] = f.default
        elif f.default_factory is not dataclasses.MISSING:
            options[f.name] = f.default_factory()
    return options


def reward_kwargs(name: str) -> dict[str, Any]:
    """Valid options of a registry reward, with their defaults (for config validation and help).

    >>> reward_kwargs("accuracy")
    {'timeout_seconds': 2.0, 'literal_numbers': True, 'isolate': True, 'answer_source': 'any'}
    """
    if not isinstance(name, str) or name not in _REGISTRY:
        raise _unknown(name)
    return _dataclass_options(_registry_class(name))


def _check_function_kwargs(func: Callable[..., Any], path: str, kwargs: dict[str, Any]) -> None:
    try:
        params = inspect.signature(func).parameters
    except (TypeError, ValueError):
        return  # builtins etc.: cannot check
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return
    bad = sorted(k for k in kwargs if k not in params)
    if bad:
        raise ValueError(
            f"reward {path!r} has no option(s) {', '.join(map(repr, bad))}; "
            f"its parameters are: {', '.join(params) or '(none)'}"
        )


def _from_path(path: str, kwargs: dict[str, Any]) -> Callable[..., Any]:
    obj = _import_path(path)
    short_name = path.partition(":")[2].strip().rsplit(".", 1)[-1]
    if isinstance(obj, type):
        try:
            instance = obj(**kwargs)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"reward {path!r}: cannot create {obj.__name__}({kwargs!r}): {exc}") from exc
        if not callable(instance):
            raise ValueError(f"reward {path!r}: instances of {obj.__name__} are not callable")
        if not hasattr(instance, "__name__"):
            with contextlib.suppress(AttributeError):  # e.g. __slots__: TRL falls back to the class name
                instance.__name__ = short_name
        return instance
    if not callable(obj):
        raise ValueError(f"bad reward path {path!r}: {type(obj).__name__} object is not callable")
    if not kwargs:
        return obj
    _check_function_kwargs(obj, path, kwargs)
    wrapped = functools.partial(obj, **kwargs)
    wrapped.__name__ = getattr(obj, "__name__", short_name)  # type: ignore[attr-defined]
    return wrapped


def get_reward(name: str, **kwargs: Any) -> Callable[..., list[float | None]]:
    """Build a TRL reward callable from a registry name or a ``package.module:attribute`` path.

    Registry rewards take their options as keyword arguments (see :func:`reward_kwargs`).
    For a path, a class is instantiated with ``kwargs``; a function is returned as is,
    or wrapped in :func:`functools.partial` (keeping its ``__name__``) when options
    are given. Every error is a ``ValueError`` naming the problem and the valid choices.

    >>> get_reward("accuracy").__name__
    'accuracy'
    >>> get_reward("rewards.accuracy:AccuracyReward", timeout_seconds=5).__name__
    'accuracy'
    >>> get_reward("acc")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: unknown reward 'acc'; valid choices: accuracy, countdown, ...
    """
    if not isinstance(name, str):
        raise _unknown(name)
    key = name.strip()
    if key in _REGISTRY:
        valid = reward_kwargs(key)
        bad = sorted(k for k in kwargs if k not in valid)
        if bad:
            choices = ", ".join(valid) if valid else "(none)"
            raise ValueError(
                f"unknown option(s) {', '.join(map(repr, bad))} for reward {key!r}; valid options: {choices}"
            )
        return _registry_class(key)(**kwargs)
    if ":" in key:
        return _from_path(key, kwargs)
    raise _unknown(name)


def required_columns(reward: Any) -> tuple[str, ...]:
    """Dataset columns a reward needs: its ``required_columns`` attribute, else ``()``.

    Accepts a reward callable (``functools.partial`` is unwrapped) or a registry name.

    >>> required_columns(get_reward("countdown")), required_columns(print)
    (('numbers', 'target'), ())
    """
    if isinstance(reward, str):
        if reward not in _REGISTRY:
            raise _unknown(reward)
        reward = _registry_class(reward)
    while isinstance(reward, functools.partial):
        reward = reward.func
    columns = getattr(reward, "required_columns", ())
    if isinstance(columns, str):
        return (columns,)
    try:
        return tuple(str(c) for c in columns)
    except TypeError:
        return ()


def __getattr__(attr: str) -> Any:
    """Lazy access to the reward classes (``rewards.AccuracyReward``) without importing sympy up front."""
    if attr in _CLASS_NAMES:
        return _import_path(_CLASS_NAMES[attr])
    raise AttributeError(f"module {__name__!r} has no attribute {attr!r}")
