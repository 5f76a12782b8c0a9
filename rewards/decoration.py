r"""The number inside a decorated answer: ``$8``, ``8 cm``, ``x = 8``, ``50\%``, ``90^\circ`` are all a number.

Graders in the field read GSM8K and MATH answers through this kind of decoration; the
accuracy reward's literal test (``literal_numbers``) compares the bare numbers exactly.
:func:`number_core` peels, from the outside in and only as a whole:

* math delimiters and a leading label (``Answer:``, ``The final answer is``);
* everything up to the last ``=`` of a definition or computation (``x = 5 + 6 = 11`` and
  ``44 \times 6 = 264`` state one value, the last; ``2x + z = 1`` is an equation and states none),
  unless the text lists several things (a ``,``, ``;``, ``and``, ``or``), and an
  approximation after an exact value (``1/3 \approx 0.33`` states 1/3; ``x \approx 11`` states 11);
* currency (``$``, ``\$``, ``€``, ``£``, ``¥``, ``USD``), percent (``%``, ``\%``, ``percent``),
  degrees (``^\circ``, ``°``, ``degrees``);
* units: a ``\text{..}``/``\mathrm{..}``/``\mbox{..}`` or up to three plain words after the
  number (``8 cm``, ``8 hours``, ``\text{ cm}^2``), never a word that changes the value or
  adds another (``or``, ``and``, ``times``, ``thousand``, ``squared``, ``pi``, number words,
  single letters other than the units m, g, s, h, L);
* one pair of parentheses or braces, and LaTeX spacing.

What remains must be a plain number literal (:func:`rewards.literals.is_number_literal`),
else the answer has no number core: ``44 * 6``, ``8 or 9`` and ``8, 9, 10`` have none.

>>> [number_core(t) for t in ("$8", r"\$8", "8 cm", "8 hours", "x = 8", r"50\%", r"90^\circ")]
['8', '8', '8', '8', '8', '50', '90']
>>> [number_core(t) for t in ("44 * 6", "8 or 9", "8, 9, 10", "8 thousand", "2 pi", "x = 2, y = 3", "a + 3z = 0")]
[None, None, None, None, None, None, None]
>>> number_core("x = 1,000"), number_core("x = 5 + 5 + 1 = 11"), number_core(r"x = 1/3 \approx 0.33")
('1000', '11', '1/3')
>>> number_core(r"x \approx 11"), number_core("f(2) = 8"), number_core(r"44 \times 6 = 264")
('11', '8', '264')
"""

from __future__ import annotations

import re

from rewards.literals import is_number_literal
from rewards.normalize import EQUALS_RE, drop_thousands_separators, lists_several, unwrap_delimiters

__all__ = ["MAX_DECORATED_CHARS", "number_core"]

MAX_DECORATED_CHARS = 200
"""Longer answers are not searched for a decorated number."""

_MAX_PEELS = 12
_SINGLE_LETTER_UNITS = frozenset("mgshL")
_NOT_UNITS = frozenset(
    """or and nor not no to plus minus times divided over by than of is equals equal approximately about around
    roughly least most maybe perhaps probably either neither both between from except but if else then so because
    since choose mod squared cubed factorial percent pct percentage hundred hundreds thousand thousands million
    millions billion billions trillion trillions dozen dozens half halves quarter quarters third thirds fourth
    fourths fifth fifths bn mn mil lakh lakhs crore crores pi ln log sin cos tan exp sqrt inf infinity none zero
    one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen seventeen
    eighteen nineteen twenty thirty forty fifty sixty seventy eighty ninety""".split()
)

_LABEL_RE = re.compile(r"^(?:the\s+)?(?:final\s+)?answer\b(?:\s+is)?\s*[:=]?\s*", re.IGNORECASE)
# a variable (x, AB, x_1, S_{10}) or a function value (f(2), P(A))
_NAME_RE = re.compile(r"[A-Za-z][A-Za-z0-9]{0,15}(?:_\{?[A-Za-z0-9]{1,8}\}?)?(?:\([^()=]{1,20}\))?")
_COMMAND_RE = re.compile(r"\\[A-Za-z]+")
_CURRENCY = r"(?:\\\$|\$|€|£|¥|\\euro|\\pounds|US\\?\$|USD|EUR)"
_LEADING_CURRENCY_RE = re.compile(rf"^([+-]?)\s*{_CURRENCY}\s*")
_TRAILING_CURRENCY_RE = re.compile(rf"\s*{_CURRENCY}$")
_PERCENT_RE = re.compile(r"\s*(?:\\%|%|\\text\{\s*\\?%\s*\}|percent(?:age)?|pct)$", re.IGNORECASE)
_DEGREE_RE = re.compile(r"\s*(?:\^\s*\{?\s*\\circ\s*\}?|°|\\degree|degrees?)(?:\s*[CF])?$")
_POWER = r"(?:\s*\^\s*\{?\s*[23]\s*\}?|[²³])?"
_TEXT_UNIT_RE = re.compile(rf"(?<=[\d}}).])\s*\\(?:text|textnormal|textrm|textbf|textit|mathrm|mbox)\s*\{{([^{{}}]*)\}}{_POWER}$")
_WORD_UNIT_RE = re.compile(rf"(?<=[\d}}).])\s*((?:[A-Za-z]+\.?(?:/[A-Za-z]+)?\s*){{1,3}}){_POWER}$")
_SPACING_RE = re.compile(r"\\[,;:! ]|~|\\quad|\\qquad")
_PAIRS = (("\\left(", "\\right)"), ("(", ")"), ("{", "}"))


