r"""Reading a completion for self-correction: the answers it states, in order, and the checks it makes.

The rules (:func:`read_self_check`), on the thinking cut into sentences (lines, and sentences
within a line):

- **Candidates.** An *answer statement* states one: "the answer is N" / "final answer: N" /
  ``\boxed{N}`` (strong), or "so N" / "therefore x = N" / a line ending ``x = ... = N`` / the
  content of an ``<answer>`` block inside the thinking (weak). The thinking runs in *blocks*;
  a block ends at a check or at a correction ("wait", "actually", "let me redo", "mistake",
  "wrong", "85, not 75"). A block's candidate is its last answer statement (a strong one counts
  at once), unless worked results follow a weak one in the block (then it stated a step: "so,
  Alyana is 6" on the way to Anne's age); a bare worked result (``85 * 2 = 170``) is a
  candidate only when a check follows it (the model checked it, so it took it as its answer).
  So intermediate results of a multi-step solution (``47 + 38 = 85`` on the way to 170) are
  steps, not candidates.
  The final answer (as the accuracy reward extracts it) is the last candidate. A candidate
  equal to the one before it is not repeated.
- **Checks.** A sentence that opens a check ("let me check/verify", "check:", "substituting",
  "plug ... back", "undo", "double-check") and the sentences after it that carry arithmetic or a
  verdict (up to :data:`MAX_CHECK_SENTENCES` in all) form a check of the latest candidate,
  if they recompute something by a second route: at least one worked equation that the work
  before it did not already hold. "Let me verify. Yes, correct." is no check, nor is the same
  ``85 * 2 = 170`` written again. Also a check, without any phrase: after an answer statement,
  an equation that undoes the one that produced it (``160 - 75 = 85`` after ``85 + 75 = 160``).
- **Agreement.** A check *disagrees* when it, or a correction right after it, says so ("not",
  "wrong", "mistake", "differ", "≠"); otherwise it *agrees* when its recomputation lands on an
  original quantity (its last result is a number of the problem or of the worked steps before
  it, or the candidate itself, or its last two results are equal: both sides of a substituted
  equation) or when it says it checks out ("correct", "checks out", "agree", ✓) with correct
  arithmetic; else it disagrees (it landed elsewhere).

Text is cut to :data:`MAX_TEXT_CHARS` characters and :data:`MAX_SENTENCES` sentences; every
pattern is linear or bounded, so adversarial text never hangs.

Example:
    >>> r = read_self_check("<think>Step 1: 2 + 3 = 5\nLet me check: 5 - 3 = 2. Correct.</think><answer>5</answer>")
    >>> r.candidates, [(c.candidate, c.agreed) for c in r.checks]
    (['5'], [(0, True)])
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from fractions import Fraction

from ahazero.observe.behaviours import reflection_text
from ahazero.observe.worked_math import Equation, MathLine, format_value, read_math
from rewards.decoration import number_core
from rewards.literals import parse_number_literal
from rewards.normalize import normalize_answer, unwrap_delimiters
from rewards.parsing import boxed_contents, extract_answer
from rewards.sentences import sentence_number

__all__ = ["MAX_CHECK_SENTENCES", "MAX_SENTENCES", "MAX_TEXT_CHARS", "CheckReading", "Reading", "answer_value",
           "read_self_check", "same_answer"]

logger = logging.getLogger(__name__)

MAX_TEXT_CHARS = 20_000
"""Only the first this many characters of a completion are read."""
MAX_SENTENCES = 400
"""Only the first this many sentences of the thinking are read."""
MAX_CHECK_SENTENCES = 4
"""A check is its opening sentence and at most this many minus one after it."""
MAX_CANDIDATE_CHARS = 80
MAX_TEXT_ANSWER_WORDS = 4
"""A stated answer that is not a number may have at most this many words (``x + 1``, ``\\text{east}``)."""

_I = re.IGNORECASE
_CHECK_OPEN = re.compile(
    r"\b(?:let\s+me|let's|let\s+us|lets|we\s+can|i\s+will|i\s+can|i'll)\s+(?:double[- ]?|re-?|quickly\s+)?"
    r"(?:check|verify|confirm)\b"
    r"|^\W{0,3}(?:now\s+|to\s+|and\s+)?(?:double[- ]?|re-?)?(?:check|verif|confirm)\w*"
    r"|\b(?:double[- ]?check\w*|re-?check\w*|sanity\s+check)"
    r"|\b(?:substitut|plug)\w*(?:\s+\S+){0,6}?\s+(?:back\b|into\s+the\s+original\b)"
    r"|\bundo(?:ing)?\b|\b(?:work|working|going)\s+backwards?\b", _I)
_REDO = re.compile(
    r"^\W{0,3}(?:wait|hmm+|hold\s+on|oops|actually)\b"
    r"|\b(?:let\s+me|let's|let\s+us|i\s+will|i\s+need\s+to|i\s+should|i'll|we\s+need\s+to|we\s+should)\s+"
    r"(?:re-?do|re-?calculate|re-?compute|re-?work|recount|start\s+over|try\s+again|fix|correct)\b"
    r"|\b(?:mistake|miscalculat\w*|incorrect|wrong|oops|typo|made\s+an?\s+error)\b"
    r"|\bnot\s+(?:right|correct)\b|,\s*not\s+[-$]?\d|\bshould\s+(?:be|have\s+been)\s+[-$]?\d", _I)
_NEGATED_NEGATIVE = re.compile(
    r"\b(?:no|not|nothing|isn't|without)\s+(?:an?\s+)?(?:mistakes?|errors?|wrong|problems?|issues?)\b", _I)
_NEGATIVE = re.compile(
    r"\b(?:not|no|isn't|doesn't|don't|didn't|aren't|wrong|mistake|incorrect|error|differ\w*|mismatch\w*|"
    r"inconsistent|oops)\b|≠|!=|✗|❌", _I)
_POSITIVE = re.compile(
    r"\b(?:checks?\s+out|correct(?:ly)?|agree\w*|match(?:es|ed)?|consistent|confirm\w*|verified|holds|right|"
    r"true|yes|equal)\b|✓|✔|✅", _I)
_ANSWER_IS = re.compile(
    r"\b(?:final\s+answer|the\s+answer|answer)(?:\s+(?:to\s+the\s+(?:problem|question)))?\s*"
    r"(?:is|:|=|would\s+be|will\s+be)\s*:?\s*(?P<value>[^\s:][^\n]{0,119})", _I)
_NUMBER = r"[-+]?\s*\$?\d[\d,]*(?:\.\d+)?(?:\s*/\s*\d+)?"
_SO_VALUE = re.compile(
    r"(?:^\W{0,3}|[,;]\s*)(?:so|thus|therefore|hence)\b[\s,:]*(?:(?:the\s+)?(?:result|total|value|solution)\s+is\s+)?"
    rf"(?:[a-z]\s*=\s*)?(?P<value>{_NUMBER})\s*\$?\s*[.!]?\s*$", _I)
_VAR_IS = re.compile(rf"(?:^|[\s:,(])[a-zA-Z]\s*=\s*(?:[^=\n]{{0,80}}=\s*)?(?P<value>{_NUMBER})\s*\$?\s*[.!]?\s*$")
_LEADING_NUMBER = re.compile(rf"^\s*(?:\\\(|\$)?\s*(?P<value>{_NUMBER})(?![\d.,]*\d)")
_STATES_SOMETHING = re.compile(r"[\w\\]")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n")
_ANSWER_BLOCK = re.compile(r"<answer>(.{0,2000}?)</answer>", re.DOTALL)
_TAGS = re.compile(r"</?think>|</?answer>")


@dataclass(frozen=True)
class CheckReading:
    """One check: the index of the candidate it checks, its text, and whether it agreed."""

    candidate: int
    text: str
    agreed: bool


@dataclass
class Reading:
    """What :func:`read_self_check` reads (ungraded): candidates in order, the checks, the final answer."""

    candidates: list[str] = field(default_factory=list)
    checks: list[CheckReading] = field(default_factory=list)
    final_answer: str | None = None  #: the final answer as the accuracy reward extracts it, read as a value


def same_answer(a: str, b: str) -> bool:
    """Whether two candidates state the same answer: equal numbers, else the same text (spaces ignored).

    Example:
        >>> same_answer("12.00", "12"), same_answer("1/2", r"\\frac{1}{2}"), same_answer("x+1", "x + 1")
        (True, True, True)
    """
    x, y = parse_number_literal(a), parse_number_literal(b)
    if x is not None and y is not None:
        return x == y
    return "".join(a.split()) == "".join(b.split())


def answer_value(text: str | None, *, expressions: bool = False, leading: bool = False) -> str | None:
    r"""A stated answer as a short value: the number it states (``$1,250.`` -> ``1250``), else its text.

    With ``leading``, a number that starts the text is enough (``150, which is even``); with
    ``expressions`` (Countdown), the text itself (an equation is the answer).

    Example:
        >>> answer_value("Anne is 8 years old."), answer_value(r"\frac{1}{3}"), answer_value("$1,250.")
        ('8', '\\frac{1}{3}', '1250')
    """
    if text is None:
        return None
    text = text.strip()[:MAX_CANDIDATE_CHARS * 4]
    if expressions:
        return " ".join(text.split()).rstrip(" .,;")[:MAX_CANDIDATE_CHARS] or None
    clean = normalize_answer(text)
    value = number_core(clean) or sentence_number(clean)
    if value is None:
        lead = _LEADING_NUMBER.match(clean) if leading else None
        value = lead.group("value") if lead else unwrap_delimiters(clean).rstrip(" .,;")
        if not lead and leading and len(value.split()) > MAX_TEXT_ANSWER_WORDS:
            return None  # a sentence, not an answer: "the answer is the one we found above"
    value = value.replace("$", "").replace(" ", "")
    if "\\boxed" in value or "\\fbox" in value or value.count("{") != value.count("}"):
        return None  # a box or brace left open (a truncated "\\boxed{417"): no answer stated
    return value[:MAX_CANDIDATE_CHARS] if _STATES_SOMETHING.search(value) else None


def _sentences(thinking: str) -> list[str]:
    """The thinking cut into sentences; an ``<answer>`` block inside it becomes one sentence marked ``<answer>``."""
    out: list[str] = []
    position = 0
    for m in _ANSWER_BLOCK.finditer(thinking):
        out += [s for s in _SENTENCE_END.split(thinking[position:m.start()]) if s.strip()]
        out.append("<answer>" + m.group(1))
        position = m.end()
    out += [s for s in _SENTENCE_END.split(thinking[position:]) if s.strip()]
    return [_TAGS.sub(" ", s) if not s.startswith("<answer>") else s for s in out[:MAX_SENTENCES]]


def _statement(sentence: str, expressions: bool) -> tuple[str | None, bool]:
    """``(value, strong)`` of the answer a sentence states, or ``(None, False)``."""
    if sentence.startswith("<answer>"):
        return answer_value(sentence[len("<answer>"):], expressions=expressions), False
    boxes = boxed_contents(sentence)
    if boxes:
        return answer_value(boxes[-1], expressions=expressions), True
    m = _ANSWER_IS.search(sentence)
    if m:
        return answer_value(m.group("value"), expressions=expressions, leading=True), True
    for pattern in (_SO_VALUE, _VAR_IS):
        m = pattern.search(sentence)
        if m:
            return answer_value(m.group("value"), expressions=expressions), False
    return None, False


def _negative(text: str) -> bool:
    """Whether a check's text says it failed ("not", "wrong", "≠"), not counting "no mistakes" and the like."""
    return bool(_NEGATIVE.search(_NEGATED_NEGATIVE.sub(" ", text)))


