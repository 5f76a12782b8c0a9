"""Shared machinery of the reward callables: batching, column access, never-raise scoring, option checks."""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from typing import Any, ClassVar

from rewards.parsing import completion_texts

logger = logging.getLogger(__name__)

PREVIEW_CHARS = 80


def preview(text: Any, limit: int = PREVIEW_CHARS) -> str:
    """Short single-line preview of ``text`` for log messages (repr-escaped, truncated).

    >>> preview("a" * 100, limit=5)
    "'aaaaa'... (100 chars)"
    >>> preview("ok")
    "'ok'"
    """
    if not isinstance(text, str):
        text = f"<{type(text).__name__}>"
    if len(text) <= limit:
        return repr(text)
    return f"{text[:limit]!r}... ({len(text)} chars)"


def check_option(reward: str, option: str, value: Any, expected: type | tuple[type, ...]) -> None:
    """Raise ``ValueError`` unless ``value`` has the ``expected`` type (a bool is not an int here).

    >>> check_option("accuracy", "timeout_seconds", 2, int)
    >>> check_option("accuracy", "timeout_seconds", "2", int)
    Traceback (most recent call last):
    ...
    ValueError: reward 'accuracy': option 'timeout_seconds' must be int, got str '2'
    """
    types = expected if isinstance(expected, tuple) else (expected,)
    is_bool_for_number = isinstance(value, bool) and bool not in types
    if not isinstance(value, types) or is_bool_for_number:
        names = " or ".join(t.__name__ for t in types)
        raise ValueError(
            f"reward '{reward}': option '{option}' must be {names}, got {type(value).__name__} {value!r}"
        )


def _column(kwargs: Mapping[str, Any], name: str, n: int, reward: str) -> list[Any]:
    """Column ``name`` as a list of exactly ``n`` values (None-padded), never raising."""
    values = kwargs.get(name)
    if values is None:
        logger.warning("%s: dataset column '%s' is missing; scoring 0.0", reward, name)
        return [None] * n
    if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
        return [values] * n  # a scalar: broadcast it
    try:
        items = list(values)
    except Exception:  # noqa: BLE001
        return [None] * n
    if len(items) != n:
        logger.warning("%s: column '%s' has %d values for %d completions", reward, name, len(items), n)
    return items[:n] + [None] * max(0, n - len(items))


def batch_inputs(
    completions: Any, kwargs: Mapping[str, Any], columns: tuple[str, ...], reward: str
) -> tuple[list[str], list[dict[str, Any]]]:
    """Texts (``prefill + completion``) and per-row column dicts for one TRL reward call.

    >>> batch_inputs(["4"], {"answer": ["4"], "prefill": ["<think>"]}, ("answer",), "accuracy")
    (['<think>4'], [{'answer': '4'}])
    """
    try:
        texts = completion_texts(completions, kwargs.get("prefill"))
        cols = {name: _column(kwargs, name, len(texts), reward) for name in columns}
        rows = [{name: cols[name][i] for name in columns} for i in range(len(texts))]
        return texts, rows
    except Exception as exc:  # noqa: BLE001 - defensive: never raise on inputs
        logger.warning("%s: could not read the batch (%s: %s)", reward, type(exc).__name__, exc)
        return [], []


class RewardBase:
    """Base of the registry rewards: a picklable callable following TRL's reward convention.

    Subclasses are dataclasses that set ``name`` and ``required_columns``, check
    their options in :meth:`validate` and score one text in :meth:`score`. An
    instance's ``__name__`` equals ``name`` (TRL names its metrics after it).

    >>> class Length(RewardBase):
    ...     name = "length"
    ...     def score(self, text, row):
    ...         return float(len(text))
    >>> r = Length(); r.__post_init__()
    >>> r(completions=["ab", [{"role": "assistant", "content": "c"}]], prefill=["x", None])
    [3.0, 1.0]
    """

    name: ClassVar[str] = "reward"
    required_columns: ClassVar[tuple[str, ...]] = ()

    def __post_init__(self) -> None:
        self.__name__ = self.name
        self.validate()

    def validate(self) -> None:
        """Check the options; raise ``ValueError`` on a bad one. Default: nothing to check."""

    def score(self, text: str, row: Mapping[str, Any]) -> float | None:
        """Score one ``prefill + completion`` text; ``row`` holds the required columns."""
        raise NotImplementedError

    def score_safely(self, text: str, row: Mapping[str, Any]) -> float | None:
        """:meth:`score`, with any exception or non-finite value turned into 0.0 and a warning."""
        try:
            value = self.score(text, row)
            if value is None:
                return None
            value = float(value)
        except Exception as exc:  # noqa: BLE001 - a reward must never raise on model output
            logger.warning(
                "%s: scoring failed (%s: %.100s) on %s", self.name, type(exc).__name__, exc, preview(text)
            )
            return 0.0
        return value if math.isfinite(value) else 0.0

    def __call__(self, completions: Any = None, **kwargs: Any) -> list[float | None]:
        texts, rows = batch_inputs(completions, kwargs, self.required_columns, self.name)
        return [self.score_safely(text, row) for text, row in zip(texts, rows, strict=True)]