def _unit_words_ok(words: str) -> bool:
    """True when every word of ``words`` reads as (part of) a unit: letters only, none that changes the value."""
    if re.search(r"[^A-Za-z\s./'-]", words):
        return False
    tokens = re.findall(r"[A-Za-z]+", words)
    if not tokens:
        return True  # e.g. an empty \text{ }
    return all((len(t) >= 2 or t in _SINGLE_LETTER_UNITS) and t.lower() not in _NOT_UNITS for t in tokens)


def _names_or_computes(lhs: str) -> bool:
    """True for the left side of a definition (``x``, ``f(2)``) or a computation (``44 \\times 6``), not an equation."""
    lhs = lhs.strip()
    return bool(lhs) and (_NAME_RE.fullmatch(lhs) is not None or not re.search(r"[A-Za-z]", _COMMAND_RE.sub("", lhs)))


def _peel_once(s: str, parens_left: bool) -> tuple[str, bool]:
    """One layer of decoration off ``s``; returns the rest and whether a pair of parentheses may still go."""
    s = unwrap_delimiters(s).rstrip(" .").strip()
    for regex in (_LABEL_RE, _LEADING_CURRENCY_RE):
        match = regex.match(s)
        if match and match.end() < len(s):
            return (match.group(1) if regex is _LEADING_CURRENCY_RE else "") + s[match.end() :], parens_left
    if not lists_several(s):
        parts = EQUALS_RE.split(s)
        if len(parts) > 1 and _names_or_computes(parts[0]) and parts[-1].strip():
            return parts[-1], parens_left  # the last value of a chain
        before, approx, after = s.partition("\\approx")
        if approx and before.strip() and after.strip():
            return (after if _NAME_RE.fullmatch(before.strip()) else before), parens_left
    for regex in (_TRAILING_CURRENCY_RE, _PERCENT_RE, _DEGREE_RE):
        match = regex.search(s)
        if match and match.start() > 0:
            return s[: match.start()], parens_left
    for regex in (_TEXT_UNIT_RE, _WORD_UNIT_RE):
        match = regex.search(s)
        if match and match.start() > 0 and _unit_words_ok(match.group(1)):
            return s[: match.start()], parens_left
    if parens_left:
        for left, right in _PAIRS:
            if s.startswith(left) and s.endswith(right) and len(s) > len(left) + len(right):
                return s[len(left) : len(s) - len(right)], False
    return s, parens_left


def number_core(text: str) -> str | None:
    r"""The plain number an answer states under harmless decoration, or None when it states no single number.

    Thousands separators are read as in :func:`rewards.normalize.drop_thousands_separators`
    (``0,500`` is not a number here).

    >>> number_core(r"The answer is \$1,000.50"), number_core(r"\frac{1}{3} \text{ meters}"), number_core("(8)")
    ('1000.50', '\\frac{1}{3}', '8')
    >>> number_core("((8))"), number_core("0,500"), number_core(r"8\,\text{cm}^2"), number_core("-$8")
    (None, None, '8', '-8')
    """
    if not isinstance(text, str) or len(text) > MAX_DECORATED_CHARS:
        return None
    s = _SPACING_RE.sub(" ", drop_thousands_separators(text.strip())).strip()
    parens_left = True
    for _ in range(_MAX_PEELS):
        if is_number_literal(s):
            return s.strip()
        before = s
        s, parens_left = _peel_once(s, parens_left)
        s = _SPACING_RE.sub(" ", drop_thousands_separators(s)).strip() if s != before else s
        if s == before:
            return None
    return s.strip() if is_number_literal(s) else None
