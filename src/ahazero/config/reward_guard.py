"""The guard around every custom (``module:function``) reward: what it does wrong on a batch is named, never hidden.

A call that raises (any exception, ``RecursionError`` and ``SystemExit`` included), calls
``os._exit`` (:func:`ahazero.config.exit_guard.exits_raise`), or returns something outside the
contract of :mod:`ahazero.config.reward_output` becomes a :class:`RewardError` naming the
reward's ``rewards.N`` key, its name, the step (when TRL passes ``trainer_state``) and the
cause, e.g. ``rewards.1 ('my_rewards:brevity') at step 3 raised KeyError: 'answer'``.

``on_reward_error`` (a top-level config key) decides what happens then:

- ``stop`` (the default): the error ends the run; ``ahazero train`` prints
  ``reward error: ...`` and exits with code 2 (the last checkpoint stays; ``--resume``
  continues once the reward is fixed);
- ``skip``: a warning with the same text is logged and the reward scores None for every
  completion of that batch (it is left out of their totals); the run goes on.

Registry rewards are not wrapped: they never raise by their own contract (and tests).

Example:
    >>> def broken(completions, **kwargs):
    ...     raise KeyError("answer")
    >>> GuardedReward(broken, key="rewards.1", label="my:broken")(completions=["a"])
    Traceback (most recent call last):
    ...
    ahazero.config.reward_output.RewardError: rewards.1 ('my:broken') raised KeyError: 'answer'; ...
    >>> GuardedReward(broken, key="rewards.1", label="my:broken", on_error="skip")(completions=["a", "b"])
    [None, None]
"""

from __future__ import annotations

import functools
import inspect
import logging
from collections.abc import Callable
from typing import Any

from ahazero.config.exit_guard import ExitRequested, exits_raise
from ahazero.config.reward_output import RewardError, check_reward_output, describe_reward

__all__ = ["ON_REWARD_ERROR", "AsyncGuardedReward", "GuardedReward", "guard_reward", "unwrap_reward"]

logger = logging.getLogger("ahazero.config.reward_guard")

#: What ``on_reward_error`` may say.
ON_REWARD_ERROR = ("stop", "skip")

_MAX_MESSAGE = 300


def unwrap_reward(func: Any) -> Any:
    """The function inside any :func:`functools.partial` layers (a reward given options).

    Example:
        >>> unwrap_reward(functools.partial(print, sep="")) is print
        True
    """
    while isinstance(func, functools.partial):
        func = func.func
    return func


def _step(kwargs: dict[str, Any]) -> int | None:
    """The step being scored: TRL's ``trainer_state.global_step`` (steps done) + 1; None outside training."""
    step = getattr(kwargs.get("trainer_state"), "global_step", None)
    return step + 1 if isinstance(step, int) else None


def _cause(err: BaseException) -> str:
    """``raised KeyError: 'answer'``, ``called os._exit(0)``: one bounded line."""
    if isinstance(err, ExitRequested):
        return f"called {err}"
    if isinstance(err, SystemExit):
        return f"called sys.exit({err.code!r})"
    text = " ".join(str(err).split())
    if len(text) > _MAX_MESSAGE:
        text = text[:_MAX_MESSAGE] + "..."
    return f"raised {type(err).__name__}" + (f": {text}" if text else "")


class GuardedReward:
    """A reward callable whose failures become :class:`RewardError` (``on_error="stop"``) or None scores (``"skip"``).

    Keeps the wrapped reward's ``__name__`` (TRL's column name) and forwards other attributes
    (``required_columns``, options) to it. ``skipped`` counts the batches scored None.

    Example:
        >>> guard = GuardedReward(lambda completions, **kw: [1.0] * len(completions), key="rewards.0", label="m:f")
        >>> guard(completions=["a", "b"]), guard.__name__
        ([1.0, 1.0], '<lambda>')
    """

    def __init__(self, func: Callable[..., Any], *, key: str, label: str, on_error: str = "stop") -> None:
        if on_error not in ON_REWARD_ERROR:
            raise ValueError(f"on_reward_error must be one of {', '.join(ON_REWARD_ERROR)}, got {on_error!r}")
        self._inner = func
        self._key = key
        self._label = label
        self._on_error = on_error
        self.skipped = 0
        self.__name__ = getattr(unwrap_reward(func), "__name__", None) or type(unwrap_reward(func)).__name__

    @property
    def wrapped(self) -> Callable[..., Any]:
        """The reward callable inside the guard."""
        return self._inner

    def _count(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> int:
        completions = kwargs.get("completions", args[0] if args else None)
        try:
            return len(completions) if completions is not None else 0
        except TypeError:
            return 0

    def _failed(self, error: RewardError, n: int) -> list[float | None]:
        if self._on_error == "stop":
            raise error
        self.skipped += 1
        logger.warning("reward error: %s; scored None for the %d completions of this batch (on_reward_error: skip)",
                       error, n)
        return [None] * n

    def _error(self, err: BaseException, step: int | None) -> RewardError:
        return RewardError(f"{describe_reward(self._key, self._label, step)} {_cause(err)}; fix the reward (a "
                           "reward returns a list with one number or None per completion and never raises), then "
                           "--resume; or set on_reward_error: skip")

    def _checked(self, output: Any, n: int, step: int | None) -> list[float | None]:
        try:
            return check_reward_output(output, n, self._key, self._label, step=step)
        except RewardError as error:
            return self._failed(error, n)

    def __call__(self, *args: Any, **kwargs: Any) -> list[float | None]:
        n, step = self._count(args, kwargs), _step(kwargs)
        try:
            with exits_raise():
                output = self._inner(*args, **kwargs)
        except (Exception, SystemExit, ExitRequested) as err:  # a Ctrl-C passes through
            return self._failed(self._error(err, step), n)
        return self._checked(output, n, step)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name in ("_inner", "_key", "_label", "_on_error"):
            raise AttributeError(name)
        return getattr(self._inner, name)


class AsyncGuardedReward(GuardedReward):
    """:class:`GuardedReward` for an ``async`` reward (TRL awaits it)."""

    async def __call__(self, *args: Any, **kwargs: Any) -> list[float | None]:  # type: ignore[override]
        n, step = self._count(args, kwargs), _step(kwargs)
        try:
            with exits_raise():
                output = await self._inner(*args, **kwargs)
        except (Exception, SystemExit, ExitRequested) as err:
            return self._failed(self._error(err, step), n)
        return self._checked(output, n, step)


def _is_async(func: Any) -> bool:
    inner = unwrap_reward(func)
    return inspect.iscoroutinefunction(inner) or inspect.iscoroutinefunction(type(inner).__call__)


def guard_reward(func: Any, key: str, label: str, on_error: str = "stop") -> Any:
    """``func`` in the guard that fits it (async or not); a reward model (``torch.nn.Module``) is returned as is.

    Example:
        >>> guard_reward(lambda completions, **kw: [0.0], "rewards.0", "m:f").__class__.__name__
        'GuardedReward'
    """
    try:
        import torch

        if isinstance(func, torch.nn.Module):  # a reward model: TRL scores it from its logits
            return func
    except ImportError:  # pragma: no cover - torch is a dependency
        pass
    cls = AsyncGuardedReward if _is_async(func) else GuardedReward
    return cls(func, key=key, label=label, on_error=on_error)
