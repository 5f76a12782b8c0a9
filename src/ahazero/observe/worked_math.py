r"""The arithmetic a model writes out (``47 + 38 = 85``), read from one sentence and evaluated exactly.

A sentence is first brought to plain arithmetic: LaTeX (``\frac{a}{b}``, ``\times``, ``\div``,
``\text{..}``, ``\boxed{..}``, ``\$``, math delimiters), thousands separators (``80,000``),
word operators between numbers (``3 x 4``, ``6 times 7``, ``47 + 38 is 85``) and implicit
products (``3(5)``) are rewritten; unit words (``15 cookies``, ``$60/truck tire``) are dropped.
Then the text is cut into runs of numbers, operators and ``=`` at anything else (a comma, a
colon, a variable like ``x``, ``%``), and each run's ``=`` chain is evaluated with
:func:`ahazero.tasks._expr.parse_expression` and :class:`fractions.Fraction` (never ``eval``):
the first side is the longest arithmetic that ends at its ``=``, the last side the longest
that starts after one. A chain whose sides before the last hold an operation is an
:class:`Equation` (a worked step); ``Total = 20`` is not, but its value is the line's
``last_result``.

Everything is bounded: a sentence is cut at :data:`MAX_SENTENCE_CHARS`, a side at
:data:`MAX_SIDE_TOKENS` tokens, a literal at :data:`MAX_LITERAL_DIGITS` digits, and every
pattern runs in linear time.

Example:
    >>> line = read_math(r"Step 2: \text{Total} = 2 \times (11 + 6) = 2 \times 17 = 34 \text{ feet}")
    >>> [str(e) for e in line.equations], line.equations[0].correct, format_value(line.last_result)
    (['2 * ( 11 + 6 ) = 2 * 17 = 34'], True, '34')
    >>> eq = read_math("Wait, 47 + 38 is 75, not 85.").equations[0]
    >>> str(eq), eq.correct, eq.operation
    ('47 + 38 = 75', False, (Fraction(47, 1), '+', Fraction(38, 1)))
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction

from ahazero.tasks._expr import evaluate, parse_expression

__all__ = ["MAX_LITERAL_DIGITS", "MAX_SENTENCE_CHARS", "MAX_SIDE_TOKENS", "Equation", "MathLine", "format_value",
           "plain_math", "read_math", "values_agree"]

MAX_SENTENCE_CHARS = 600
"""A longer sentence is cut to its first this many characters before it is read."""
MAX_SIDE_TOKENS = 40
"""One side of an ``=`` with more tokens than this is not evaluated."""
MAX_LITERAL_DIGITS = 15
"""A number literal with more digits than this breaks the arithmetic it stands in."""

_REWRITES: tuple[tuple[re.Pattern[str], str], ...] = tuple((re.compile(p, re.IGNORECASE), r) for p, r in (
    (r"\{,\}", ""),
    (r"\\[dt]?frac\s*\{([^{}]{1,60})\}\s*\{([^{}]{1,60})\}", r" ((\1)/(\2)) "),
    (r"\\(?:text|textbf|textit|mathrm|mbox|operatorname|boxed|fbox)\s*\{([^{}]{0,100})\}", r" \1 "),
    (r"\\(?:times|cdot|ast)(?![a-z])|[×·∗⋅]", " * "),
    (r"\\div(?![a-z])|÷", " / "),
    (r"\\approx(?![a-z])|≈", " = "),
    (r"\\(?:left|right)(?![a-z])", ""),
    (r"\\[$]|[$€£]|\\[()\[\]]|\\[,;:! ]|\\q?quad(?![a-z])", " "),
    (r"\\%|%", " ; "),
    (r"\\[a-z]+|[{}^_]", " ; "),
    (r"(?<=\d),(?=\d{3}(?!\d))", ""),
    (r"\bstep\s*\d+\s*[:.)-]?|^\s*\d+[.)]\s", " ; "),
    (r"\(\s*[a-z][a-z\s'’-]{0,40}\)", " "),
    (r"/\s*(?=[a-z])", " "),
    (r"(?<=\d)\s+[x]\s+(?=[(\d])", " * "),
    (r"(?<=\d)\s+(?:plus)\s+(?=[(\d])", " + "),
    (r"(?<=\d)\s+(?:minus)\s+(?=[(\d])", " - "),
    (r"(?<=\d)\s+(?:times|multiplied\s+by)\s+(?=[(\d])", " * "),
    (r"(?<=\d)\s+(?:divided\s+by|over)\s+(?=[(\d])", " / "),
    (r"(?<=[\d)])\s+(?:is|equals|is\s+equal\s+to|gives|makes)\s+(?=-?\s*[(\d])", " = "),
    (r"(?<=\d)\s*\(", " * ("),
    (r"\)\s*(?=[(\d])", ") * "),
))

_DIGIT = re.compile(r"\d")
_TOKEN = re.compile(r"(\d+(?:\.\d+)?)|([-+*/()=])|([A-Za-z][A-Za-z'’]*)|(\s+)|(.)", re.DOTALL)


def plain_math(text: str) -> str:
    r"""``text`` with its LaTeX, separators, word operators and implicit products as plain arithmetic.

    Example:
        >>> " ".join(plain_math(r"\$80,000 + \frac{1}{2} \times 6 \text{ eggs}").split())
        '80000 + ((1)/(2)) * 6 eggs'
        >>> plain_math("3(5) + 7 is 22")
        '3 * (5) + 7 = 22'
    """
    text = text[:MAX_SENTENCE_CHARS]
    for pattern, replacement in _REWRITES:
        text = pattern.sub(replacement, text)
    return text


def format_value(value: Fraction | None) -> str:
    """An exact value as text: ``85``, ``-3/4``; ``""`` for None.

    Example:
        >>> format_value(Fraction(170)), format_value(Fraction(-6, 8))
        ('170', '-3/4')
    """
    if value is None:
        return ""
    return str(value.numerator) if value.denominator == 1 else f"{value.numerator}/{value.denominator}"


def values_agree(computed: Fraction, written: Fraction, decimals: int | None) -> bool:
    """Whether a written value states a computed one: exactly, or rounded to the decimals it is written with.

    Example:
        >>> values_agree(Fraction(10, 3), Fraction("3.33"), 2), values_agree(Fraction(10, 3), Fraction(3), 0)
        (True, False)
    """
    if decimals is None or decimals == 0:
        return computed == written
    return abs(computed - written) <= Fraction(1, 2 * 10**decimals)


@dataclass(frozen=True)
class _Side:
    text: str
    value: Fraction
    decimals: int | None  #: digits after the point when the side is one literal, else None
    operation: tuple[Fraction, str, Fraction] | None  #: ``a op b`` when the side is exactly that
    computes: bool  #: holds a binary operation (``-6`` alone does not)


@dataclass(frozen=True)
class Equation:
    """A worked ``=`` chain: its sides as read and their exact values."""

    sides: tuple[_Side, ...]

    def __str__(self) -> str:
        return " = ".join(s.text for s in self.sides)

    @property
    def values(self) -> tuple[Fraction, ...]:
        """The value of each side."""
        return tuple(s.value for s in self.sides)

    @property
    def result(self) -> Fraction:
        """The value of the last side: what the step computed."""
        return self.sides[-1].value

    @property
    def correct(self) -> bool:
        """Every side states the value of the one before it (a rounded decimal within its last place)."""
        for left, right in zip(self.sides, self.sides[1:]):
            decimals = right.decimals if right.decimals is not None else left.decimals
            if not values_agree(left.value, right.value, decimals):
                return False
        return True

    @property
    def operation(self) -> tuple[Fraction, str, Fraction] | None:
        """``(a, op, b)`` when the first side is one operation on two numbers (``47 + 38``), else None."""
        return self.sides[0].operation


@dataclass(frozen=True)
class MathLine:
    """What one sentence holds: its worked equations, the value after its last ``=``, every number in it."""

    equations: tuple[Equation, ...]
    last_result: Fraction | None
    numbers: tuple[Fraction, ...]


def _tokens(text: str) -> list[tuple[str, str]]:
    """``(kind, text)`` tokens: num, op, eq, or ``|`` for anything that breaks arithmetic; unit words dropped."""
    out: list[tuple[str, str]] = []
    glued = False  # the previous token was a number with nothing between it and this one
    for m in _TOKEN.finditer(text):
        num, op, word, space, other = m.groups()
        if num is not None:
            out.append(("num", num) if len(num.replace(".", "")) <= MAX_LITERAL_DIGITS else ("|", num))
        elif op is not None:
            out.append(("eq", op) if op == "=" else ("op", op))
        elif word is not None:
            if glued or len(word) == 1:  # a variable (3x, x, y): no arithmetic across it
                out.append(("|", word))
        elif other is not None:
            out.append(("|", other))
        glued = num is not None
        if space is not None:
            glued = False
    return out


def _side(tokens: list[tuple[str, str]]) -> _Side | None:
    if not tokens or len(tokens) > MAX_SIDE_TOKENS:
        return None
    text = " ".join(t for _, t in tokens)
    try:
        value = evaluate(parse_expression(text), Fraction)
    except (ValueError, ArithmeticError, RecursionError):
        return None
    nums = [t for kind, t in tokens if kind == "num"]
    decimals = len(nums[0].partition(".")[2]) if len(tokens) == 1 else None
    operation = None
    if len(tokens) == 3 and tokens[0][0] == "num" and tokens[1][0] == "op" and tokens[2][0] == "num":
        operation = (Fraction(tokens[0][1]), tokens[1][1], Fraction(tokens[2][1]))
    computes = any(kind == "op" and t != "(" and t != ")" and i > 0 and (tokens[i - 1][0] == "num" or
                                                                      tokens[i - 1][1] == ")")
                   for i, (kind, t) in enumerate(tokens))
    return _Side(text, value, decimals, operation, computes)


def _longest_suffix(tokens: list[tuple[str, str]]) -> _Side | None:
    for start in range(max(0, len(tokens) - MAX_SIDE_TOKENS), len(tokens)):
        if tokens[start][0] == "num" or tokens[start][1] in "(-":
            side = _side(tokens[start:])
            if side is not None:
                return side
    return None


def _longest_prefix(tokens: list[tuple[str, str]]) -> _Side | None:
    for end in range(min(len(tokens), MAX_SIDE_TOKENS), 0, -1):
        if tokens[end - 1][0] == "num" or tokens[end - 1][1] == ")":
            side = _side(tokens[:end])
            if side is not None:
                return side
    return None


def _chains(run: list[tuple[str, str]]) -> tuple[list[list[_Side]], Fraction | None]:
    """The ``=`` chains of one run of arithmetic tokens, and the value after its last ``=`` (if any)."""
    parts: list[list[tuple[str, str]]] = [[]]
    for token in run:
        if token[0] == "eq":
            parts.append([])
        else:
            parts[-1].append(token)
    chains: list[list[_Side]] = []
    current: list[_Side] = []
    last: Fraction | None = None
    for i, part in enumerate(parts):
        if i == 0:
            start = _longest_suffix(part)
            current = [start] if start else []
            continue
        whole = _side(part)
        if whole is not None:
            current.append(whole)
            last = whole.value
            continue
        head = _longest_prefix(part)
        if head is not None:
            current.append(head)
            last = head.value
        chains.append(current)
        tail = _longest_suffix(part)
        current = [tail] if tail else []
    chains.append(current)
    return chains, last


def read_math(text: str) -> MathLine:
    r"""Read the worked arithmetic, the last stated result and the numbers of one sentence.

    Example:
        >>> line = read_math(r"Dean buys 6 cars, so he has $28 - $2 \times 6 = $28 - $12 = $16.")
        >>> [str(e) for e in line.equations], line.last_result, sorted(set(line.numbers))[:3]
        (['28 - 2 * 6 = 28 - 12 = 16'], Fraction(16, 1), [Fraction(2, 1), Fraction(6, 1), Fraction(12, 1)])
        >>> read_math("Total cookies = 20").equations, read_math("Total cookies = 20").last_result
        ((), Fraction(20, 1))
    """
    if not _DIGIT.search(text):
        return MathLine((), None, ())
    tokens = _tokens(plain_math(text))
    numbers = tuple(Fraction(t) for kind, t in tokens if kind == "num")
    equations: list[Equation] = []
    last: Fraction | None = None
    run: list[tuple[str, str]] = []
    for token in [*tokens, ("|", "")]:
        if token[0] != "|":
            run.append(token)
            continue
        if any(kind == "eq" for kind, _ in run):
            chains, value = _chains(run)
            last = value if value is not None else last
            equations += [Equation(tuple(c)) for c in chains
                          if len(c) >= 2 and any(s.computes for s in c[:-1])]
        run = []
    return MathLine(tuple(equations), last, numbers)