def _undoes(eq: Equation, producer: Equation) -> Fraction | None:
    """The operand ``eq`` should land on when it undoes ``producer`` (``160 - 75`` undoes ``85 + 75 = 160``)."""
    first, second = eq.operation or (None, None, None), producer.operation
    if second is None or first[0] != producer.result:
        return None
    a, op, b = second
    inverse = {"+": ("-", {b: a, a: b}), "-": ("+", {b: a}), "*": ("/", {b: a, a: b}), "/": ("*", {b: a})}[op]
    if first[1] != inverse[0] or first[2] not in inverse[1]:
        return None
    return inverse[1][first[2]]


@dataclass
class _Region:
    """An open check: the candidate it checks, its sentences, and what they computed."""

    candidate: int
    sentences: list[str]
    equations: list[Equation]
    added: bool  #: the candidate is a bare worked result this check made one (taken back if it is no check)


class _Reader:
    """The block/check state machine of :func:`read_self_check`, fed one sentence at a time."""

    def __init__(self, problem_numbers: set[Fraction], expressions: bool) -> None:
        self.expressions = expressions
        self.candidates: list[str] = []
        self.checks: list[CheckReading] = []
        self.originals = set(problem_numbers)
        self.worked: set[str] = set()  #: the equations of the work so far (a check must compute something new)
        self.region: _Region | None = None
        self._new_block()

    def _new_block(self) -> None:
        self.statement: str | None = None
        self.stale = False  #: worked results came after the block's statement: it was a step, not the answer
        self.statement_eq: Equation | None = None
        self.result: Equation | Fraction | None = None
        self.last_eq: Equation | None = None

    def register(self, value: str | None) -> int | None:
        if not value:
            return len(self.candidates) - 1 if self.candidates else None
        if not self.candidates or not same_answer(self.candidates[-1], value):
            self.candidates.append(value)
        return len(self.candidates) - 1

    def close_block(self, *, checked: bool) -> int | None:
        """End the block: its statement (or, before a check, its last worked result) becomes a candidate."""
        value = None if self.stale else self.statement
        if value is None and checked and self.result is not None:
            if isinstance(self.result, Equation):
                value = self.result.sides[0].text if self.expressions else format_value(self.result.result)
            else:
                value = None if self.expressions else format_value(self.result)
        index = self.register(value)
        self._new_block()
        return index

    def feed(self, sentence: str) -> None:
        math = read_math(sentence)
        opens, redo = bool(_CHECK_OPEN.search(sentence)), bool(_REDO.search(sentence))
        if self.region is not None:
            strong = _statement(sentence, self.expressions)[1]
            if (not (opens or redo or strong) and (math.equations or _POSITIVE.search(sentence) or
                                                   _NEGATIVE.search(sentence))
                    and len(self.region.sentences) < MAX_CHECK_SENTENCES):
                self.region.sentences.append(sentence)
                self.region.equations += math.equations
                return
            self.finish_check(sentence if redo else "")
        if opens:
            before, bare = len(self.candidates), self.statement is None or self.stale
            candidate = self.close_block(checked=True)
            if candidate is not None:
                added = bare and len(self.candidates) > before
                self.region = _Region(candidate, [sentence], list(math.equations), added)
            return
        if redo:
            self.close_block(checked=False)
        self.work(sentence, math)

    def work(self, sentence: str, math: MathLine) -> None:
        producer = self.statement_eq
        for eq in math.equations:
            landing = _undoes(eq, producer) if producer is not None and not self.expressions else None
            if landing is not None:  # an undo of the concluded step, without any check phrase
                index = self.register(self.statement)
                if index is not None:
                    self.checks.append(CheckReading(index, sentence.strip(), eq.result == landing))
                return
        self.originals.update(math.numbers)
        self.worked.update(str(eq) for eq in math.equations)
        if self.statement is not None and (math.equations or math.last_result is not None):
            self.stale = True
        if math.equations:
            self.last_eq = math.equations[-1]
            self.result = self.last_eq
        if math.last_result is not None and (self.last_eq is None or math.last_result != self.last_eq.result):
            self.result = math.last_result
        value, strong = _statement(sentence, self.expressions)
        if value is None:
            return
        self.statement, self.stale = value, False
        self.statement_eq = self.last_eq if (
            self.last_eq is not None and same_answer(format_value(self.last_eq.result), value)) else None
        if strong:
            self.register(value)

    def finish_check(self, next_sentence: str) -> None:
        region, self.region = self.region, None
        if region is None:
            return
        if all(str(eq) in self.worked for eq in region.equations):
            # checking words without recomputation, or the same equations written again, are no check
            if region.added:
                self.candidates.pop()
            return
        text = " ".join(s.strip() for s in region.sentences)
        if _negative(text) or _negative(next_sentence):
            agreed = False
        else:
            results = [eq.result for eq in region.equations]
            candidate = parse_number_literal(self.candidates[region.candidate])
            lands = results[-1] in self.originals or results[-1] == candidate or (
                len(results) > 1 and results[-1] == results[-2])
            says = bool(_POSITIVE.search(text)) and all(eq.correct for eq in region.equations)
            agreed = lands or says
        self.checks.append(CheckReading(region.candidate, text, agreed))

    def finish(self, final: str | None) -> Reading:
        self.finish_check("")
        self.close_block(checked=False)
        self.register(final)
        return Reading(self.candidates, self.checks, final)


