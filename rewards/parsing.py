"""Pure text helpers shared by the rewards and by the pipeline's behaviour metrics.

Everything here is linear-time in the input, uses no recursion and never raises on
model output. Tags are matched literally and case-sensitively (``<think>``,
``</think>``, ``<answer>``, ``</answer>``).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

logger = logging.getLogger(__name__)

MAX_CHARS = 200_000
"""Texts longer than this are cut from the start before answer extraction (the answer is at the end)."""

THINK_OPEN = "<think>"
THINK_CLOSE = "</think>"
ANSWER_OPEN = "<answer>"
ANSWER_CLOSE = "</answer>"

# One token per match: an escaped brace (ignored), a \boxed{ / \fbox{ opener, or a plain brace.
_BRACE_TOKEN_RE = re.compile(r"\\[{}]|\\(?:boxed|fbox)\s*\{|[{}]")


@dataclass(frozen=True, slots=True)
class ThinkSplit:
    """Result of :func:`split_think`.

    >>> ThinkSplit(thinking="a", after="b", n_open=1, n_close=1, closed=True).after
    'b'
    """

    thinking: str | None
    after: str
    n_open: int
    n_close: int
    closed: bool


def _content_text(content: Any) -> str:
    """Text of one message ``content``: a string or a list of ``{"type": "text", "text": ...}`` blocks."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, Sequence) and not isinstance(content, (bytes, bytearray)):
        parts: list[str] = []
        for block in content:
            if isinstance(block, str):
                parts.append(block)
            elif (
                isinstance(block, Mapping)
                and isinstance(block.get("text"), str)
                and block.get("type", "text") == "text"
            ):
                parts.append(block["text"])
        return "".join(parts)
    return ""


def completion_text(completion: Any, prefill: str | None = "") -> str:
    """Return ``prefill + text`` of one completion; never raises.

    ``completion`` is a plain string or a list of chat messages; the contents of
    the assistant messages (or messages without a role) are joined with newlines.

    >>> completion_text("42</think> 7", prefill="<think>")
    '<think>42</think> 7'
    >>> completion_text([{"role": "assistant", "content": [{"type": "text", "text": "hi"}]}])
    'hi'
    >>> completion_text(None, prefill="<think>")
    '<think>'
    """
    head = prefill if isinstance(prefill, str) else ""
    try:
        if isinstance(completion, str):
            return head + completion
        if completion is None:
            return head
        if isinstance(completion, (bytes, bytearray)):
            return head + bytes(completion).decode("utf-8", errors="replace")
        if isinstance(completion, Mapping):
            completion = [completion]
        if isinstance(completion, Sequence):
            texts = [
                _content_text(msg.get("content"))
                for msg in completion
                if isinstance(msg, Mapping) and msg.get("role", "assistant") == "assistant"
            ]
            return head + "\n".join(texts)
        return head + str(completion)
    except Exception as exc:  # noqa: BLE001 - must never raise on model output
        logger.warning("could not read completion (%s: %s)", type(exc).__name__, exc)
        return head


def completion_texts(completions: Any, prefill: Sequence[str | None] | None = None) -> list[str]:
    """Vectorised :func:`completion_text`; ``prefill`` is None or one entry (or None) per completion.

    >>> completion_texts(["a", [{"role": "assistant", "content": "b"}]], prefill=["<think>", None])
    ['<think>a', 'b']
    """
    try:
        items = list(completions) if completions is not None else []
    except Exception:  # noqa: BLE001
        logger.warning("completions is not iterable: %s", type(completions).__name__)
        return []
    prefills: list[Any] = []
    if isinstance(prefill, str):  # lenient: one prefill for every completion
        prefills = [prefill] * len(items)
    elif prefill is not None:
        try:
            prefills = list(prefill)
        except Exception:  # noqa: BLE001
            prefills = []
    prefills = prefills[: len(items)] + [None] * max(0, len(items) - len(prefills))
    return [completion_text(c, p) for c, p in zip(items, prefills, strict=True)]


