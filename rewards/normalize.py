r"""Textual clean-up of answers and golds before they are compared: delimiters, boxes, digit groups.

Linear-time and never raising on model output, like :mod:`rewards.parsing`.

* An answer loses its math delimiters (``$...$``, ``\(...\)``, ...) and a box around it; a
  box inside other text counts only when that text holds no other number (``x = \boxed{8}``
  is 8, ``9 \text{ or } \boxed{8}`` stays as written).
* A gold with several boxes is one answer when they form one group (``\boxed{1}\boxed{2}`` is
  ``1, 2``, see :func:`rewards.parsing.final_boxed_group`) or all say the same; a gold whose
  boxes disagree is refused (None), never read from its last box.
* Thousands separators are dropped from digit groups (``1,000``, ``32,\!349``, ``10{,}000``,
  ``1\,000``, ``1 000``) when the first group does not start with 0: ``0,500`` is not 500.

>>> normalize_answer(r" $\boxed{1{,}000}$. "), normalize_answer("2**10"), normalize_answer("0,500")
('1000', '2^10', '0,500')
>>> normalize_gold(r"\boxed{1} and \boxed{2}"), normalize_gold(r"\boxed{1} ... much later ... \boxed{2}") is None
('1, 2', True)
"""

from __future__ import annotations

import re

from rewards.parsing import (
    boxed_contents,
    final_boxed_group,
    split_final_box,
    stated_final_answers,
    text_outside_boxes,
)

__all__ = ["EQUALS_RE", "drop_thousands_separators", "lists_several", "normalize_answer", "normalize_gold",
           "unwrap_delimiters"]

_DELIMITERS = (("$$", "$$"), ("$", "$"), ("\\(", "\\)"), ("\\[", "\\]"))
# A separator between digit groups: {,}  ,\!  \,  \!  \;  \ (a LaTeX space)  a plain comma or space.
_SEPARATOR = r"(?:\{,\}|,\s*\\!\s*|\\[,!; ]\s*|,| )"
_GROUPED_RE = re.compile(rf"(?<![\d.])([+-]?[1-9]\d{{0,2}})((?:{_SEPARATOR}\d{{3}})+)(?![\d])(\.\d+)?")
_SEPARATOR_RE = re.compile(_SEPARATOR)
_DIGIT_RE = re.compile(r"\d")
_GROUP_COMMA_RE = re.compile(r"(?<=\d),(?=\d{3}(?!\d))")  # 1,000 is one number, not a list
_LISTS_RE = re.compile(r"[,;]|\\quad|\band\b|\bor\b", re.IGNORECASE)
EQUALS_RE = re.compile(r"(?<![<>!=:\\])=(?!=)")
"""An equals sign that is one (not ``<=``, ``==``, ``:=`` or ``\\neq``-like)."""
_BOX_PREFIX_RE = re.compile(r"(?:\\\$|\$|\\left\(|\()\s*$")  # what may stand between '=' and the box: $, \$, (
_AFTER_BOX_RE = re.compile(r"(?:\s|\.|\$|\)|\\\)|\\\]|\\right\))*")  # what may follow it: . $ ) \) \]


def unwrap_delimiters(text: str) -> str:
    r"""``text`` without one pair of math delimiters around all of it.

    >>> unwrap_delimiters(r"\( x^2 \)"), unwrap_delimiters("$5$ and $6$"), unwrap_delimiters(r"$\$8$")
    ('x^2', '$5$ and $6$', '\\$8')
    """
    s = text.strip()
    for left, right in _DELIMITERS:
        if len(s) >= len(left) + len(right) and s.startswith(left) and s.endswith(right):
            inner = s[len(left) : len(s) - len(right)]
            if left in inner.replace("\\$", ""):
                return s  # two spans of math, not one
            return inner.strip()
    return s


