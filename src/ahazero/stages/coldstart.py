"""Cold start at toy scale: a long chain-of-thought SFT set written from the tasks' own structure.

R1 fine-tunes on a few thousand long chains of thought before its reasoning RL. Here the
chains are written by rule from each problem's structure, so every one is correct:

- ``Compute: <expression>`` problems (``arithmetic``, and any task whose problems read that
  way): one line per operation in evaluation order, a multiplication of two numbers of two or
  more digits worked out by place value (``37 * 84 = 37 * 80 + 37 * 4 = 2960 + 148 = 3108``),
  a check line that undoes every step from the last to the first, then the answer;
- ``linear_equation``: collect x on the left and the constants on the right, divide, then
  check both sides with the solution substituted.

Each text ends with ``</think>`` and ``<answer>…</answer>``, the recipe's format, and is scored
with the config's rewards like any sample; an example the rewards do not keep is an error.
The check lines say "check", one of the reflection phrases the traces count, so a model
trained on this set starts out "reflecting" by imitation.

Example:
    >>> print(chain_of_thought({"problem": "Compute: (17 - 5) * 3 + 4", "answer": "40"}, task="arithmetic"))
    Compute (17 - 5) * 3 + 4 step by step.
    Step 1: 17 - 5 = 12
    Step 2: 12 * 3 = 36
    Step 3: 36 + 4 = 40
    Let me check by undoing each step: 40 - 4 = 36, 36 / 3 = 12, 12 + 5 = 17. Every step checks out.
    So the answer is 40.
    </think>
    <answer>40</answer>
"""

from __future__ import annotations

import logging
import random
import re
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path
from typing import Any

from ahazero.config.schema import ConfigError, ExperimentConfig
from ahazero.stages.samples import (
    RejectionRules,
    sample_paths,
    select_samples,
    summarize_samples,
    write_samples,
)
from ahazero.stages.scoring import check_scorable, score_records
from ahazero.tasks._expr import Expr, Num, parse_expression

__all__ = ["WRITERS", "chain_of_thought", "check_coldstart", "coldstart", "parse_expression"]

logger = logging.getLogger("ahazero.stages.coldstart")

_INVERSE = {"+": "-", "-": "+", "*": "/", "/": "*"}


def _fmt(value: Fraction) -> str:
    return str(value.numerator) if value.denominator == 1 else f"{value.numerator}/{value.denominator}"


def _num(value: Fraction) -> str:
    """A value as an operand: negative numbers and fractions in parentheses."""
    text = _fmt(value)
    return f"({text})" if value < 0 or value.denominator != 1 else text


def _apply(op: str, a: Fraction, b: Fraction) -> Fraction:
    return {"+": a + b, "-": a - b, "*": a * b}[op] if op != "/" else a / b


def _long_multiplication(a: Fraction, b: Fraction, result: Fraction) -> str | None:
    """``37 * 84 = 37 * 80 + 37 * 4 = 2960 + 148 = 3108`` when both are integers of two or more digits."""
    if a.denominator != 1 or b.denominator != 1 or abs(a) < 10 or abs(b) < 10:
        return None
    x, y = abs(int(a)), abs(int(b))
    digits = str(y)
    parts = [int(d) * 10 ** (len(digits) - 1 - i) for i, d in enumerate(digits) if d != "0"]
    if len(parts) < 2:
        return None
    line = (f"{x} * {y} = " + " + ".join(f"{x} * {p}" for p in parts) + " = "
            + " + ".join(str(x * p) for p in parts) + f" = {x * y}")
    if result < 0:
        line += f", so {_num(a)} * {_num(b)} = {_fmt(result)}"
    return line


def _arithmetic(row: dict[str, Any]) -> tuple[list[str], str]:
    problem = row["problem"]
    if not problem.startswith("Compute:"):
        raise ValueError(f"not a 'Compute: <expression>' problem: {problem!r}")
    expression = problem.removeprefix("Compute:").strip()
    steps: list[tuple[str, Fraction, Fraction, Fraction]] = []

    def walk(node: Expr) -> Fraction:
        if isinstance(node, Num):
            return Fraction(node.value)
        a, b = walk(node.left), walk(node.right)
        if node.op == "/" and b == 0:
            raise ValueError(f"division by zero in {problem!r}")
        result = _apply(node.op, a, b)
        steps.append((node.op, a, b, result))
        return result

    value = walk(parse_expression(expression))
    lines = [f"Compute {expression} step by step."]
    for i, (op, a, b, result) in enumerate(steps, 1):
        long = _long_multiplication(a, b, result) if op == "*" else None
        lines.append(f"Step {i}: " + (long or f"{_num(a)} {op} {_num(b)} = {_fmt(result)}"))
    checks = []
    for op, a, b, result in reversed(steps):
        if op == "*" and b == 0:
            op, a, b = "*", b, a  # undo the multiplication by the other factor
        if (op == "*" and b == 0) or (op == "/" and b == 0):
            continue
        checks.append(f"{_num(result)} {_INVERSE[op]} {_num(b)} = {_fmt(a)}")
    if checks:
        lines.append("Let me check by undoing each step: " + ", ".join(checks) + ". Every step checks out.")
    return lines, _fmt(value)