def read_self_check(text: str, *, problem: str = "", expressions: bool = False) -> Reading:
    r"""Read one completion (prefill included) for candidates and checks; never raises.

    ``problem`` gives the original quantities a check may land on; ``expressions`` reads
    candidates as expressions (Countdown) instead of values.

    Example:
        >>> r = read_self_check("<think>So the answer is 150.\nLet me check: 150 / 2 = 75, 75 - 38 = 37, "
        ...                     "but the problem has 47.\nWait, 47 + 38 is 85, not 75. So the answer is 170."
        ...                     "</think><answer>170</answer>", problem="Compute: (47 + 38) * 2")
        >>> r.candidates, [(c.candidate, c.agreed) for c in r.checks], r.final_answer
        (['150', '170'], [(0, False)], '170')
    """
    try:
        text = text[:MAX_TEXT_CHARS] if isinstance(text, str) else ""
        if "</think>" in text and "<think>" not in text:  # a completion saved without its <think> prefill
            text = "<think>" + text
        final = answer_value(extract_answer(text), expressions=expressions)
        numbers = {n for s in _sentences((problem or "")[:MAX_TEXT_CHARS]) for n in read_math(s).numbers}
        reader = _Reader(numbers, expressions)
        for sentence in _sentences(reflection_text(text)):
            reader.feed(sentence)
        return reader.finish(final)
    except Exception as exc:  # noqa: BLE001 - a measure must never break training or eval
        logger.warning("self-check reading failed (%s: %.100s)", type(exc).__name__, exc)
        return Reading()
