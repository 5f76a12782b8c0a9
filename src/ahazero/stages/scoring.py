"""Score completions with a config's own rewards into samples-file records (no model needed).

The same reward functions, answer extraction and verifier as training and ``ahazero eval``;
``correct`` and ``formatted`` come from the first correctness / format reward of the config
(as in the traces), the thinking length, reflections and language consistency from
:func:`ahazero.observe.behaviours.describe`.

Example:
    >>> from ahazero.config.schema import validate_dict
    >>> from ahazero.config.validate import check_config
    >>> checked = check_config(validate_dict({"name": "x", "model": {"name_or_path": "tiny"},
    ...     "task": {"name": "arithmetic", "num_train": 2, "num_test": 1},
    ...     "rewards": [{"name": "accuracy"}, {"name": "think_format", "weight": 0.5}]}), cuda=False)
    >>> row = {"id": "a", "problem": "Compute: 2 + 2", "answer": "4", "prompt": "...", "prefill": "<think>"}
    >>> rec = score_records(checked, [row], ["2 + 2 = 4</think><answer>4</answer>"], source="demo")[0]
    >>> rec["correct"], rec["formatted"], rec["reward"], rec["rewards"]
    (True, True, 1.5, {'accuracy': 1.0, 'think_format': 1.0})
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from ahazero.config.schema import ConfigError
from ahazero.observe.behaviours import describe
from ahazero.observe.tracing import CORRECTNESS_REWARDS, FORMAT_REWARDS

__all__ = ["check_scorable", "reward_language", "score_records"]


def check_scorable(checked: Any) -> None:
    """Rejection sampling needs a correctness reward; raise a :class:`ConfigError` naming the choices.

    Example:
        >>> from types import SimpleNamespace
        >>> check_scorable(SimpleNamespace(reward_funcs=[SimpleNamespace(__name__="think_format")]))
        Traceback (most recent call last):
        ...
        ahazero.config.schema.ConfigError: rewards: rejection sampling keeps correct completions, so the config needs a correctness reward (accuracy or countdown); it has: think_format
    """
    names = [getattr(f, "__name__", "?") for f in checked.reward_funcs]
    if not any(name in CORRECTNESS_REWARDS for name in names):
        raise ConfigError("rewards: rejection sampling keeps correct completions, so the config needs a "
                          f"correctness reward ({' or '.join(CORRECTNESS_REWARDS)}); it has: {', '.join(names)}")


def reward_language(cfg: Any) -> str:
    """The target language of the config's ``language_consistency`` reward (``en`` without one).

    Example:
        >>> from types import SimpleNamespace
        >>> reward_language(SimpleNamespace(rewards=[]))
        'en'
    """
    for spec in cfg.rewards:
        if spec.name == "language_consistency":
            return spec.kwargs().get("language") or "en"
    return "en"


def _flag(values: dict[str, list[float | None]], names: Sequence[str], i: int) -> bool | None:
    for name in names:
        if name in values:
            value = values[name][i]
            return None if value is None else value >= 1.0 - 1e-6
    return None


def _number(value: Any) -> float | None:
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def score_records(checked: Any, rows: Sequence[dict[str, Any]], completions: Sequence[str], *,
                  completion_tokens: Sequence[int] | None = None, truncated: Sequence[bool] | None = None,
                  tokenizer: Any | None = None, source: str = "") -> list[dict[str, Any]]:
    """One samples-file record per completion; ``rows[i]`` is the dataset row ``completions[i]`` answers.

    Rows carry the task's columns plus ``prompt`` and ``prefill`` (the rewards read them);
    without ``truncated`` every completion counts as finished.
    """
    if len(rows) != len(completions):
        raise ValueError(f"{len(rows)} rows for {len(completions)} completions")
    if not rows:
        return []
    cfg = checked.config
    columns = {key: [row.get(key) for row in rows] for key in rows[0] if key != "prompt"}
    prompts = [row.get("prompt", "") for row in rows]
    values: dict[str, list[float | None]] = {}
    for func in checked.reward_funcs:
        values[func.__name__] = [_number(v) for v in func(prompts=prompts, completions=list(completions), **columns)]
    weights = dict(zip(values, checked.reward_weights))
    language = reward_language(cfg)
    records = []
    for i, (row, text) in enumerate(zip(rows, completions)):
        prefill = row.get("prefill") or ""
        b = describe(prefill + text, tokenizer=tokenizer, phrases=cfg.logging.reflection_phrases, language=language)
        per = {name: values[name][i] for name in values}
        records.append({
            "id": str(row.get("id", "")),
            "problem": row.get("problem", ""),
            "answer": None if row.get("answer") is None else str(row.get("answer")),
            "prompt": row.get("prompt", ""),
            "prefill": prefill,
            "completion": text,
            "rewards": per,
            "reward": sum(weights[name] * v for name, v in per.items() if v is not None),
            "correct": _flag(values, CORRECTNESS_REWARDS, i),
            "formatted": _flag(values, FORMAT_REWARDS, i),
            "language_consistency": b.language_consistency,
            "truncated": bool(truncated[i]) if truncated is not None else False,
            "completion_tokens": int(completion_tokens[i]) if completion_tokens is not None else None,
            "thinking_tokens": b.thinking_tokens,
            "reflections": b.reflections,
            "source": source,
        })
    return records