_LINEAR_TERM = re.compile(r"([+-]?)\s*(\d*)(x?)")


def _linear_side(text: str) -> tuple[Fraction, Fraction]:
    """``3x - 4`` -> (3, -4); ``-x`` -> (-1, 0); ``7`` -> (0, 7)."""
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


def _linear_text(coefficient: Fraction, constant: Fraction) -> str:
    x = {1: "x", -1: "-x"}.get(coefficient, f"{_fmt(coefficient)}x") if coefficient else ""
    if not constant:
        return x or "0"
    if not x:
        return _fmt(constant)
    return f"{x} - {_fmt(-constant)}" if constant < 0 else f"{x} + {_fmt(constant)}"


def _linear_equation(row: dict[str, Any]) -> tuple[list[str], str]:
    problem = row["problem"]
    if not problem.startswith("Solve for x:") or problem.count("=") != 1:
        raise ValueError(f"not a 'Solve for x: ... = ...' problem: {problem!r}")
    left, right = problem.removeprefix("Solve for x:").split("=")
    a, b = _linear_side(left)
    c, d = _linear_side(right)
    if a == c:
        raise ValueError(f"no unique solution: {problem!r}")
    lines = [f"Solve {left.strip()} = {right.strip()} for x."]
    if c:
        move = f"subtract {_linear_text(c, Fraction(0))}" if c > 0 else f"add {_linear_text(-c, Fraction(0))}"
        lines.append(f"Collect x on the left: {move} on both sides: {_linear_text(a - c, b)} = {_fmt(d)}")
    if b:
        move = f"subtract {_fmt(b)}" if b > 0 else f"add {_fmt(-b)}"
        lines.append(f"Collect the numbers on the right: {move} on both sides: "
                     f"{_linear_text(a - c, Fraction(0))} = {_fmt(d - b)}")
    k, x = a - c, (d - b) / (a - c)
    if k != 1:
        lines.append(f"Divide both sides by {_num(k)}: x = {_fmt(d - b)} / {_num(k)} = {_fmt(x)}")
    lhs, rhs = a * x + b, c * x + d
    lines.append(f"Let me check with x = {_fmt(x)}: the left side is {_substituted(a, b, x)} = {_fmt(lhs)}, "
                 f"the right side is {_substituted(c, d, x)} = {_fmt(rhs)}. "
                 + ("Both sides agree." if lhs == rhs else "They differ."))
    return lines, _fmt(x)


def _substituted(coefficient: Fraction, constant: Fraction, x: Fraction) -> str:
    """``coefficient*x + constant`` with x written out: ``3 * (-6) + 7``, ``(-6) - 5``, ``7``."""
    if not coefficient:
        return _fmt(constant)
    text = _num(x) if coefficient == 1 else f"{_num(coefficient)} * {_num(x)}"
    if constant:
        text += f" - {_fmt(-constant)}" if constant < 0 else f" + {_fmt(constant)}"
    return text


#: Task name -> writer of (thinking lines, answer) for one row.
WRITERS: dict[str, Callable[[dict[str, Any]], tuple[list[str], str]]] = {
    "arithmetic": _arithmetic,
    "linear_equation": _linear_equation,
}


def _writer(task: str, row: dict[str, Any]) -> Callable[[dict[str, Any]], tuple[list[str], str]]:
    if task in WRITERS:
        return WRITERS[task]
    if str(row.get("problem", "")).startswith("Compute:"):
        return _arithmetic
    raise ConfigError(f"task '{task}': coldstart writes chains of thought for {', '.join(sorted(WRITERS))} and "
                      "any task whose problems read 'Compute: <expression>'")


