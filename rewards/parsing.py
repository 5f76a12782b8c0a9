"""Pure text helpers shared by the rewards and by the pipeline's behaviour metrics.

Everything here is linear-time in the input, uses no recursion and never raises on
model output. Tags are matched literally and case-sensitively (``<think>``,
``</think>``, ``<answer>``, ``</answer>``).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

logger = logging.getLogger(__name__)

MAX_CHARS = 200_000
"""Texts longer than this are cut from the start before answer extraction (the answer is at the end)."""

THINK_OPEN = "<think>"
THINK_CLOSE = "</think>"
ANSWER_OPEN = "<answer>"
ANSWER_CLOSE = "</answer>"

ANSWER_SOURCES = ("any", "tags")
"""Where :func:`extract_answer` may read an answer: ``any`` (answer tags, else boxes or a stated
final answer) or ``tags`` (only ``<answer>...</answer>`` blocks)."""

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

    ``completions`` is a list; a bare string (or one chat message) is one completion, with a
    warning, never one completion per character.

    >>> completion_texts(["a", [{"role": "assistant", "content": "b"}]], prefill=["<think>", None])
    ['<think>a', 'b']
    >>> completion_texts("<answer>4</answer>")
    ['<answer>4</answer>']
    """
    if isinstance(completions, str | bytes | bytearray | Mapping):
        logger.warning("completions is a single %s, not a list: scored as one completion", type(completions).__name__)
        completions = [completions]
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


def extract_all_tagged(text: str, open_tag: str = ANSWER_OPEN, close_tag: str = ANSWER_CLOSE) -> list[str]:
    """Stripped, non-empty contents of every closed ``open_tag...close_tag`` pair, in order.

    Each ``close_tag`` pairs with the nearest ``open_tag`` before it (after the previous pair).

    >>> extract_all_tagged("<answer>1</answer> x <answer> 2 </answer><answer></answer><answer>3")
    ['1', '2']
    """
    found: list[str] = []
    position = 0
    while True:
        end = text.find(close_tag, position)
        if end < 0:
            return found
        start = text.rfind(open_tag, position, end)
        if start >= 0:
            content = text[start + len(open_tag) : end].strip()
            if content:
                found.append(content)
        position = end + len(close_tag)


def _box_index(text: str) -> tuple[list[tuple[int, int, int]], dict[int, tuple[int, int]]]:
    """Every complete outermost box as ``(box_start, content_start, content_end)``, in order, and
    ``{box_start: (content_start, content_end)}`` for every complete box, nested ones too (linear time)."""
    if not isinstance(text, str) or "\\" not in text:
        return [], {}
    stack: list[tuple[int, int]] = []  # (box_start, content_start) of a box opener, or (-1, -1) for a brace
    open_boxes = 0
    spans: list[tuple[int, int, int]] = []
    boxes: dict[int, tuple[int, int]] = {}
    for match in _BRACE_TOKEN_RE.finditer(text):
        token = match.group()
        if token[0] == "\\" and len(token) == 2:
            continue  # escaped brace
        if token == "}":
            if stack:
                box_start, content_start = stack.pop()
                if box_start >= 0:
                    boxes[box_start] = (content_start, match.start())
                    open_boxes -= 1
                    if open_boxes == 0:
                        spans.append((box_start, content_start, match.start()))
        elif token == "{":
            stack.append((-1, -1))
        else:
            stack.append((match.start(), match.end()))
            open_boxes += 1
    return spans, boxes


def _inner(text: str, boxes: dict[int, tuple[int, int]], start: int, end: int) -> str:
    """``text[start:end]`` stripped, without the boxes that wrap all of it (``\\boxed{\\boxed{3}}`` holds 3)."""
    while True:
        while start < end and text[start].isspace():
            start += 1
        while end > start and text[end - 1].isspace():
            end -= 1
        inner = boxes.get(start)
        if inner is None or inner[1] != end - 1:
            return text[start:end]
        start, end = inner


def _box_contents(text: str) -> tuple[list[tuple[int, int, int]], list[str]]:
    """The outermost boxes and their contents (stripped and unwrapped; may be empty)."""
    spans, boxes = _box_index(text)
    return spans, [_inner(text, boxes, content_start, content_end) for _s, content_start, content_end in spans]


def boxed_contents(text: str) -> list[str]:
    r"""Stripped, non-empty contents of every complete outermost ``\boxed{}``/``\fbox{}``, in order.

    >>> boxed_contents(r"\boxed{1} then \boxed{\boxed{2}} and \boxed{} \boxed{open")
    ['1', '2']
    """
    return [content for content in _box_contents(text)[1] if content]


