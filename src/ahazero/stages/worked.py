"""Worked solutions as data: a problem read into its steps, before any writer turns them into text.

The cold-start writers (:mod:`ahazero.stages.coldstart` for today's chains,
:mod:`ahazero.stages.reflective` for the plain and reflective ones) share what is here:

- reading a problem: ``Compute: <expression>`` (with ``ahazero.tasks._expr.parse_expression``),
  a ``chain`` task's sentence (:func:`read_chain`), one side of a linear equation
  (:func:`linear_side`);
- its steps: :class:`Step` is one operation whose operands are numbers of the problem or
  results of earlier steps, so a slip written in one step can be carried through the rest
  (:func:`written_values`);
- numbers as a person writes them (:func:`fmt`, :func:`operand`), a product of two numbers of
  two or more digits by place value (:func:`long_multiplication`), and the sides of an equation
  with x written out (:func:`substituted`).

Example:
    >>> steps = expression_steps("(47 + 38) * 2")
    >>> [(s.op, s.left and fmt(s.left), s.right and fmt(s.right), s.left_step, s.right_step) for s in steps]
    [('+', '47', '38', None, None), ('*', None, '2', 0, None)]
    >>> [fmt(value) for _, _, value in written_values(steps)]
    ['85', '170']
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from fractions import Fraction

from ahazero.tasks._expr import Expr, Num, apply_op, parse_expression

__all__ = ["INVERSE", "Step", "Values", "chain_steps", "expression_steps", "fmt", "linear_side", "linear_text",
           "long_multiplication", "long_multiplication_parts", "operand", "read_chain",
           "step_line", "substituted", "undo", "written_values"]

#: The operation that undoes each one.
INVERSE = {"+": "-", "-": "+", "*": "/", "/": "*"}


def fmt(value: Fraction) -> str:
    """A value as written: ``12``, ``-3/4``.

    Example:
        >>> fmt(Fraction(-6, 8)), fmt(Fraction(12))
        ('-3/4', '12')
    """
    return str(value.numerator) if value.denominator == 1 else f"{value.numerator}/{value.denominator}"


def operand(value: Fraction) -> str:
    """A value as an operand: negative numbers and fractions in parentheses.

    Example:
        >>> operand(Fraction(-6)), operand(Fraction(1, 2)), operand(Fraction(7))
        ('(-6)', '(1/2)', '7')
    """
    text = fmt(value)
    return f"({text})" if value < 0 or value.denominator != 1 else text


def long_multiplication_parts(a: Fraction, b: Fraction) -> list[int] | None:
    """The partial products of ``a * b`` by the place values of ``b``; None for fractions, a factor under 10 or
    a ``b`` with one non-zero digit (no long multiplication to write).

    Example:
        >>> long_multiplication_parts(Fraction(37), Fraction(-84)), long_multiplication_parts(Fraction(37), Fraction(80))
        ([2960, 148], None)
    """
    if a.denominator != 1 or b.denominator != 1 or abs(a) < 10 or abs(b) < 10:
        return None
    x, digits = abs(int(a)), str(abs(int(b)))
    parts = [x * int(d) * 10 ** (len(digits) - 1 - i) for i, d in enumerate(digits) if d != "0"]
    return parts if len(parts) >= 2 else None


def long_multiplication(a: Fraction, b: Fraction, written: Fraction) -> str | None:
    """``37 * 84 = 37 * 80 + 37 * 4 = 2960 + 148 = 3108`` when both are integers of two or more digits.

    ``written`` is the product as the line states it (the true one, or a slip's: the partial
    products stay right, the total is what is written); a negative product, or a sign that
    differs from the factors', is stated after the unsigned work.

    Example:
        >>> long_multiplication(Fraction(-37), Fraction(84), Fraction(-3108))
        '37 * 84 = 37 * 80 + 37 * 4 = 2960 + 148 = 3108, so (-37) * 84 = -3108'
        >>> long_multiplication(Fraction(37), Fraction(4), Fraction(148)) is None
        True
    """
    parts = long_multiplication_parts(a, b)
    if parts is None:
        return None
    x, y = abs(int(a)), abs(int(b))
    line = (f"{x} * {y} = " + " + ".join(f"{x} * {part // x}" for part in parts) + " = "
            + " + ".join(map(str, parts)) + f" = {fmt(abs(written))}")
    if written < 0 or (a < 0) != (b < 0):
        line += f", so {operand(a)} * {operand(b)} = {fmt(written)}"
    return line


@dataclass(frozen=True)
class Step:
    """One operation of a worked solution: ``left op right``.

    An operand is a number of the problem (its value in ``left`` / ``right``) or the result of
    an earlier step (``left_step`` / ``right_step``, an index; the value is then None).
    """

    op: str
    left: Fraction | None
    right: Fraction | None
    left_step: int | None = None
    right_step: int | None = None


#: ``(left, right, result)`` of each step as written.
Values = list[tuple[Fraction, Fraction, Fraction]]


def written_values(steps: list[Step], slip: tuple[int, Fraction] | None = None) -> Values:
    """``(left, right, result)`` of every step as written, with ``slip = (step, value)`` written instead.

    Every step after a slip works from the values written before it, so the slip carries on.

    Example:
        >>> steps = expression_steps("(47 + 38) * 2")
        >>> [fmt(v) for v in written_values(steps, slip=(0, Fraction(75)))[1]]
        ['75', '2', '150']
    """
    out: Values = []
    for i, step in enumerate(steps):
        a = step.left if step.left is not None else out[step.left_step or 0][2]
        b = step.right if step.right is not None else out[step.right_step or 0][2]
        if step.op == "/" and b == 0:
            raise ZeroDivisionError(f"step {i + 1} divides by zero")
        result = slip[1] if slip is not None and slip[0] == i else apply_op(step.op, a, b)
        out.append((a, b, result))
    return out


def step_line(number: int, op: str, a: Fraction, b: Fraction, result: Fraction) -> str:
    """``Step 2: 12 * 3 = 36`` (a product of two numbers of two or more digits by place value).

    Example:
        >>> step_line(1, "-", Fraction(12), Fraction(50), Fraction(-38))
        'Step 1: 12 - 50 = -38'
    """
    long = long_multiplication(a, b, result) if op == "*" else None
    return f"Step {number}: " + (long or f"{operand(a)} {op} {operand(b)} = {fmt(result)}")


def undo(op: str, a: Fraction, b: Fraction, result: Fraction) -> tuple[str, Fraction, str] | None:
    """Undo ``a op b = result``: ``(text, value, side)``, the value it gives and the operand it should equal.

    ``side`` is ``"left"`` (the value should be ``a``) or ``"right"`` (a product with zero on the
    right is undone by the left factor); None when nothing undoes the step (a product of zeros).

    Example:
        >>> undo("+", Fraction(47), Fraction(38), Fraction(75))
        ('75 - 38 = 37', Fraction(37, 1), 'left')
        >>> undo("*", Fraction(0), Fraction(0), Fraction(0)) is None
        True
    """
    side = "left"
    if op == "*" and b == 0:
        a, b, side = b, a, "right"
    if op in "*/" and b == 0:
        return None
    value = apply_op(INVERSE[op], result, b)
    return f"{operand(result)} {INVERSE[op]} {operand(b)} = {fmt(value)}", value, side


def expression_steps(expression: str) -> list[Step]:
    """The steps of an expression in evaluation order (left operand first).

    Example:
        >>> [(s.op, s.left_step, s.right_step) for s in expression_steps("9 - (4 - 2) * 3")]
        [('-', None, None), ('*', 0, None), ('-', None, 1)]
    """
    steps: list[Step] = []

    def walk(node: Expr) -> tuple[Fraction | None, int | None]:
        if isinstance(node, Num):
            return Fraction(node.value), None
        (a, a_step), (b, b_step) = walk(node.left), walk(node.right)
        steps.append(Step(node.op, a, b, a_step, b_step))
        return None, len(steps) - 1

    walk(parse_expression(expression))
    return steps


_CHAIN = re.compile(r"Start with (\d+)\. (.+)\. What is the result\?")
_CHAIN_OP = re.compile(r"(?:then )?(add|subtract|multiply by|divide by) (\d+)")
_CHAIN_WORDS = {"add": "+", "subtract": "-", "multiply by": "*", "divide by": "/"}


def read_chain(problem: str) -> tuple[int, list[tuple[str, int]]]:
    """A ``chain`` task's sentence as its start and its operations.

    Example:
        >>> read_chain("Start with 17. Add 23, multiply by 4, then divide by 5. What is the result?")
        (17, [('+', 23), ('*', 4), ('/', 5)])
        >>> read_chain("Start with 17. Square it. What is the result?")
        Traceback (most recent call last):
        ...
        ValueError: not a chain of operations: 'Square it'
    """
    m = _CHAIN.fullmatch(problem.strip())
    if m is None:
        raise ValueError(f"not a 'Start with N. <operations>. What is the result?' problem: {problem!r}")
    operations = []
    for part in m.group(2).split(", "):
        op = _CHAIN_OP.fullmatch(part.strip().lower())
        if op is None:
            raise ValueError(f"not a chain of operations: {m.group(2)!r}")
        operations.append((_CHAIN_WORDS[op.group(1)], int(op.group(2))))
    return int(m.group(1)), operations


def chain_steps(problem: str) -> list[Step]:
    """The steps of a ``chain`` sentence: each operation on the result of the one before.

    Example:
        >>> [(s.op, fmt(s.right), s.left_step) for s in chain_steps("Start with 9. Add 1, then divide by 2. What is the result?")]
        [('+', '1', None), ('/', '2', 0)]
    """
    start, operations = read_chain(problem)
    return [Step(op, Fraction(start) if i == 0 else None, Fraction(value), None if i == 0 else i - 1)
            for i, (op, value) in enumerate(operations)]


_LINEAR_TERM = re.compile(r"([+-]?)\s*(\d*)(x?)")


def linear_side(text: str) -> tuple[Fraction, Fraction]:
    """One side of a linear equation as ``(coefficient of x, constant)``.

    Example:
        >>> [tuple(map(fmt, linear_side(t))) for t in ("3x - 4", "-x", "7")]
        [('3', '-4'), ('-1', '0'), ('0', '7')]
    """
    coefficient, constant = Fraction(0), Fraction(0)
    rest = text.replace(" ", "")
    if not rest:
        raise ValueError("empty side of an equation")
    while rest:
        m = _LINEAR_TERM.match(rest)
        if m is None or not m.group(0) or not (m.group(2) or m.group(3)):
            raise ValueError(f"cannot read the linear expression {text!r}")
        sign = -1 if m.group(1) == "-" else 1
        if m.group(3):
            coefficient += sign * (int(m.group(2)) if m.group(2) else 1)
        else:
            constant += sign * int(m.group(2))
        rest = rest[m.end():]
    return coefficient, constant


def linear_text(coefficient: Fraction, constant: Fraction) -> str:
    """``coefficient*x + constant`` as written: ``2x - 4``, ``-x``, ``7``, ``0``.

    Example:
        >>> linear_text(Fraction(2), Fraction(-4)), linear_text(Fraction(-1), Fraction(0))
        ('2x - 4', '-x')
    """
    x = {1: "x", -1: "-x"}.get(coefficient, f"{fmt(coefficient)}x") if coefficient else ""
    if not constant:
        return x or "0"
    if not x:
        return fmt(constant)
    return f"{x} - {fmt(-constant)}" if constant < 0 else f"{x} + {fmt(constant)}"


def substituted(coefficient: Fraction, constant: Fraction, x: Fraction) -> str:
    """``coefficient*x + constant`` with x written out: ``3 * (-6) + 7``, ``(-6) - 5``, ``7``.

    Example:
        >>> substituted(Fraction(3), Fraction(7), Fraction(-6))
        '3 * (-6) + 7'
    """
    if not coefficient:
        return fmt(constant)
    text = operand(x) if coefficient == 1 else f"{operand(coefficient)} * {operand(x)}"
    if constant:
        text += f" - {fmt(-constant)}" if constant < 0 else f" + {fmt(constant)}"
    return text
