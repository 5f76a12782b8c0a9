"""Reflective cold-start traces written by code: worked steps, a check by a second route, slips it catches.

Gandhi et al. (2025) primed a model with traces that *show* verification and backtracking, and
RL then amplified them. These traces show checking that changes an answer, written by rule
from each problem's structure (no model writes them) for ``arithmetic`` (and any task whose
problems read ``Compute: <expression>``), ``chain`` and ``linear_equation``:

- ``reflective``: the worked steps, ``So the answer is N.``, then a check by a second route
  (undoing each step from the last; for an equation, substituting x back) that ends ``It
  checks out.``. In a set share of the traces one step holds a plausible slip (a dropped carry
  or borrow, a lost or flipped sign, two digits swapped) that carries on to a wrong first
  answer; the check disagrees (``..., but the problem has 47.``), the trace says what went
  wrong (``Wait, 47 + 38 is 85, not 75. Let me redo it.``), redoes the steps, checks again and
  gives the right answer. Every trace's final answer is right.
- ``plain``: the same steps and answer without any check: the matched control.

Example:
    >>> solution = worked_solution({"problem": "Compute: (47 + 38) * 2"}, task="arithmetic")
    >>> print(write_trace(solution, style="reflective", slip=Slip("carry", 0, Fraction(75))))
    Compute (47 + 38) * 2 step by step.
    Step 1: 47 + 38 = 75
    Step 2: 75 * 2 = 150
    So the answer is 150.
    Let me check by undoing each step: 150 / 2 = 75, 75 - 38 = 37, but the problem has 47.
    Wait, 47 + 38 is 85, not 75. Let me redo it.
    Step 1: 47 + 38 = 85
    Step 2: 85 * 2 = 170
    So the answer is 170.
    Let me check by undoing each step: 170 / 2 = 85, 85 - 38 = 47. It checks out.
    </think>
    <answer>170</answer>
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from ahazero.config.schema import ConfigError
from ahazero.config.stage_schema import SLIP_KINDS
from ahazero.stages.worked import (
    Step,
    Values,
    chain_steps,
    expression_steps,
    fmt,
    linear_side,
    linear_text,
    long_multiplication_parts,
    operand,
    step_line,
    substituted,
    undo,
    written_values,
)
from ahazero.tasks._expr import apply_op

__all__ = ["REFLECTIVE_TASKS", "Slip", "plan_slips", "possible_slips", "slip_counts", "slip_span", "worked_solution",
           "write_trace"]

#: The tasks the plain and reflective styles write (besides any task whose problems read ``Compute: ...``).
REFLECTIVE_TASKS = ("arithmetic", "chain", "linear_equation")

@dataclass(frozen=True)
class Slip:
    """A slip in a worked step: ``value`` is written as the result of step ``step`` (0-based)."""

    kind: str
    step: int
    value: Fraction


class _Steps:
    """A ``Compute: <expression>`` problem or a chain: one line per step, checked by undoing each step."""

    def __init__(self, header: str, steps: list[Step]) -> None:
        self.header, self.steps = header, steps

    def slippable(self, index: int) -> bool:
        return True

    def lines(self, values: Values) -> list[str]:
        return [self.header] + [step_line(i + 1, s.op, *v) for i, (s, v) in enumerate(zip(self.steps, values))]

    def answer(self, values: Values) -> Fraction:
        return values[-1][2]

    def operation(self, index: int, values: Values) -> str:
        a, b, _ = values[index]
        return f"{operand(a)} {self.steps[index].op} {operand(b)}"

    def result(self, index: int, value: Fraction) -> str:
        return fmt(value)

    def check(self, values: Values) -> tuple[str | None, bool]:
        """The check line and whether it agrees; it stops at the first step that does not undo."""
        parts = []
        for i in reversed(range(len(self.steps))):
            step, (a, b, result) = self.steps[i], values[i]
            undone = undo(step.op, a, b, result)
            if undone is None:
                continue
            text, value, side = undone
            parts.append(text)
            expected, source = (a, step.left_step) if side == "left" else (b, step.right_step)
            if value != expected:
                where = f"the problem has {fmt(expected)}" if source is None else f"step {source + 1} gave {fmt(expected)}"
                return f"Let me check by undoing each step: {', '.join(parts)}, but {where}.", False
        if not parts:
            return None, True
        return f"Let me check by undoing each step: {', '.join(parts)}. It checks out.", True


class _Linear:
    """``a*x + b = c*x + d``: collect x, collect the numbers, divide; checked by substituting x back."""

    def __init__(self, problem: str) -> None:
        if not problem.startswith("Solve for x:") or problem.count("=") != 1:
            raise ValueError(f"not a 'Solve for x: ... = ...' problem: {problem!r}")
        left, right = problem.removeprefix("Solve for x:").split("=")
        (a, b), (c, d) = linear_side(left), linear_side(right)
        if a == c:
            raise ValueError(f"no unique solution: {problem!r}")
        self.header = f"Solve {left.strip()} = {right.strip()} for x."
        self.a, self.b, self.c, self.d = a, b, c, d
        self.steps: list[Step] = []
        self.kinds: list[str] = []
        k: tuple[Fraction | None, int | None] = (a, None)
        m: tuple[Fraction | None, int | None] = (d, None)
        if c:
            self._add("x", Step("-" if c > 0 else "+", a, abs(c)))
            k = (None, len(self.steps) - 1)
        if b:
            self._add("numbers", Step("-" if b > 0 else "+", d, abs(b)))
            m = (None, len(self.steps) - 1)
        if a - c != 1:
            self._add("divide", Step("/", m[0], k[0], m[1], k[1]))

    def _add(self, kind: str, step: Step) -> None:
        self.steps.append(step)
        self.kinds.append(kind)

    def slippable(self, index: int) -> bool:
        if self.kinds[index] == "x":  # the coefficient: shown as arithmetic only when x is on both sides
            return bool(self.a) and "divide" in self.kinds
        return True

    def _coefficient(self, values: Values) -> Fraction:
        return values[self.kinds.index("x")][2] if "x" in self.kinds else self.a

    def lines(self, values: Values) -> list[str]:
        lines = [self.header]
        k = self._coefficient(values)
        for kind, step, (a, b, result) in zip(self.kinds, self.steps, values):
            if kind == "x":
                move = f"subtract {linear_text(self.c, Fraction(0))}" if self.c > 0 else \
                    f"add {linear_text(-self.c, Fraction(0))}"
                work = f"{self.operation(0, values)} = {self.result(0, result)}, so " if self.a else ""
                lines.append(f"Collect x on the left: {move} on both sides: {work}{linear_text(k, self.b)} = "
                             f"{fmt(self.d)}")
            elif kind == "numbers":
                move = f"subtract {fmt(self.b)}" if self.b > 0 else f"add {fmt(-self.b)}"
                lines.append(f"Collect the numbers on the right: {move} on both sides: {linear_text(k, Fraction(0))} = "
                             f"{fmt(a)} {step.op} {fmt(b)} = {fmt(result)}")
            else:
                lines.append(f"Divide both sides by {operand(b)}: x = {fmt(a)} / {operand(b)} = {fmt(result)}")
        return lines

    def answer(self, values: Values) -> Fraction:
        if "divide" in self.kinds:
            return values[-1][2]
        return values[self.kinds.index("numbers")][2] if "numbers" in self.kinds else self.d

    def operation(self, index: int, values: Values) -> str:
        a, b, _ = values[index]
        if self.kinds[index] == "x":
            return f"{linear_text(a, Fraction(0))} {self.steps[index].op} {linear_text(b, Fraction(0))}"
        return f"{fmt(a)} {self.steps[index].op} {operand(b) if self.kinds[index] == 'divide' else fmt(b)}"

    def result(self, index: int, value: Fraction) -> str:
        return linear_text(value, Fraction(0)) if self.kinds[index] == "x" else fmt(value)

    def check(self, values: Values) -> tuple[str | None, bool]:
        x = self.answer(values)
        sides = []
        for coefficient, constant in ((self.a, self.b), (self.c, self.d)):
            value = coefficient * x + constant
            written = substituted(coefficient, constant, x)
            sides.append((f"{written} = {fmt(value)}" if coefficient else written, value))
        agreed = sides[0][1] == sides[1][1]
        verdict = "Both sides agree, so it checks out." if agreed else f"They differ, so x = {fmt(x)} is wrong."
        return (f"Let me check by substituting x = {fmt(x)}: the left side is {sides[0][0]}, the right side is "
                f"{sides[1][0]}. {verdict}"), agreed


Solution = _Steps | _Linear


def worked_solution(row: dict[str, Any], *, task: str) -> Solution:
    """A problem's worked solution, ready for :func:`write_trace`.

    Example:
        >>> solution = worked_solution({"problem": "Solve for x: 3x + 7 = x - 5"}, task="linear_equation")
        >>> print(write_trace(solution, style="plain"))
        Solve 3x + 7 = x - 5 for x.
        Collect x on the left: subtract x on both sides: 3x - x = 2x, so 2x + 7 = -5
        Collect the numbers on the right: subtract 7 on both sides: 2x = -5 - 7 = -12
        Divide both sides by 2: x = -12 / 2 = -6
        So the answer is -6.
        </think>
        <answer>-6</answer>
        >>> worked_solution({"problem": "Solve for x: 3x + 7 = x - 5"}, task="countdown")
        Traceback (most recent call last):
        ...
        ahazero.config.schema.ConfigError: task 'countdown': the plain and reflective styles write traces for arithmetic, chain, linear_equation and any task whose problems read 'Compute: <expression>'
    """
    problem = str(row.get("problem", ""))
    if task == "linear_equation":
        return _Linear(problem)
    if problem.startswith("Compute:"):
        expression = problem.removeprefix("Compute:").strip()
        steps = expression_steps(expression)
        header = f"Compute {expression} step by step."
    elif task == "chain":
        steps = chain_steps(problem)
        header = f"Start with {fmt(steps[0].left or Fraction(0))} and apply each operation in turn."
    elif task in REFLECTIVE_TASKS:
        raise ValueError(f"not a problem the {task} writer reads: {problem!r}")
    else:
        raise ConfigError(f"task '{task}': the plain and reflective styles write traces for "
                          f"{', '.join(REFLECTIVE_TASKS)} and any task whose problems read 'Compute: <expression>'")
    if not steps:
        raise ValueError(f"no operation to work out in {problem!r}")
    return _Steps(header, steps)


def _carries(addends: Sequence[int]) -> list[tuple[int, int]]:
    """``(column, carry)`` of each carry when adding ``addends`` column by column, but into a new leading column."""
    out, carry, column, top = [], 0, 0, max(addends)
    while 10 ** (column + 1) <= top:
        carry = (sum(a // 10 ** column % 10 for a in addends) + carry) // 10
        if carry:
            out.append((column, carry))
        column += 1
    return out


def _digit_carries(number: int, digit: int) -> list[tuple[int, int]]:
    """``(column, carry)`` of ``number * digit`` worked digit by digit, but into a new leading column."""
    out, carry, column = [], 0, 0
    while 10 ** (column + 1) <= number:
        carry = (number // 10 ** column % 10 * digit + carry) // 10
        if carry:
            out.append((column, carry))
        column += 1
    return out


def _borrows(big: int, small: int) -> list[int]:
    """The columns of ``big - small`` that borrow from the next one."""
    out, borrow, column = [], 0, 0
    while 10 ** (column + 1) <= big:
        borrow = int(big // 10 ** column % 10 - borrow - small // 10 ** column % 10 < 0)
        if borrow:
            out.append(column)
        column += 1
    return out


def _wrong_values(kind: str, op: str, a: Fraction, b: Fraction, result: Fraction) -> list[Fraction]:
    """What a step ``a op b = result`` might say instead, by one slip of ``kind``."""
    if kind == "sign":
        if not result:
            return []
        if op == "-" and result > 0 and a >= 0 and b >= 0:
            return [a + b]  # the subtracted number added
        return [-result] if op == "-" or min(a, b, result) < 0 else []
    if any(v.denominator != 1 for v in (a, b, result)):
        return []
    x, y, r, sign = abs(int(a)), abs(int(b)), abs(int(result)), -1 if result < 0 else 1
    if kind == "swap":
        digits = str(r)
        return [Fraction(sign * int(digits[:i] + digits[i + 1] + digits[i] + digits[i + 2:]))
                for i in range(len(digits) - 1) if digits[i] != digits[i + 1] and not (i == 0 and digits[1] == "0")]
    if op in "+-":
        if (op == "+") == ((a >= 0) == (b >= 0)):  # magnitudes added: a carry dropped
            return [Fraction(sign * (r - c * 10 ** (column + 1))) for column, c in _carries([x, y])]
        big, small = max(x, y), min(x, y)  # magnitudes subtracted: a borrow forgotten
        return [Fraction(sign * (r + 10 ** (column + 1))) for column in _borrows(big, small)]
    if op == "*":
        parts = long_multiplication_parts(a, b)
        carries = _carries(parts) if parts else _digit_carries(max(x, y), min(x, y)) if min(x, y) < 10 else []
        return [Fraction(sign * (r - c * 10 ** (column + 1))) for column, c in carries]
    return []


def _integers(values: Values) -> bool:
    return all(v.denominator == 1 for row in values for v in row)


def possible_slips(solution: Solution, kind: str) -> list[Slip]:
    """Every slip of ``kind`` that leads to a wrong first answer the written check disagrees with.

    A solution in whole numbers keeps to whole numbers after a slip (a division that stops being
    exact is left out).

    Example:
        >>> solution = worked_solution({"problem": "Compute: (47 + 38) * 2"}, task="arithmetic")
        >>> [(s.step, fmt(s.value)) for s in possible_slips(solution, "carry")]
        [(0, '75'), (1, '160')]
    """
    right = written_values(solution.steps)
    answer, whole = solution.answer(right), _integers(right)
    out = []
    for index, step in enumerate(solution.steps):
        if not solution.slippable(index):
            continue
        for value in _wrong_values(kind, step.op, *right[index]):
            try:
                values = written_values(solution.steps, (index, value))
            except ZeroDivisionError:
                continue
            if value == right[index][2] or solution.answer(values) == answer or (whole and not _integers(values)):
                continue
            if solution.check(values)[1]:
                continue
            out.append(Slip(kind, index, value))
    return out


def plan_slips(solutions: Sequence[Solution], *, fraction: float, kinds: Sequence[str],
               rng: random.Random) -> list[Slip | None]:
    """A slip for ``round(fraction * len(solutions))`` of the solutions (fewer when too few can take one).

    The solutions are visited in a seeded order; each kind is used about equally (each time the
    least-used kind this solution can take), then a seeded choice among its slips.

    Example:
        >>> solutions = [worked_solution({"problem": f"Compute: {a} + 58 - 19"}, task="arithmetic") for a in range(40, 50)]
        >>> slips = plan_slips(solutions, fraction=0.6, kinds=["carry", "sign", "swap"], rng=random.Random(0))
        >>> sum(s is not None for s in slips), dict(sorted(slip_counts(slips).items()))
        (6, {'carry': 2, 'sign': 2, 'swap': 2})
    """
    unknown = sorted(set(kinds) - set(SLIP_KINDS))
    if unknown:
        raise ConfigError(f"slip_kinds: unknown {', '.join(unknown)} (choose from {', '.join(SLIP_KINDS)})")
    target = round(fraction * len(solutions))
    plan: list[Slip | None] = [None] * len(solutions)
    used = Counter({kind: 0 for kind in kinds})
    for index in rng.sample(range(len(solutions)), len(solutions)):
        if sum(used.values()) >= target:
            break
        options = {kind: possible_slips(solutions[index], kind) for kind in kinds}
        open_kinds = [kind for kind in kinds if options[kind]]
        if not open_kinds:
            continue
        fewest = min(used[kind] for kind in open_kinds)
        kind = rng.choice([k for k in open_kinds if used[k] == fewest])
        plan[index] = rng.choice(options[kind])
        used[kind] += 1
    return plan


def slip_counts(slips: Sequence[Slip | None]) -> dict[str, int]:
    """How many slips of each kind.

    Example:
        >>> slip_counts([None, Slip("sign", 0, Fraction(1)), Slip("sign", 1, Fraction(2))])
        {'sign': 2}
    """
    return dict(Counter(s.kind for s in slips if s is not None))


def write_trace(solution: Solution, *, style: str, slip: Slip | None = None) -> str:
    """The text after ``<think>``: worked steps, the answer and (``reflective``) the checks, then the tags.

    Example:
        >>> solution = worked_solution({"problem": "Start with 9. Add 1, then divide by 2. What is the result?"},
        ...                            task="chain")
        >>> print(write_trace(solution, style="reflective"))
        Start with 9 and apply each operation in turn.
        Step 1: 9 + 1 = 10
        Step 2: 10 / 2 = 5
        So the answer is 5.
        Let me check by undoing each step: 5 * 2 = 10, 10 - 1 = 9. It checks out.
        </think>
        <answer>5</answer>
    """
    if style not in ("plain", "reflective"):
        raise ValueError(f"style must be plain or reflective, got {style!r}")
    if slip is not None and style != "reflective":
        raise ValueError("only a reflective trace makes (and catches) a slip")
    right = written_values(solution.steps)
    answer = fmt(solution.answer(right))
    lines: list[str] = []
    if slip is not None:
        wrong = written_values(solution.steps, (slip.step, slip.value))
        check, agreed = solution.check(wrong)
        if agreed or check is None:
            raise ValueError(f"the check does not catch the slip {slip}")
        true_value = apply_op(solution.steps[slip.step].op, *wrong[slip.step][:2])
        lines += [*solution.lines(wrong), f"So the answer is {fmt(solution.answer(wrong))}.", check,
                  f"Wait, {solution.operation(slip.step, wrong)} is {solution.result(slip.step, true_value)}, "
                  f"not {solution.result(slip.step, slip.value)}. Let me redo it.", *solution.lines(right)[1:]]
    else:
        lines += solution.lines(right)
    lines.append(f"So the answer is {answer}.")
    if style == "reflective":
        check, _ = solution.check(right)
        lines += [check] if check else []
    return "\n".join([*lines, "</think>", f"<answer>{answer}</answer>"])


def slip_span(solution: Solution, slip: Slip) -> tuple[int, int]:
    """Where the slipped step's line sits in :func:`write_trace`'s text: ``(start, end)`` character offsets.

    A cold start that leaves slips out of the loss (``train_on_slips: false``) masks this line:
    the model reads the slip, and learns to check it, catch it and redo the work, but is never
    trained to write it.

    Example:
        >>> solution = worked_solution({"problem": "Compute: (47 + 38) * 2"}, task="arithmetic")
        >>> slip = Slip("carry", 0, Fraction(75))
        >>> start, end = slip_span(solution, slip)
        >>> write_trace(solution, style="reflective", slip=slip)[start:end]
        'Step 1: 47 + 38 = 75'
    """
    wrong = written_values(solution.steps, (slip.step, slip.value))
    lines = solution.lines(wrong)  # the header, then one line per step: the trace starts with them
    start = sum(len(line) + 1 for line in lines[:slip.step + 1])
    return start, start + len(lines[slip.step + 1])