def split_final_box(text: str) -> tuple[str, str, str] | None:
    r"""``(before, content, after)`` around the last complete outermost box, content stripped; None without one.

    >>> split_final_box(r"3 \times 6 = \boxed{ 18 }.")
    ('3 \\times 6 = ', '18', '.')
    """
    spans, boxes = _box_index(text)
    if not spans:
        return None
    box_start, content_start, content_end = spans[-1]
    return text[:box_start], _inner(text, boxes, content_start, content_end), text[content_end + 1 :]


def text_outside_boxes(text: str) -> str:
    r"""``text`` with every complete outermost box (command and content) removed.

    >>> text_outside_boxes(r"x = \boxed{8} cm")
    'x =  cm'
    """
    parts, position = [], 0
    for box_start, _content_start, content_end in _box_index(text)[0]:
        parts.append(text[position:box_start])
        position = content_end + 1
    parts.append(text[position:] if isinstance(text, str) else "")
    return "".join(parts)


_BOX_NEAR = 10
_BOX_FAR = 70
_BOX_SEPARATOR_RE = re.compile(r"\b(?:and|or)\b|[,;]")


def final_boxed_group(text: str) -> list[str]:
    r"""Contents of the last box and of the boxes that belong with it (one answer given in several boxes).

    Going back from the last box, an earlier box joins when fewer than 10 characters lie
    between the two, or fewer than 70 with ``and``, ``or``, ``,`` or ``;`` among them (and a
    different content); the first box that does not join ends the group, so a draft answer
    boxed early in a solution is not part of the final one. Math-Verify groups boxes the same
    way. Repeated contents are kept once.

    >>> final_boxed_group(r"\boxed{1}, \boxed{2} and \boxed{3}")
    ['1', '2', '3']
    >>> final_boxed_group(r"a draft: \boxed{4}. Checking every step again shows a slip in the sum. So \boxed{8}")
    ['8']
    """
    all_spans, all_contents = _box_contents(text)
    kept = [(span, content) for span, content in zip(all_spans, all_contents, strict=True) if content]
    if not kept:
        return []
    spans, contents = [span for span, _c in kept], [content for _s, content in kept]
    group = [len(spans) - 1]
    for i in range(len(spans) - 2, -1, -1):
        between = text[spans[i][2] + 1 : spans[group[-1]][0]]
        near = len(between) < _BOX_NEAR
        joined = len(between) < _BOX_FAR and contents[i] != contents[group[-1]] and _BOX_SEPARATOR_RE.search(between)
        if not (near or joined):
            break
        group.append(i)
    return _distinct(contents[i] for i in reversed(group))


def _distinct(items: Iterable[str]) -> list[str]:
    """Non-empty items in order, each once (linear time)."""
    seen: set[str] = set()
    out = []
    for item in items:
        if item and item not in seen:
            seen.add(item)
            out.append(item)
    return out


def extract_boxed(text: str) -> str | None:
    r"""The final boxed answer: the contents of :func:`final_boxed_group` joined with ``", "``, or None.

    Braces are balanced with an explicit stack (no recursion, linear time); escaped braces
    ``\{`` and ``\}`` do not count; a box that only wraps another box gives its content.

    >>> extract_boxed(r"so \boxed{1}. Checking every step once more shows the slip. It is \boxed{\frac{1}{2}}")
    '\\frac{1}{2}'
    >>> extract_boxed(r"\boxed{1} and \boxed{2}"), extract_boxed(r"\boxed{\boxed{3}}"), extract_boxed(r"\boxed{}")
    ('1, 2', '3', None)
    """
    group = final_boxed_group(text)
    return ", ".join(group) if group else None


# "Final Answer: The final answer is $X$. I hope it is correct." (the Minerva format for MATH); bounded lengths
_STATED_RE = re.compile(
    r"final answer[^$\n]{0,100}?\bis:?\s*(\$\$[^$]{1,500}\$\$|\$[^$]{1,500}\$|\\\((?:(?!\\\)).){1,500}\\\)"
    r"|\\\[(?:(?!\\\]).){1,500}\\\])",
    re.IGNORECASE | re.DOTALL,
)


def stated_final_answers(text: str) -> list[tuple[int, str]]:
    r"""``(start, answer)`` for every "final answer is $...$" statement, the math delimiters kept.

    >>> stated_final_answers("Final Answer: The final answer is $10,455$. I hope it is correct.")
    [(0, '$10,455$')]
    """
    if not isinstance(text, str) or "final answer" not in text.lower():
        return []
    return [(m.start(), m.group(1).strip()) for m in _STATED_RE.finditer(text)]