def drop_thousands_separators(text: str) -> str:
    r"""Digit groups written with thousands separators, as plain numbers.

    A plain comma or space only separates groups when the whole text is one such number
    (``1,000``; ``1, 000`` and ``(1,000, 2)`` stay as written); the LaTeX separators
    (``{,}``, ``,\!``, ``\,``, ``\!``, ``\;``, ``\ ``) work inside longer expressions too.

    >>> drop_thousands_separators(r"32,\! 349"), drop_thousands_separators(r"x + 10{,}000")
    ('32349', 'x + 10000')
    >>> drop_thousands_separators("1,000.5"), drop_thousands_separators("32, 349"), drop_thousands_separators("0,500")
    ('1000.5', '32, 349', '0,500')
    """
    whole = _GROUPED_RE.fullmatch(text.strip())
    if whole:
        return whole.group(1) + _SEPARATOR_RE.sub("", whole.group(2)) + (whole.group(3) or "")

    def latex_only(match: re.Match[str]) -> str:
        groups = match.group(2)
        if any(sep.strip() in ("", ",") for sep in _SEPARATOR_RE.findall(groups)):
            return match.group(0)  # a plain comma or space inside an expression may separate items
        return match.group(1) + _SEPARATOR_RE.sub("", groups) + (match.group(3) or "")

    return _GROUPED_RE.sub(latex_only, text)


def lists_several(text: str) -> bool:
    r"""True when ``text`` lists several things (``,``, ``;``, ``\quad``, ``and``, ``or``); a digit group's comma is none.

    >>> lists_several("x = 2, y = 3"), lists_several("9 or 8"), lists_several("1,000 + 2,000 = 3,000")
    (True, True, False)
    """
    return _LISTS_RE.search(_GROUP_COMMA_RE.sub("", text)) is not None


def _ends_chain(s: str) -> str | None:
    r"""The content of a box that ends a computation or definition (``3 \times 6 = \boxed{18}``), else None.

    The box is the last thing (a period, ``$`` or ``)`` may follow), an ``=`` stands right before
    it (``\$``, ``$`` or ``(`` may come between), and nothing before it lists several things.
    """
    split = split_final_box(s)
    if split is None:
        return None
    before, content, after = split
    if not _AFTER_BOX_RE.fullmatch(after) or lists_several(before):
        return None
    lhs = _BOX_PREFIX_RE.sub("", before, count=1).rstrip()
    if not lhs.endswith("=") or EQUALS_RE.search(lhs, len(lhs) - 1) is None:
        return None
    return content


def _answer_from_boxes(s: str) -> str:
    r"""The boxed answer inside ``s`` when the boxes agree and the text around them holds no number,
    or when the one box ends a computation (``44 \times 6 = \boxed{264}``)."""
    group = final_boxed_group(s)
    if not group or not set(boxed_contents(s)) <= set(group):
        return s
    if _DIGIT_RE.search(text_outside_boxes(s)):  # another number outside the box: not a clean final answer...
        chain = _ends_chain(s) if len(boxed_contents(s)) == 1 else None
        return s if chain is None else chain  # ...unless the box is the value the computation ends in
    return ", ".join(group)


def normalize_answer(text: str) -> str:
    r"""Light textual clean-up before comparing: delimiters, a box, ``**``, the unicode minus, digit groups.

    >>> normalize_answer(r"\boxed{\frac{1}{2}}"), normalize_answer(r"x = \boxed{8}"), normalize_answer("1,234,567")
    ('\\frac{1}{2}', '8', '1234567')
    >>> normalize_answer(r"9 \text{ or } \boxed{8}")
    '9 \\text{ or } \\boxed{8}'
    """
    s = unwrap_delimiters(text)
    if "\\boxed" in s or "\\fbox" in s:
        s = unwrap_delimiters(_answer_from_boxes(s))
    s = s.rstrip(" .").replace("**", "^").replace("\u2212", "-")
    return drop_thousands_separators(s).strip()


def normalize_gold(text: str) -> str | None:
    r"""A gold answer, normalised; None when its boxes give different answers that do not form one group.

    A gold written as a solution is read like an answer: its boxes, else its "final answer
    is $...$" statements (which must agree).

    >>> normalize_gold(r"so \boxed{004}. Checked again, the remainder is \boxed{004}")
    '004'
    >>> normalize_gold(r"$\boxed{1}\boxed{2}$"), normalize_gold("72")
    ('1, 2', '72')
    """
    if "\\boxed" not in text and "\\fbox" not in text:
        stated = {normalize_answer(answer) for _end, answer in stated_final_answers(text)}
        if len(stated) > 1:
            return None
        return stated.pop() if stated else normalize_answer(text)
    everything = boxed_contents(text)
    group = final_boxed_group(text)
    if not group:
        return normalize_answer(text)
    if not set(everything) <= set(group):
        return None
    return normalize_answer(", ".join(group))
