r"""Format as a gate: credit for the ``<think>`` format only together with a correct answer.

A separate format reward pays for formatted *wrong* answers too. In a GRPO group where every
answer is wrong, that format credit is the only reward that varies, and with
``scale_rewards: group`` it becomes a full-size advantage: the model learns to produce the
format and to guess (format collapse). ``format_gate`` pays only when ``think_format`` *and*
``accuracy`` both give 1.0 (DeepScaleR's "correct and formatted"), so a group of wrong answers
gets no signal from the format at all.

Use it in place of a weighted ``think_format`` and keep ``think_format`` at weight 0 as a
diagnostic (the format rate in the metrics comes from it)::

    rewards:
      - {name: accuracy, weight: 1.0}
      - {name: format_gate, weight: 0.5, format: {require_answer_tags: true}}
      - {name: think_format, weight: 0.0, require_answer_tags: true}

>>> gate = FormatGateReward(format={"require_answer_tags": True})
>>> gate(completions=["<think>2+2=4</think><answer>4</answer>",   # formatted and correct
...                   "<think>2+2=5</think><answer>5</answer>",   # formatted, wrong
...                   "the answer is <answer>4</answer>"],        # correct, not formatted
...      answer=["4", "4", "4"])
[1.0, 0.0, 0.0]
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any, ClassVar

from rewards._base import RewardBase, check_option

__all__ = ["FormatGateReward"]

logger = logging.getLogger(__name__)

#: Keyword arguments TRL gives a reward for logging; only the outer reward uses them.
_LOGGING_KWARGS = ("log_extra", "log_metric")


@dataclass(eq=False)
class FormatGateReward(RewardBase):
    """1.0 when a completion is formatted (``think_format``) and correct (``accuracy``), else 0.0.

    ``format`` holds ``think_format``'s options and ``accuracy`` the accuracy reward's (see
    ``ahazero rewards``). A completion the accuracy reward cannot score (None) gets None.

    >>> FormatGateReward(format={"min_think_chars": "x"})
    Traceback (most recent call last):
    ...
    ValueError: reward 'format_gate': option 'format': reward 'think_format': option 'min_think_chars' must be int, got str 'x'
    """

    name: ClassVar[str] = "format_gate"
    required_columns: ClassVar[tuple[str, ...]] = ("answer",)

    format: dict[str, Any] = field(default_factory=dict)
    accuracy: dict[str, Any] = field(default_factory=dict)

    def validate(self) -> None:
        check_option(self.name, "format", self.format, dict)
        check_option(self.name, "accuracy", self.accuracy, dict)
        self._inner()

    def _inner(self) -> tuple[Any, Any]:
        """The two rewards the gate combines (cheap to build; not kept, so the gate pickles by its options)."""
        from rewards import get_reward

        built = []
        for option, reward in (("format", "think_format"), ("accuracy", "accuracy")):
            try:
                built.append(get_reward(reward, **getattr(self, option)))
            except (TypeError, ValueError) as err:
                raise ValueError(f"reward 'format_gate': option '{option}': {err}") from None
        return built[0], built[1]

    def __call__(self, completions: Any = None, **kwargs: Any) -> list[float | None]:
        inner = {k: v for k, v in kwargs.items() if k not in _LOGGING_KWARGS}
        format_reward, accuracy_reward = self._inner()
        formatted = format_reward(completions, **inner)
        correct = accuracy_reward(completions, **inner)
        if len(formatted) != len(correct):  # the inner rewards never raise; a mismatch scores 0.0
            logger.warning("format_gate: %d format scores for %d accuracy scores; scoring 0.0",
                           len(formatted), len(correct))
            return [0.0] * max(len(formatted), len(correct))
        return [None if c is None else float(bool(f) and f >= 1.0 and c >= 1.0) for f, c in zip(formatted, correct)]
