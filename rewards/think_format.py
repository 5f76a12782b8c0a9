"""Format reward: ``<think>reasoning</think> answer`` with exactly one think block and no placeholder text."""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from rewards._base import RewardBase, check_option
from rewards.parsing import ANSWER_CLOSE, ANSWER_OPEN, THINK_OPEN, split_think

logger = logging.getLogger(__name__)

DEFAULT_PLACEHOLDERS = ("reasoning process here", "answer here")
_NON_ALNUM_RE = re.compile(r"[\W_]+")


def _squash(text: str) -> str:
    """Lower-case ``text`` and drop everything that is not a letter or digit."""
    return _NON_ALNUM_RE.sub("", text.lower())


def is_placeholder(text: str, placeholders: tuple[str, ...] | list[str] = DEFAULT_PLACEHOLDERS) -> bool:
    """True if ``text`` is (mostly) a copied placeholder phrase.

    Case, whitespace and punctuation are ignored; "mostly" means placeholder
    phrases make up at least half of the remaining characters.

    >>> is_placeholder("  Reasoning process here... ")
    True
    >>> is_placeholder("reasoning process here: 2+2=4, so the answer is four, as computed")
    False
    """
    squashed = _squash(text)
    if not squashed:
        return False
    covered = 0
    for phrase in placeholders:
        p = _squash(phrase)
        if p:
            covered += squashed.count(p) * len(p)
    return covered * 2 >= len(squashed)


def _answer_part(after: str, require_answer_tags: bool) -> str | None:
    """The answer after ``</think>``, or None if it is malformed."""
    if not require_answer_tags:
        return after.replace(ANSWER_OPEN, "").replace(ANSWER_CLOSE, "").strip() or None
    if after.count(ANSWER_OPEN) != 1 or after.count(ANSWER_CLOSE) != 1:
        return None
    head, _, rest = after.partition(ANSWER_OPEN)
    content, _, tail = rest.partition(ANSWER_CLOSE)
    if head.strip() or tail.strip() or ANSWER_CLOSE in head:
        return None
    return content.strip() or None


@dataclass(eq=False)
class ThinkFormatReward(RewardBase):
    r"""1.0 iff ``prefill + completion`` is ``<think>reasoning</think> answer``, else 0.0.

    Required: the text starts (after whitespace) with ``<think>``; exactly one
    ``<think>`` and one ``</think>``; at least ``min_think_chars`` non-blank
    characters of thinking; a non-empty answer after ``</think>`` (with
    ``require_answer_tags``: exactly one non-empty ``<answer>...</answer>`` and
    nothing but whitespace around it). Thinking or answer that is mostly a
    ``placeholders`` phrase (copied from a system prompt) scores 0.0.

    >>> reward = ThinkFormatReward(require_answer_tags=True)
    >>> good = "<think>2+2=4</think>\n<answer>4</answer>"
    >>> reward(completions=[good, "<think>reasoning process here</think><answer>4</answer>", "4"])
    [1.0, 0.0, 0.0]
    """

    name: ClassVar[str] = "think_format"
    required_columns: ClassVar[tuple[str, ...]] = ()

    require_answer_tags: bool = False
    placeholders: list[str] = field(default_factory=lambda: list(DEFAULT_PLACEHOLDERS))
    min_think_chars: int = 1

    def validate(self) -> None:
        check_option(self.name, "require_answer_tags", self.require_answer_tags, bool)
        check_option(self.name, "placeholders", self.placeholders, (list, tuple))
        for phrase in self.placeholders:
            check_option(self.name, "placeholders[]", phrase, str)
        self.placeholders = list(self.placeholders)
        check_option(self.name, "min_think_chars", self.min_think_chars, int)
        if self.min_think_chars < 0:
            raise ValueError(
                f"reward 'think_format': option 'min_think_chars' must be >= 0, got {self.min_think_chars}"
            )

    def score(self, text: str, row: Mapping[str, Any]) -> float:
        if not text.lstrip().startswith(THINK_OPEN):
            return 0.0
        split = split_think(text)
        if split.n_open != 1 or split.n_close != 1 or not split.closed or split.thinking is None:
            return 0.0
        thinking = split.thinking.strip()
        if not thinking or len(thinking) < self.min_think_chars:
            return 0.0
        answer = _answer_part(split.after, self.require_answer_tags)
        if answer is None:
            return 0.0
        if is_placeholder(thinking, self.placeholders) or is_placeholder(answer, self.placeholders):
            return 0.0
        return 1.0
