"""The contract on what a custom reward returns, checked on every call: one finite number (or None) per completion.

A reward returns a list or tuple (a 1-D numpy array or torch tensor also works) with exactly
one value per completion; each value is a real number or None ("not applicable": the reward
is left out of that completion's total). :func:`check_reward_output` enforces it and returns
plain floats and Nones:

- a string, mapping, set, generator or other iterator, or anything without a length, is
  refused before a single item is read (an endless generator cannot run the process out of
  memory), as is a list of the wrong length;
- a value that is not a real number (a string, a nested list) is refused, and so is an
  integer too large for a float (``10**400``) and an infinity;
- NaN is read as None, with a warning naming the reward and how many; a batch in which the
  reward gave no number at all and at least one NaN is refused (a reward that returns NaN
  for everything is broken, not "not applicable").

A refusal is a :class:`RewardOutputError` (a :class:`RewardError`) naming the reward (its
``rewards.N`` key and name), the step when known, and what was wrong.

Example:
    >>> check_reward_output([1, 0.5, None, float("nan")], 4, "rewards.1", "my:r")
    [1.0, 0.5, None, None]
    >>> check_reward_output(iter([1.0]), 1, "rewards.1", "my:r", step=3)
    Traceback (most recent call last):
    ...
    ahazero.config.reward_output.RewardOutputError: rewards.1 ('my:r') at step 3 returned a list_iterator; ...
"""

from __future__ import annotations

import itertools
import logging
import math
import numbers
import reprlib
from collections.abc import Mapping
from typing import Any

__all__ = ["RewardError", "RewardOutputError", "check_reward_output", "describe_reward"]

logger = logging.getLogger("ahazero.config.reward_output")

_SHORT = reprlib.Repr()
_SHORT.maxstring = _SHORT.maxother = _SHORT.maxlong = 40


class RewardError(ValueError):
    """A custom reward failed during a run: it raised, exited, or returned something outside the contract."""


class RewardOutputError(RewardError):
    """A reward returned something that is not one finite number (or None) per completion."""


def describe_reward(key: str, label: str, step: int | None = None) -> str:
    """How messages name a reward: its config key, its name, and the step when known.

    Example:
        >>> describe_reward("rewards.1", "my_rewards:brevity", step=7)
        "rewards.1 ('my_rewards:brevity') at step 7"
    """
    return f"{key} ('{label}')" + (f" at step {step}" if step is not None else "")


def _number(value: Any) -> float | None:
    """``value`` as a float when it is a real number (numpy and 0-d torch scalars too), else None.

    Raises OverflowError for a number too large for a float.
    """
    if isinstance(value, numbers.Real):
        return float(value)
    item = getattr(value, "item", None)
    if callable(item) and getattr(value, "ndim", None) == 0:
        inner = item()
        if isinstance(inner, numbers.Real):
            return float(inner)
    return None


def _length(output: Any) -> int | None:
    """``len(output)`` for a sized, iterable result that is not text, a mapping or a set; else None."""
    if isinstance(output, str | bytes | bytearray | Mapping | set | frozenset) or not hasattr(output, "__iter__"):
        return None
    try:
        return len(output)
    except TypeError:  # a generator, an iterator, a 0-d array
        return None


def check_reward_output(output: Any, n: int, key: str, label: str, *, step: int | None = None) -> list[float | None]:
    """The reward values as floats and Nones, or :class:`RewardOutputError` naming the reward and what is wrong.

    See the module for the contract. ``n`` is the number of completions scored.

    Example:
        >>> check_reward_output((1, True, None), 3, "rewards.0", "my:r")
        [1.0, 1.0, None]
        >>> check_reward_output([1.0], 3, "rewards.0", "my:r")
        Traceback (most recent call last):
        ...
        ahazero.config.reward_output.RewardOutputError: rewards.0 ('my:r') returned 1 value(s) for 3 completions; ...
        >>> check_reward_output([10**400], 1, "rewards.0", "my:r")
        Traceback (most recent call last):
        ...
        ahazero.config.reward_output.RewardOutputError: rewards.0 ('my:r') returned an int too large for a float ...
    """
    what = describe_reward(key, label, step)
    contract = f"a reward returns a list with one number (or None) per completion, {n} here"
    size = _length(output)
    if size is None:
        raise RewardOutputError(f"{what} returned a {type(output).__name__}; {contract}")
    if size != n:
        raise RewardOutputError(f"{what} returned {size} value(s) for {n} completions; {contract}")
    raw = list(itertools.islice(output, n + 1))  # a length that lies cannot make this endless
    if len(raw) != n:
        raise RewardOutputError(f"{what} returned {len(raw)} value(s) for {n} completions; {contract}")
    values: list[float | None] = []
    nans = 0
    for i, value in enumerate(raw):
        if value is None:
            values.append(None)
            continue
        try:
            number = _number(value)
        except OverflowError:
            raise RewardOutputError(f"{what} returned an int too large for a float ({_SHORT.repr(value)}) for "
                                    f"completion {i}; {contract}") from None
        if number is None:
            raise RewardOutputError(f"{what} returned {_SHORT.repr(value)} ({type(value).__name__}) for "
                                    f"completion {i}; {contract}")
        if math.isinf(number):
            raise RewardOutputError(f"{what} returned {number} for completion {i}; rewards must be finite "
                                    "(None means 'not applicable')")
        if math.isnan(number):
            nans += 1
            values.append(None)
            continue
        values.append(number)
    if nans and all(v is None for v in values):
        nones = n - nans
        which = f"all {n} completions" if not nones else f"{nans} of the {n} completions and None for the rest"
        raise RewardOutputError(f"{what} returned NaN for {which}: no score at all; a reward returns None for "
                                "'not applicable', and numbers otherwise")
    if nans:
        logger.warning("%s returned NaN for %d of %d completions; those are scored None (not applicable)",
                       what, nans, n)
    return values
