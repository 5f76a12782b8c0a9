"""The ranges of the numeric ``grpo`` settings, checked before ``GRPOConfig`` is built.

TRL and transformers accept many impossible values and fail later, after the model has
loaded, or quietly train something else (``max_steps: -5`` trains by epochs). Every rule
here names the key, the value and what is valid. ``max_steps`` is a positive number of
steps; leave it out (or give ``-1``, transformers' "no step limit") to train
``grpo.num_train_epochs`` epochs instead (1 unless set). No ``grpo`` number may be NaN.

Example:
    >>> check_grpo_ranges({"learning_rate": 1e-6, "max_steps": 60})
    >>> check_grpo_ranges({"gradient_accumulation_steps": 0})
    Traceback (most recent call last):
    ...
    ValueError: grpo.gradient_accumulation_steps: 0 is out of range; valid: an integer >= 1
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

__all__ = ["GRPO_RANGES", "check_grpo_ranges"]


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _int_at_least(low: int) -> tuple[Callable[[Any], bool], str]:
    return (lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= low), f"an integer >= {low}"


def _finite(low: float, *, strict: bool, high: float | None = None,
            high_strict: bool = False) -> tuple[Callable[[Any], bool], str]:
    def ok(v: Any) -> bool:
        if not _number(v) or not math.isfinite(v):
            return False
        if v < low or (strict and v == low):
            return False
        return high is None or v < high or (not high_strict and v == high)

    text = f"a finite number {'>' if strict else '>='} {low:g}"
    if high is not None:
        text += f" and {'<' if high_strict else '<='} {high:g}"
    return ok, text


_POSITIVE_INT = _int_at_least(1)
_POSITIVE = _finite(0.0, strict=True)
_NON_NEGATIVE = _finite(0.0, strict=False)

#: grpo key -> (is the value valid, what is valid). ``None`` is accepted where TRL's default is None.
GRPO_RANGES: dict[str, tuple[Callable[[Any], bool], str]] = {
    "per_device_train_batch_size": (
        lambda v: v == "auto" or _POSITIVE_INT[0](v),
        "an integer >= 1, or 'auto' (grpo.generation_batch_size split into micro-batches that fit the GPU)",
    ),
    "per_device_eval_batch_size": _POSITIVE_INT,
    "gradient_accumulation_steps": _POSITIVE_INT,
    "num_generations": _int_at_least(2),
    "num_generations_eval": _int_at_least(1),
    "generation_batch_size": _POSITIVE_INT,
    "steps_per_generation": _POSITIVE_INT,
    "max_completion_length": _POSITIVE_INT,
    "num_iterations": _POSITIVE_INT,
    "max_steps": (
        lambda v: isinstance(v, int) and not isinstance(v, bool) and (v >= 1 or v == -1),
        "a positive number of steps; to train by epochs leave max_steps out (or -1) and set grpo.num_train_epochs",
    ),
    "num_train_epochs": _POSITIVE,
    "learning_rate": _POSITIVE,
    "temperature": _POSITIVE,
    "repetition_penalty": _POSITIVE,
    "logging_steps": _POSITIVE,
    "save_steps": _POSITIVE,
    "eval_steps": _POSITIVE,
    "warmup_steps": _NON_NEGATIVE,
    "warmup_ratio": _finite(0.0, strict=False, high=1.0),
    "weight_decay": _NON_NEGATIVE,
    "max_grad_norm": _NON_NEGATIVE,
    "adam_epsilon": _NON_NEGATIVE,
    "beta": _NON_NEGATIVE,
    "epsilon": _NON_NEGATIVE,
    "epsilon_high": _NON_NEGATIVE,
    "top_p": _finite(0.0, strict=True, high=1.0),
    "min_p": _finite(0.0, strict=False, high=1.0),
    "top_k": _int_at_least(0),
}


def _has_nan(value: Any) -> bool:
    if isinstance(value, float):
        return math.isnan(value)
    if isinstance(value, dict):
        return any(_has_nan(v) for v in value.values())
    if isinstance(value, list | tuple):
        return any(_has_nan(v) for v in value)
    return False


def check_grpo_ranges(grpo: dict[str, Any]) -> None:
    """Raise :class:`ValueError` for the first ``grpo`` value outside its valid range.

    Example:
        >>> check_grpo_ranges({"max_steps": -5})
        Traceback (most recent call last):
        ...
        ValueError: grpo.max_steps: -5 is out of range; valid: a positive number of steps; ...
        >>> check_grpo_ranges({"generation_kwargs": {"top_p": float("nan")}})
        Traceback (most recent call last):
        ...
        ValueError: grpo.generation_kwargs: holds NaN; give a number
    """
    for key, value in grpo.items():
        rule = GRPO_RANGES.get(key)
        if rule is not None and value is not None and not rule[0](value):
            raise ValueError(f"grpo.{key}: {value!r} is out of range; valid: {rule[1]}")
        if _has_nan(value):
            raise ValueError(f"grpo.{key}: holds NaN; give a number")
