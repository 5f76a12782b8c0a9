"""The R1-Zero behaviours, measured: pure functions shared by training, eval and report.

- thinking length (tokens when a tokenizer is given, else whitespace words);
- reflection, two ways: R1's words ("wait", "let me check", ...; configurable), matched as
  whole words, and Dr. GRPO's keyword pool ("recheck", "re-examine", "check again", ...),
  which its authors use to show that small models "reflect" superficially from step 0;
  both are searched in the thinking (all text before the answer when ``</think>`` is missing);
- language consistency of the chain of thought (see :mod:`rewards.language`).

Example:
    >>> find_reflections("Wait, let me re-check: 3*4 is 12. Double-check done.")
    ['wait', 're-check', 'double-check']
    >>> b = describe("<think>7*6=42, wait, verify again: yes</think><answer>42</answer>")
    >>> b.reflections, b.reflections_drgrpo
    (['wait', 'verify'], ['verify again'])
"""

from __future__ import annotations

import re
import statistics
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from rewards.language import language_consistency
from rewards.parsing import extract_answer, split_think

__all__ = [
    "DEFAULT_REFLECTION_PHRASES",
    "DRGRPO_REFLECTION_PHRASES",
    "Behaviour",
    "describe",
    "find_drgrpo_reflections",
    "find_reflections",
    "reflection_pattern",
    "reflection_text",
    "summarize",
]

#: The R1 paper's reflection words, plus common multi-word forms.
DEFAULT_REFLECTION_PHRASES: tuple[str, ...] = (
    "wait", "mistake", "however", "retry", "error", "verify", "wrong", "evaluate", "check",
    "re-check", "recheck", "rethink", "try again", "double-check", "double check", "let me check",
)

#: Dr. GRPO's self-reflection keyword pool (Liu et al. 2025, arXiv 2503.20783; the "v1" pool of
#: sail-sg/understand-r1-zero, which also lists "reevaluation" and "reexamine").
DRGRPO_REFLECTION_PHRASES: tuple[str, ...] = (
    "recheck", "rethink", "reassess", "reevaluate", "re-evaluate", "reevaluation", "re-examine", "reexamine",
    "reconsider", "reanalyze", "double-check", "check again", "think again", "verify again", "go over the steps",
)

_DRGRPO_PATTERN = re.compile(
    r"(?<![\w-])(?:" + "|".join(re.escape(p).replace(r"\ ", r"\s+")
                               for p in sorted(DRGRPO_REFLECTION_PHRASES, key=len, reverse=True)) + ")",
    re.IGNORECASE,
)


@lru_cache(maxsize=64)
def reflection_pattern(phrases: tuple[str, ...]) -> re.Pattern[str]:
    """The compiled whole-word, case-insensitive pattern for a tuple of reflection phrases.

    Example:
        >>> bool(reflection_pattern(("wait",)).search("Hmm, WAIT."))
        True
    """
    # Longest first, so "double-check" wins over "check"; word boundaries on both sides.
    ordered = sorted({p.lower() for p in phrases if p.strip()}, key=len, reverse=True)
    body = "|".join(re.escape(p).replace(r"\ ", r"\s+") for p in ordered)
    return re.compile(rf"(?<![\w-])(?:{body})(?![\w-])", re.IGNORECASE)


def find_reflections(text: str, phrases: Sequence[str] | None = None) -> list[str]:
    """Reflection phrases found in ``text``, in order, lower-cased (non-overlapping).

    Example:
        >>> find_reflections("Checking... WAIT. That is wrong; try  again")
        ['wait', 'wrong', 'try again']
    """
    pattern = reflection_pattern(tuple(phrases or DEFAULT_REFLECTION_PHRASES))
    return [re.sub(r"\s+", " ", m.group(0).lower()) for m in pattern.finditer(text or "")]


def find_drgrpo_reflections(text: str) -> list[str]:
    """Dr. GRPO's reflection keywords found in ``text``, in order, lower-cased.

    As in Dr. GRPO's own count, a keyword matches as a lower-cased prefix of a word, so
    "reconsidering" and "rechecked" count; "check" alone or "wait" do not.

    Example:
        >>> find_drgrpo_reflections("Let me RECHECK... reconsidering, wait, check  again.")
        ['recheck', 'reconsider', 'check again']
    """
    return [re.sub(r"\s+", " ", m.group(0).lower()) for m in _DRGRPO_PATTERN.finditer(text or "")]


def reflection_text(text: str) -> str:
    """The part of a completion (prefill included) that reflection is searched in.

    The thinking inside ``<think>…</think>``; without a closed think block, everything
    (a truncated or unformatted completion still counts).

    Example:
        >>> reflection_text("<think>wait, 4</think><answer>4</answer>"), reflection_text("<think>wait")
        ('wait, 4', 'wait')
    """
    parts = split_think(text)
    return parts.thinking if parts.thinking is not None else text.replace("<think>", "", 1)


def _count_tokens(text: str, tokenizer: Any | None) -> int:
    if not text:
        return 0
    if tokenizer is None:
        return len(text.split())
    return len(tokenizer(text, add_special_tokens=False)["input_ids"])


@dataclass
class Behaviour:
    """What one completion shows. ``thinking`` is None when there is no closed think block.

    ``reflections`` holds R1's words (or ``logging.reflection_phrases``), ``reflections_drgrpo``
    Dr. GRPO's keywords.
    """

    thinking: str | None
    answer: str | None
    thinking_tokens: int
    answer_tokens: int
    reflections: list[str] = field(default_factory=list)
    language_consistency: float | None = None
    reflections_drgrpo: list[str] = field(default_factory=list)

    @property
    def reflective(self) -> bool:
        """True when at least one reflection phrase appears in the thinking."""
        return bool(self.reflections)

    @property
    def reflective_drgrpo(self) -> bool:
        """True when at least one of Dr. GRPO's reflection keywords appears in the thinking."""
        return bool(self.reflections_drgrpo)


