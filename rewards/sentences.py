r"""The number an answer's last line states: ``Anne is 8 years old.``, ``Dean has $21 left.``.

Small models put a sentence in their answer tags (``<answer>Brandon's iPhone is 8 years
old.</answer>``), or a worked solution whose last line states the result; a grader in the
field reads the number there. :func:`sentence_number` reads the last non-blank line (the lines
before it are the work, and are not read) when it is one sentence of at most
:data:`rewards.decoration.MAX_DECORATED_CHARS` characters, in one of two shapes:

* **one number among plain words**: the sentence holds exactly one number (``$`` and ``%``
  allowed around it) and otherwise only words, none of which changes or hedges the value
  (``not``, ``or``, ``about``, ``than``, ``thousand``, ``half``, ``twice``, number words...);
* **a computation that ends the sentence**: ``Violetta will get $20 - $10 = $10.`` states its
  last value, as ``44 \times 6 = 264`` does (:mod:`rewards.decoration`); the part before the
  first ``=`` may be words and arithmetic (no variables: ``2x + z = 8`` is an equation), the
  parts after it only arithmetic, and the last a decorated number.

Nothing else is read: a last line of several sentences (``Anne is 8. Bob is 9.``), two
numbers in words (``She sells 9 eggs for $18.``), LaTeX inside the sentence, a factorial
(``8!`` is 40320: sympy may compare it, it is never read as 8). Several answer
blocks are joined into one line by :func:`rewards.parsing.extract_answer`, so a list of
answers is never read as its last one.

>>> [sentence_number(t) for t in ("Anne is 8 years old.", "Dean has $21 left.", "Violetta will get $20 - $10 = $10.")]
['8', '21', '10']
>>> [sentence_number(t) for t in ("It is not 8.", "8 or 9 apples", "2x + z = 8", "She sells 9 eggs for $18.", "8!")]
[None, None, None, None, None]
"""

from __future__ import annotations

import re

from rewards.decoration import MAX_DECORATED_CHARS, number_core
from rewards.literals import is_number_literal
from rewards.normalize import drop_thousands_separators

__all__ = ["last_line", "sentence_number"]

# Words that make a stated number something else: a hedge, a negation, an alternative, a comparison.
_HEDGES = frozenset(
    """or nor not no never cannot maybe perhaps probably possibly approximately approx about around roughly nearly
    almost over under least most either neither between except unless if than instead but isn't aren't wasn't
    weren't won't don't doesn't didn't can't couldn't shouldn't wouldn't""".split()
)
# Words that change the value of the one number next to them (the only number in the sentence).
_CHANGES = frozenset(
    """plus minus times divided multiplied squared cubed factorial hundred hundreds thousand thousands million
    millions billion billions trillion trillions dozen dozens half halves quarter quarters third thirds fourth
    fourths fifth fifths twice double triple thrice bn mn mil lakh lakhs crore crores pi ln log sin cos tan exp
    sqrt inf infinity zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen
    sixteen seventeen eighteen nineteen twenty thirty forty fifty sixty seventy eighty ninety""".split()
)
_NUMBER_RE = re.compile(r"(?<![\w.])([+-]?)\$?(\d+(?:[.,/]\d+)*)(?![\w])", re.ASCII)
_WORD_RE = re.compile(r"[A-Za-z]+(?:['’][A-Za-z]+)*")
_SENTENCE_END_RE = re.compile(r"[.!?][\"')]*\s+\S")
# what may stand between words and the number of a plain sentence: spaces, light punctuation, $ and %
_PLAIN_REST_RE = re.compile(r"[A-Za-z'’\s,:;!?.\-$%]*")
_TIMES_RE = re.compile(r"(?<=[\d)])\s+[xX×]\s+(?=[$\d(])")
_ARITHMETIC_RE = re.compile(r"[\d\s.,$%+\-*/×÷()]*", re.ASCII)
_COMMANDS_RE = re.compile(r"\\(?:times|cdot|div)(?![A-Za-z])")
_FACTORIAL_RE = re.compile(r"[\d)}]!(?!=)")  # 8! is 40320, not an exclaimed 8


def _words(text: str) -> list[str]:
    return [w.lower().replace("’", "'") for w in _WORD_RE.findall(text)]


def _plain_words(words: list[str], banned: frozenset[str]) -> bool:
    """True when every word is a real word (two letters or more, or ``a``/``I``) and none is ``banned``."""
    return all((len(w) > 1 or w in ("a", "i")) and w not in banned for w in words)


def _one_number(text: str) -> str | None:
    numbers = list(_NUMBER_RE.finditer(text))
    if len(numbers) != 1:
        return None
    match = numbers[0]
    rest = text[: match.start()] + " " + text[match.end() :]
    if _PLAIN_REST_RE.fullmatch(rest) is None or not _plain_words(_words(rest), _HEDGES | _CHANGES):
        return None
    value = match.group(1) + drop_thousands_separators(match.group(2))
    return value if is_number_literal(value) else None


def _last_value(text: str) -> str | None:
    parts = _COMMANDS_RE.sub(" * ", _TIMES_RE.sub(" * ", text)).split("=")
    if len(parts) < 2 or any(_ARITHMETIC_RE.fullmatch(part) is None for part in parts[1:-1]):
        return None
    lhs = parts[0]
    if not re.search(r"\d", lhs) or not _plain_words(_words(lhs), _HEDGES):
        return None
    if re.search(r"[^A-Za-z'’\s,:;\d.$%+\-*/()]", lhs):
        return None
    return number_core(parts[-1])


def last_line(text: str) -> str:
    """The last non-blank line of ``text``, stripped.

    >>> last_line("Work: 6 + 15 = 21.\\nSo she has 21 roses now.\\n")
    'So she has 21 roses now.'
    """
    lines = [line for line in text.splitlines() if line.strip()]
    return lines[-1].strip() if lines else ""


def sentence_number(text: str) -> str | None:
    """The number the last line of an answer states in one sentence (see the module), or None.

    >>> sentence_number("Peter paid $7.00 in total."), sentence_number("Elliott took 2,000 steps during his jog.")
    ('7.00', '2000')
    >>> sentence_number("1 hour + 40 minutes = 50 minutes"), sentence_number("Each child gets 8 thousand.")
    ('50', None)
    >>> sentence_number("6 + 15 = 21\\nSo she has 21 roses now."), sentence_number("Anne is 8. Bob is 9.")
    ('21', None)
    """
    if not isinstance(text, str):
        return None
    s = last_line(text)
    if not s or len(s) > MAX_DECORATED_CHARS or "\\" in _COMMANDS_RE.sub("", s):
        return None
    if _SENTENCE_END_RE.search(s) or set(_words(s)) & _HEDGES or _FACTORIAL_RE.search(s):
        return None
    s = s.rstrip(" .!")
    return _last_value(s) if "=" in s else _one_number(s)