# GSM8K's "#### 72" line, and "The answer is 72." (chain-of-thought few-shot prompts), as lm-eval reads them
_HASHES_RE = re.compile(r"^[ \t]*####[ \t]*([^\n]{1,200}?)[ \t]*$", re.MULTILINE)
_ANSWER_IS_RE = re.compile(r"\b(?:the\s+)?(?:final\s+)?answer\s+is\s*:?[ \t]*([^\n]{1,200}?)(?:\.?[ \t]*$|[.!?]\s)",
                           re.IGNORECASE | re.MULTILINE)
_ANSWERISH_RE = re.compile(r"[\d\\]")


def stated_answer(text: str) -> str | None:
    r"""The last answer stated in plain text: a ``#### 72`` line (GSM8K's format) or "The answer is 72." (its
    chain-of-thought prompts), whichever comes last; None when neither holds a number or a LaTeX command.

    >>> stated_answer("She has 8 * 9 = 72 marbles.\n#### 72"), stated_answer("So the answer is $1,000. Done.")
    ('72', '$1,000')
    >>> stated_answer("I am not sure the answer is right.") is None
    True
    """
    if not isinstance(text, str) or ("####" not in text and "answer" not in text.lower()):
        return None
    found = [(m.start(), m.group(1).strip()) for regex in (_HASHES_RE, _ANSWER_IS_RE) for m in regex.finditer(text)]
    found = [(start, answer) for start, answer in found if _ANSWERISH_RE.search(answer)]
    return max(found)[1] if found else None


def extract_answer(text: str, source: str = "any") -> str | None:
    r"""Final answer of a completion, or None.

    Looks in the part after ``</think>`` when there is a closed think block, else in the
    whole text: the contents of the ``<answer>...</answer>`` blocks (several different ones
    are all the answer, joined with ``", "`` on one line: a model cannot offer a list of
    guesses and be graded on its last), else the final boxed answer (:func:`extract_boxed`)
    or, when it starts after the last box, the last "final answer is $...$" statement. A box
    or statement after the last answer block is the answer: it was stated last. Only when
    none of these is there, a ``#### 72`` line or "The answer is 72." is read
    (:func:`stated_answer`), as lm-eval reads GSM8K.

    With ``source="tags"`` only the answer blocks count (a ``\boxed{}`` inside one is
    unwrapped when the answer is normalised); a completion without one has no answer.
    Whitespace is stripped and an empty answer counts as none. Inputs longer than
    :data:`MAX_CHARS` keep only their tail.

    >>> extract_answer("<think>maybe <answer>3</answer></think> <answer> 4 </answer>")
    '4'
    >>> extract_answer("<answer>9</answer> <answer>8</answer> <answer>9</answer>")
    '9, 8'
    >>> extract_answer(r"<answer>Ann has 9.</answer> <answer>Bo has 8.</answer> So Bo has \boxed{8}.")
    '8'
    >>> extract_answer(r"The answer is $\boxed{\frac{1}{2}}$.")
    '\\frac{1}{2}'
    >>> extract_answer(r"The answer is $\boxed{8}$.", source="tags") is None
    True
    >>> extract_answer(r"<answer>\boxed{8}</answer>", source="tags")
    '\\boxed{8}'
    >>> extract_answer("<think>no answer after the block</think>") is None
    True
    >>> extract_answer("<think>6 * 12 = 72</think> The answer is 72."), extract_answer("6 * 12 = 72\n#### 72")
    ('72', '72')
    """
    if source not in ANSWER_SOURCES:
        raise ValueError(f"answer source must be one of {', '.join(ANSWER_SOURCES)}, got {source!r}")
    if not isinstance(text, str) or not text:
        return None
    if len(text) > MAX_CHARS:
        text = text[-MAX_CHARS:]
    region = split_think(text).after
    answers = _distinct(extract_all_tagged(region))
    if len(answers) > 1:  # a list, on one line: never read as its last line (rewards.sentences)
        answers = [" ".join(answer.split()) for answer in answers]
    tagged = ", ".join(answers) if answers else None
    if source == "tags":
        return tagged
    if answers:
        region = region[region.rfind(ANSWER_CLOSE) + len(ANSWER_CLOSE) :]
    return _stated_or_boxed(region) or tagged or stated_answer(region)


def _stated_or_boxed(region: str) -> str | None:
    """The last "final answer is $...$" statement when it starts after the last box, else the final box."""
    stated = stated_final_answers(region)
    if stated:
        spans = _box_index(region)[0]
        if not spans or stated[-1][0] > spans[-1][2]:
            return stated[-1][1]
    return extract_boxed(region)