def describe(
    text: str,
    *,
    tokenizer: Any | None = None,
    phrases: Sequence[str] | None = None,
    language: str = "en",
) -> Behaviour:
    """Measure one full completion (prefill included).

    Without a closed ``</think>``, everything before the answer counts as thinking, so a
    truncated completion still reports its length and reflections.

    Example:
        >>> b = describe("<think>2+2 is 5? wrong, it is 4</think> <answer>4</answer>")
        >>> b.answer, b.thinking_tokens, b.reflections, b.reflections_drgrpo
        ('4', 7, ['wrong'], [])
    """
    parts = split_think(text)
    thinking = reflection_text(text)
    rest = parts.after if parts.thinking is not None else ""
    return Behaviour(
        thinking=parts.thinking,
        answer=extract_answer(text),
        thinking_tokens=_count_tokens(thinking.strip(), tokenizer),
        answer_tokens=_count_tokens(rest.strip(), tokenizer),
        reflections=find_reflections(thinking, phrases),
        language_consistency=language_consistency(thinking, language=language),
        reflections_drgrpo=find_drgrpo_reflections(thinking),
    )


def _quantile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q
    lo, hi = int(pos), min(int(pos) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def _mean(values: Iterable[float]) -> float | None:
    vals = list(values)
    return sum(vals) / len(vals) if vals else None


def summarize(
    behaviours: Sequence[Behaviour],
    *,
    correct: Sequence[bool] | None = None,
    formatted: Sequence[bool] | None = None,
    truncated: Sequence[bool] | None = None,
    completion_tokens: Sequence[int] | None = None,
) -> dict[str, float | None]:
    """Aggregate behaviour metrics over a step's (or an eval's) completions.

    Keys are stable metric names (``behaviour/...``); a metric that cannot be computed is None.

    Example:
        >>> bs = [describe("<think>wait, 1+1=2</think>2"), describe("<think>1+1=2</think>2")]
        >>> m = summarize(bs, correct=[True, False])
        >>> m["behaviour/reflection_rate"], m["behaviour/accuracy_reflective"]
        (0.5, 1.0)
        >>> m["behaviour/reflection_rate_drgrpo"], m["behaviour/accuracy_reflective_drgrpo"]
        (0.0, None)
        >>> m = summarize([describe("<think>a b c</think>4"), describe("<think>no end in sight")])
        >>> m["behaviour/think_tokens_mean"], m["behaviour/think_tokens_closed_mean"], m["behaviour/think_closed_rate"]
        (3.5, 3.0, 0.5)
    """
    n = len(behaviours)
    if n == 0:
        return {}
    think = [b.thinking_tokens for b in behaviours]
    closed = [b.thinking_tokens for b in behaviours if b.thinking is not None]
    total_tokens = sum(b.thinking_tokens + b.answer_tokens for b in behaviours)
    phrases = sum(len(b.reflections) for b in behaviours)
    out: dict[str, float | None] = {
        "behaviour/think_tokens_mean": sum(think) / n,
        "behaviour/think_tokens_median": float(statistics.median(think)),
        "behaviour/think_tokens_p10": _quantile(think, 0.1),
        "behaviour/think_tokens_p90": _quantile(think, 0.9),
        # only completions that closed their think block: a base model's unformatted prose
        # counts as thinking above, not here
        "behaviour/think_tokens_closed_mean": _mean(closed),
        "behaviour/think_closed_rate": len(closed) / n,
        # what follows </think> (answer tags included) in those same completions: the collapse
        # alarm compares thinking with it
        "behaviour/answer_tokens_closed_mean": _mean(b.answer_tokens for b in behaviours if b.thinking is not None),
        "behaviour/reflection_rate": sum(b.reflective for b in behaviours) / n,
        "behaviour/reflections_per_1k_tokens": 1000.0 * phrases / total_tokens if total_tokens else 0.0,
        "behaviour/reflection_rate_drgrpo": sum(b.reflective_drgrpo for b in behaviours) / n,
        "behaviour/language_consistency": _mean(
            b.language_consistency for b in behaviours if b.language_consistency is not None
        ),
        "behaviour/answer_rate": sum(b.answer is not None for b in behaviours) / n,
    }
    if correct is not None:
        out["behaviour/accuracy"] = sum(map(bool, correct)) / n
        out["behaviour/accuracy_reflective"] = _mean(float(c) for b, c in zip(behaviours, correct) if b.reflective)
        out["behaviour/accuracy_non_reflective"] = _mean(
            float(c) for b, c in zip(behaviours, correct) if not b.reflective
        )
        out["behaviour/accuracy_reflective_drgrpo"] = _mean(
            float(c) for b, c in zip(behaviours, correct) if b.reflective_drgrpo
        )
        out["behaviour/accuracy_non_reflective_drgrpo"] = _mean(
            float(c) for b, c in zip(behaviours, correct) if not b.reflective_drgrpo
        )
    if formatted is not None:
        out["behaviour/format_rate"] = sum(map(bool, formatted)) / n
    if truncated is not None:
        out["behaviour/truncation_rate"] = sum(map(bool, truncated)) / n
    if completion_tokens is not None:
        out["behaviour/completion_tokens_mean"] = sum(completion_tokens) / n
    return out