def chain_of_thought(row: dict[str, Any], *, task: str) -> str:
    """The whole answer text after ``<think>``: the worked steps, ``</think>``, ``<answer>…</answer>``.

    Example:
        >>> text = chain_of_thought({"problem": "Compute: 37 * 84"}, task="arithmetic")
        >>> text.splitlines()[1]
        'Step 1: 37 * 84 = 37 * 80 + 37 * 4 = 2960 + 148 = 3108'
        >>> print(chain_of_thought({"problem": "Solve for x: 3x + 7 = x - 5"}, task="linear_equation"))
        Solve 3x + 7 = x - 5 for x.
        Collect x on the left: subtract x on both sides: 2x + 7 = -5
        Collect the numbers on the right: subtract 7 on both sides: 2x = -12
        Divide both sides by 2: x = -12 / 2 = -6
        Let me check with x = -6: the left side is 3 * (-6) + 7 = -11, the right side is (-6) - 5 = -11. Both sides agree.
        So the answer is -6.
        </think>
        <answer>-6</answer>
    """
    lines, answer = _writer(task, row)(row)
    return "\n".join([*lines, f"So the answer is {answer}.", "</think>", f"<answer>{answer}</answer>"])


def check_coldstart(cfg: ExperimentConfig, *, n: int) -> list[dict[str, Any]]:
    """Check a cold-start request without writing anything; return the train rows it would use.

    Example:
        >>> from ahazero.config.schema import validate_dict
        >>> cfg = validate_dict({"name": "cs", "model": {"name_or_path": "tiny"},
        ...     "task": {"name": "countdown", "num_train": 4, "num_test": 1}, "rewards": [{"name": "countdown"}]})
        >>> check_coldstart(cfg, n=2)
        Traceback (most recent call last):
        ...
        ahazero.config.schema.ConfigError: task 'countdown': coldstart writes chains of thought for arithmetic, linear_equation and any task whose problems read 'Compute: <expression>'
    """
    from ahazero.config.validate import check_config

    checked = check_config(cfg, cuda=False)
    check_scorable(checked)
    rows = [dict(r) for r in checked.task.load("train")]
    if n < 1 or n > len(rows):
        raise ConfigError(f"coldstart: n must be between 1 and the {len(rows)} train problems of task "
                          f"'{cfg.task.name}' (task.num_train), got {n}")
    chosen = sorted(random.Random(f"coldstart-{cfg.seed}").sample(range(len(rows)), n))
    rows = [rows[i] for i in chosen]
    _writer(cfg.task.name, rows[0])
    return rows


def coldstart(cfg: ExperimentConfig, *, n: int = 300, out: str | Path | None = None,
              overwrite: bool = False) -> dict[str, Any]:
    """Write ``n`` cold-start examples from the task's train split (a seeded choice); return the summary.

    Every example is scored with the config's rewards and must be kept (correct, formatted,
    language-consistent): one that is not is a bug in its writer, reported with the problem.
    Existing output files are an error unless ``overwrite`` (checked, and the output locked,
    before anything is written).

    Example:
        >>> from ahazero.config.schema import validate_dict
        >>> cfg = validate_dict({"name": "cs", "model": {"name_or_path": "tiny"},
        ...     "task": {"name": "arithmetic", "num_train": 20, "num_test": 2},
        ...     "rewards": [{"name": "accuracy"}, {"name": "think_format", "require_answer_tags": True}]})
        >>> summary = coldstart(cfg, n=5)
        >>> summary["kept"], summary["files"][0]
        (5, 'runs/cs/coldstart.jsonl')
    """
    from ahazero.config.validate import check_config
    from ahazero.observe.run_lock import claim_output

    rows = check_coldstart(cfg, n=n)
    target = Path(out) if out else cfg.run_dir / "coldstart.jsonl"
    with claim_output(sample_paths(target), overwrite=overwrite):
        return _write_coldstart(cfg, check_config(cfg, cuda=False), rows, target)


def _write_coldstart(cfg: ExperimentConfig, checked: Any, rows: list[dict[str, Any]], target: Path) -> dict[str, Any]:
    prefill = "<think>\n" if cfg.prompt.prefill_think else ""
    texts = []
    for row in rows:
        try:
            texts.append(chain_of_thought(row, task=cfg.task.name))
        except ValueError as err:
            raise ConfigError(f"coldstart: task '{cfg.task.name}': {err}") from None
    completions = [("" if prefill else "<think>\n") + text for text in texts]
    records = score_records(checked, [{**row, "prompt": "", "prefill": prefill} for row in rows], completions,
                            source="coldstart")
    rules = RejectionRules(max_per_prompt=1, min_language=1.0)
    selected = select_samples(records, rules)
    bad = next((r for r in selected if not r["kept"]), None)
    if bad is not None:
        raise RuntimeError(f"coldstart wrote an example the config's rewards reject ({bad['reject_reason']}, "
                           f"rewards {bad['rewards']}): {bad['problem']!r} -> {bad['completion']!r}")
    summary = summarize_samples(selected, rules=rules, info={"source": "coldstart", "task": cfg.task.name,
                                                              "split": "train"})
    summary["files"] = [str(p) for p in write_samples(selected, target, summary)]
    logger.info("coldstart: wrote %d examples to %s", len(selected), target)
    return summary
