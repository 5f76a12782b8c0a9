"""Language-consistency reward (DeepSeek-R1): the share of chain-of-thought words in the target language."""

from __future__ import annotations

import logging
import re
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

from rewards._base import RewardBase, check_option
from rewards.parsing import MAX_CHARS, THINK_OPEN, split_think

logger = logging.getLogger(__name__)

_HAN = "\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003ffff"
_KANA = "\u3040-\u309f\u30a0-\u30ff\u31f0-\u31ff\uff66-\uff9f"
_HANGUL = "\uac00-\ud7af\u1100-\u11ff\u3130-\u318f"
_CYRILLIC = "\u0400-\u052f"
_CJK = _HAN + _KANA + _HANGUL

_COMMAND_RE = re.compile(r"\\[A-Za-z]+")  # LaTeX commands such as \frac are not words
_TAG_RE = re.compile(r"</?[A-Za-z_][\w-]*>")  # <think>, </answer>, ...
_TOKEN_RE = re.compile(rf"[{_CJK}]|[^\W\d_{_CJK}]+")
_HAN_RE = re.compile(rf"[{_HAN}]+")
_JA_RE = re.compile(rf"[{_HAN}{_KANA}]+")
_HANGUL_RE = re.compile(rf"[{_HANGUL}]+")
_CYRILLIC_RE = re.compile(rf"[{_CYRILLIC}]+")


def _matcher(pattern: re.Pattern[str]) -> Callable[[str], bool]:
    def check(word: str) -> bool:
        return pattern.fullmatch(word) is not None

    return check


LANGUAGES: dict[str, Callable[[str], bool]] = {
    "en": str.isascii,  # words are letters only, so ASCII means a-z / A-Z
    "zh": _matcher(_HAN_RE),
    "ja": _matcher(_JA_RE),
    "ko": _matcher(_HANGUL_RE),
    "ru": _matcher(_CYRILLIC_RE),
}
"""Target language -> predicate telling whether one word belongs to it."""


def _check_language(language: Any) -> str:
    if not isinstance(language, str) or language not in LANGUAGES:
        raise ValueError(f"unknown language {language!r}; valid choices: {', '.join(sorted(LANGUAGES))}")
    return language


def words(text: str) -> list[str]:
    r"""Split ``text`` into words.

    Each CJK ideograph / kana / hangul character is one word; other words are
    maximal runs of letters. Digits, punctuation, math symbols, LaTeX commands
    (``\frac``) and ``<tags>`` are dropped.

    >>> words(r"Let x = \frac{1}{2}, 所以 y²!")
    ['Let', 'x', '所', '以', 'y']
    """
    text = unicodedata.normalize("NFC", _COMMAND_RE.sub(" ", _TAG_RE.sub(" ", text)))
    out: list[str] = []
    for token in _TOKEN_RE.findall(text):
        word = token if token.isalpha() else "".join(ch for ch in token if ch.isalpha())
        if word:
            out.append(word)
    return out


def chain_of_thought(text: str) -> str:
    """The chain of thought of a completion (``prefill`` included).

    The thinking inside the first closed ``<think>...</think>``; if the block is
    never closed, everything after the first ``<think>``; with no ``<think>`` at all,
    the whole text (a model that skips the think block is judged on all it wrote).

    >>> chain_of_thought("<think>a b</think> c"), chain_of_thought("<think>a b"), chain_of_thought("a b")
    ('a b', 'a b', 'a b')
    """
    split = split_think(text)
    if split.thinking is not None:
        return split.thinking
    start = text.find(THINK_OPEN)
    return text[start + len(THINK_OPEN) :] if start >= 0 else text


def language_consistency(text: str, language: str = "en") -> float | None:
    """Proportion of the words of ``text`` that are in ``language``; None if there are no words.

    >>> language_consistency("The sum is 4, 四")
    0.75
    >>> language_consistency("所以答案 four", language="zh")
    0.8
    >>> language_consistency("2 + 2 = 4") is None
    True
    """
    in_language = LANGUAGES[_check_language(language)]
    if not isinstance(text, str):
        return None
    found = words(text[:MAX_CHARS])
    if not found:
        return None
    return sum(1 for w in found if in_language(w)) / len(found)


@dataclass(eq=False)
class LanguageConsistencyReward(RewardBase):
    """Share of the chain-of-thought words (see :func:`chain_of_thought`) in ``language``.

    Returns None (not applicable) for a completion without words.

    >>> reward = LanguageConsistencyReward(language="en")
    >>> reward(completions=["<think>we add 所以</think> 4", "42"], prefill=["", None])
    [0.5, None]
    """

    name: ClassVar[str] = "language_consistency"
    required_columns: ClassVar[tuple[str, ...]] = ()

    language: str = "en"

    def validate(self) -> None:
        check_option(self.name, "language", self.language, str)
        _check_language(self.language)

    def score(self, text: str, row: Mapping[str, Any]) -> float | None:
        return language_consistency(chain_of_thought(text), self.language)