def split_think(text: str) -> ThinkSplit:
    """Split ``text`` at the first closed ``<think>...</think>`` block.

    A block is closed when a ``</think>`` follows the first ``<think>``. Without a
    closed block, ``thinking`` is None and ``after`` is the whole text.

    >>> s = split_think("<think> 2+2=4 </think> <answer>4</answer>")
    >>> (s.thinking, s.after, s.n_open, s.n_close, s.closed)
    (' 2+2=4 ', ' <answer>4</answer>', 1, 1, True)
    >>> split_think("no tags").thinking is None
    True
    """
    if not isinstance(text, str):
        text = ""
    n_open = text.count(THINK_OPEN)
    n_close = text.count(THINK_CLOSE)
    start = text.find(THINK_OPEN)
    if start >= 0:
        end = text.find(THINK_CLOSE, start + len(THINK_OPEN))
        if end >= 0:
            return ThinkSplit(
                thinking=text[start + len(THINK_OPEN) : end],
                after=text[end + len(THINK_CLOSE) :],
                n_open=n_open,
                n_close=n_close,
                closed=True,
            )
    return ThinkSplit(thinking=None, after=text, n_open=n_open, n_close=n_close, closed=False)


def extract_tagged(text: str, open_tag: str = ANSWER_OPEN, close_tag: str = ANSWER_CLOSE) -> str | None:
    """Stripped content of the LAST ``open_tag...close_tag`` pair, or None (also when empty).

    The pair is the last ``open_tag`` that has a ``close_tag`` after it, up to the
    first such ``close_tag``.

    >>> extract_tagged("<answer>1</answer> <answer> 2 </answer>")
    '2'
    >>> extract_tagged("<answer>1</answer> <answer> 2 (unclosed)")
    '1'
    """
    last_close = text.rfind(close_tag)
    if last_close < 0:
        return None
    start = text.rfind(open_tag, 0, last_close)
    if start < 0:
        return None
    end = text.find(close_tag, start + len(open_tag))
    content = text[start + len(open_tag) : end].strip()
    return content or None


def extract_boxed(text: str) -> str | None:
    r"""Stripped content of the last complete ``\boxed{...}`` (or ``\fbox{...}``), or None.

    Braces are balanced with an explicit stack (no recursion, linear time);
    escaped braces ``\{`` and ``\}`` do not count. "Last" means the complete
    box that opens last, so ``\boxed{\boxed{3}}`` gives ``3``.

    >>> extract_boxed(r"so \boxed{1} or rather \boxed{\frac{1}{2}}")
    '\\frac{1}{2}'
    >>> extract_boxed(r"\boxed{}") is None
    True
    """
    if not isinstance(text, str) or "\\" not in text:
        return None
    stack: list[int] = []  # content start of a box, or -1 for a plain brace
    best: tuple[int, int] | None = None
    for match in _BRACE_TOKEN_RE.finditer(text):
        token = match.group()
        if token[0] == "\\" and len(token) == 2:
            continue  # escaped brace
        if token == "}":
            if stack:
                opened = stack.pop()
                if opened >= 0 and (best is None or opened > best[0]):
                    best = (opened, match.start())
        elif token == "{":
            stack.append(-1)
        else:
            stack.append(match.end())
    if best is None:
        return None
    content = text[best[0] : best[1]].strip()
    return content or None


def extract_answer(text: str) -> str | None:
    r"""Final answer of a completion, or None.

    Looks in the part after ``</think>`` when there is a closed think block, else
    in the whole text: the content of the last ``<answer>...</answer>``, else the
    content of the last ``\boxed{...}``/``\fbox{...}``. Whitespace is stripped and
    an empty answer counts as none. Inputs longer than :data:`MAX_CHARS` keep only
    their tail.

    >>> extract_answer("<think>maybe <answer>3</answer></think> <answer> 4 </answer>")
    '4'
    >>> extract_answer(r"The answer is $\boxed{\frac{1}{2}}$.")
    '\\frac{1}{2}'
    >>> extract_answer("<think>no answer after the block</think>") is None
    True
    """
    if not isinstance(text, str) or not text:
        return None
    if len(text) > MAX_CHARS:
        text = text[-MAX_CHARS:]
    region = split_think(text).after
    return extract_tagged(region) or extract_boxed(region)
