"""Cold start at toy scale: a long chain-of-thought SFT set written from the tasks' own structure.

R1 fine-tunes on a few thousand long chains of thought before its reasoning RL. Here the
chains are written by rule from each problem's structure, so every one is correct:

- ``Compute: <expression>`` problems (``arithmetic``, and any task whose problems read that
  way): one line per operation in evaluation order, a multiplication of two numbers of two or
  more digits worked out by place value (``37 * 84 = 37 * 80 + 37 * 4 = 2960 + 148 = 3108``),
  a check line that undoes every step from the last to the first, then the answer;
- ``chain``: the sentence worked as the expression it describes;
- ``linear_equation``: collect x on the left and the constants on the right, divide, then
  check both sides with the solution substituted.

That is the ``checked`` style, the default. The ``reflective`` style (its matched control,
``plain``) is written by :mod:`ahazero.stages.reflective`: a check after the answer, and in a
set share of the traces a slip that the check catches and corrects; :func:`coldstart_request`
reads the options (``style``, ``slip_fraction``, ``slip_kinds``, ``seed``) of a coldstart
stage or of the command line.

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
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from ahazero.config.schema import ConfigError, ExperimentConfig
from ahazero.config.stage_schema import SLIP_KINDS, StageSpec
from ahazero.stages.reflective import Slip, plan_slips, slip_counts, slip_span, worked_solution, write_trace
from ahazero.stages.samples import (
    RejectionRules,
    sample_paths,
    select_samples,
    summarize_samples,
    write_samples,
)
from ahazero.stages.scoring import check_scorable, score_records
from ahazero.stages.sft_masks import UNTRAINED_SPANS
from ahazero.stages.worked import (
    expression_steps,
    fmt,
    linear_side,
    linear_text,
    operand,
    read_chain,
    step_line,
    substituted,
    undo,
    written_values,
)
from ahazero.tasks._expr import BinOp, Expr, Num, parse_expression, render

__all__ = ["WRITERS", "ColdStartRequest", "chain_of_thought", "check_coldstart", "coldstart", "coldstart_request",
           "describe_set", "parse_expression"]

logger = logging.getLogger("ahazero.stages.coldstart")


def _arithmetic(row: dict[str, Any]) -> tuple[list[str], str]:
    problem = row["problem"]
    if not problem.startswith("Compute:"):
        raise ValueError(f"not a 'Compute: <expression>' problem: {problem!r}")
    expression = problem.removeprefix("Compute:").strip()
    steps = expression_steps(expression)
    if not steps:
        raise ValueError(f"no operation to work out in {problem!r}")
    try:
        values = written_values(steps)
    except ZeroDivisionError:
        raise ValueError(f"division by zero in {problem!r}") from None
    lines = [f"Compute {expression} step by step."]
    lines += [step_line(i, step.op, *v) for i, (step, v) in enumerate(zip(steps, values), 1)]
    checks = [undone[0] for step, v in reversed(list(zip(steps, values))) if (undone := undo(step.op, *v))]
    if checks:
        lines.append("Let me check by undoing each step: " + ", ".join(checks) + ". Every step checks out.")
    return lines, fmt(values[-1][2])


def _chain(row: dict[str, Any]) -> tuple[list[str], str]:
    """A ``chain`` sentence, worked as the expression it describes."""
    problem = str(row["problem"])
    if problem.startswith("Compute:"):
        return _arithmetic(row)
    start, operations = read_chain(problem)
    tree: Expr = Num(start)
    for op, value in operations:
        tree = BinOp(op, tree, Num(value))
    return _arithmetic({**row, "problem": f"Compute: {render(tree)}"})


def _linear_equation(row: dict[str, Any]) -> tuple[list[str], str]:
    problem = row["problem"]
    if not problem.startswith("Solve for x:") or problem.count("=") != 1:
        raise ValueError(f"not a 'Solve for x: ... = ...' problem: {problem!r}")
    left, right = problem.removeprefix("Solve for x:").split("=")
    a, b = linear_side(left)
    c, d = linear_side(right)
    if a == c:
        raise ValueError(f"no unique solution: {problem!r}")
    lines = [f"Solve {left.strip()} = {right.strip()} for x."]
    if c:
        move = f"subtract {linear_text(c, Fraction(0))}" if c > 0 else f"add {linear_text(-c, Fraction(0))}"
        lines.append(f"Collect x on the left: {move} on both sides: {linear_text(a - c, b)} = {fmt(d)}")
    if b:
        move = f"subtract {fmt(b)}" if b > 0 else f"add {fmt(-b)}"
        lines.append(f"Collect the numbers on the right: {move} on both sides: "
                     f"{linear_text(a - c, Fraction(0))} = {fmt(d - b)}")
    k, x = a - c, (d - b) / (a - c)
    if k != 1:
        lines.append(f"Divide both sides by {operand(k)}: x = {fmt(d - b)} / {operand(k)} = {fmt(x)}")
    lhs, rhs = a * x + b, c * x + d
    lines.append(f"Let me check with x = {fmt(x)}: the left side is {substituted(a, b, x)} = {fmt(lhs)}, "
                 f"the right side is {substituted(c, d, x)} = {fmt(rhs)}. "
                 + ("Both sides agree." if lhs == rhs else "They differ."))
    return lines, fmt(x)


#: Task name -> writer of (thinking lines, answer) for one row.
WRITERS: dict[str, Callable[[dict[str, Any]], tuple[list[str], str]]] = {
    "arithmetic": _arithmetic,
    "chain": _chain,
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


@dataclass(frozen=True)
class ColdStartRequest:
    """What a cold-start set holds, its defaults filled in (see :func:`coldstart_request`)."""

    n: int = 300  #: examples
    style: str = "checked"  #: checked | reflective | plain
    slip_fraction: float = 0.0  #: share of the traces with a slip (reflective only)
    slip_kinds: tuple[str, ...] = ()  #: the slips to make (reflective only)
    train_on_slips: bool = True  #: False: the slipped lines are marked to be left out of SFT's loss
    seed: int | None = None  #: seed of the choice of problems and slips (None: the config's)


_REQUEST_FIELDS = ("n", "style", "slip_fraction", "slip_kinds", "train_on_slips", "seed")


def coldstart_request(spec: StageSpec | None = None, **given: Any) -> ColdStartRequest:
    """A coldstart stage's settings, with ``given`` values (None: not given) in their place; checked by the schema.

    Giving a style other than ``reflective`` drops the stage's slip settings. A bad value is a
    :class:`ConfigError` naming the option as the command line spells it.

    Example:
        >>> coldstart_request(style="reflective")
        ColdStartRequest(n=300, style='reflective', slip_fraction=0.3, slip_kinds=('carry', 'sign', 'swap'), train_on_slips=True, seed=None)
        >>> coldstart_request(style="plain", slip_fraction=0.5)
        Traceback (most recent call last):
        ...
        ahazero.config.schema.ConfigError: coldstart: 'slip_fraction' applies only to style 'reflective' (this stage's style is 'plain')
        >>> coldstart_request(slip_kinds=["carry", "typo"], style="reflective")
        Traceback (most recent call last):
        ...
        ahazero.config.schema.ConfigError: coldstart: --slip-kinds: Input should be 'carry', 'sign' or 'swap'
    """
    unknown = sorted(set(given) - set(_REQUEST_FIELDS))
    if unknown:
        raise TypeError(f"coldstart_request: unknown option {', '.join(unknown)}")
    fields = {key: getattr(spec, key) for key in _REQUEST_FIELDS} if spec is not None else {}
    given = {key: value for key, value in given.items() if value is not None}
    if given.get("style", "reflective") != "reflective":
        fields.update(slip_fraction=None, slip_kinds=None, train_on_slips=None)
    fields.update(given)
    n = fields.pop("n", None)  # its range depends on the task: check_coldstart says it
    try:
        checked = StageSpec(name="coldstart", kind="coldstart", **fields)
    except ValidationError as err:
        problems = []
        for item in err.errors():
            message = item["msg"].removeprefix("Value error, ")
            field = next((str(part) for part in item["loc"] if str(part) in _REQUEST_FIELDS), None)
            problems.append(f"--{field.replace('_', '-')}: {message}" if field else message)
        raise ConfigError("coldstart: " + "; ".join(problems)) from None
    style = checked.style or "checked"
    reflective = style == "reflective"
    return ColdStartRequest(
        n=300 if n is None else n, style=style, seed=checked.seed,
        slip_fraction=(0.3 if checked.slip_fraction is None else checked.slip_fraction) if reflective else 0.0,
        slip_kinds=tuple(checked.slip_kinds or SLIP_KINDS) if reflective else (),
        train_on_slips=checked.train_on_slips is not False)


def check_coldstart(cfg: ExperimentConfig, *, n: int, style: str = "checked",
                    seed: int | None = None) -> list[dict[str, Any]]:
    """Check a cold-start request without writing anything; return the train rows it would use.

    Example:
        >>> from ahazero.config.schema import validate_dict
        >>> cfg = validate_dict({"name": "cs", "model": {"name_or_path": "tiny"},
        ...     "task": {"name": "countdown", "num_train": 4, "num_test": 1}, "rewards": [{"name": "countdown"}]})
        >>> check_coldstart(cfg, n=2)
        Traceback (most recent call last):
        ...
        ahazero.config.schema.ConfigError: task 'countdown': coldstart writes chains of thought for arithmetic, chain, linear_equation and any task whose problems read 'Compute: <expression>'
    """
    from ahazero.config.validate import check_config

    checked = check_config(cfg, cuda=False)
    check_scorable(checked)
    rows = [dict(r) for r in checked.task.load("train")]
    if n < 1 or n > len(rows):
        raise ConfigError(f"coldstart: n must be between 1 and the {len(rows)} train problems of task "
                          f"'{cfg.task.name}' (task.num_train), got {n}")
    chosen = sorted(random.Random(f"coldstart-{cfg.seed if seed is None else seed}").sample(range(len(rows)), n))
    rows = [rows[i] for i in chosen]
    if style == "checked":
        _writer(cfg.task.name, rows[0])
    else:
        try:
            worked_solution(rows[0], task=cfg.task.name)
        except ValueError as err:
            raise ConfigError(f"coldstart: task '{cfg.task.name}': {err}") from None
    return rows


def _texts(rows: list[dict[str, Any]], task: str, request: ColdStartRequest,
           seed: int) -> tuple[list[str], list[Slip | None], list[tuple[int, int] | None]]:
    """The examples' texts, the slip of each (None: none) and where its slipped line sits in the text."""
    if request.style == "checked":
        return [chain_of_thought(row, task=task) for row in rows], [None] * len(rows), [None] * len(rows)
    solutions = [worked_solution(row, task=task) for row in rows]
    slips: list[Slip | None] = [None] * len(rows)
    if request.style == "reflective" and request.slip_fraction > 0:
        slips = plan_slips(solutions, fraction=request.slip_fraction, kinds=request.slip_kinds,
                           rng=random.Random(f"coldstart-slips-{seed}"))
    texts = [write_trace(s, style=request.style, slip=slip) for s, slip in zip(solutions, slips)]
    return texts, slips, [None if slip is None else slip_span(s, slip) for s, slip in zip(solutions, slips)]


def _describe(request: ColdStartRequest, slips: list[Slip | None], seed: int) -> dict[str, Any]:
    """What the set holds: its style, and how many traces have a slip, of each kind."""
    made = slip_counts(slips)
    slipped = sum(made.values())
    return {"style": request.style, "n": len(slips), "seed": seed, "checked": request.style != "plain",
            "slip_fraction": request.slip_fraction, "slip_kinds": list(request.slip_kinds), "slipped": slipped,
            "train_on_slips": request.train_on_slips if request.style == "reflective" else None,
            "slipped_fraction": slipped / len(slips) if slips else 0.0,
            "slips": {kind: made.get(kind, 0) for kind in request.slip_kinds}}


def describe_set(summary: dict[str, Any]) -> str:
    """One line on a cold-start set's style and slips (from its summary).

    Example:
        >>> describe_set({"coldstart": {"style": "reflective", "n": 10, "slipped": 3, "slips": {"carry": 2, "sign": 1}}})
        'style reflective: 3 of 10 traces (30.0%) with a slip the check catches (carry 2, sign 1)'
    """
    info = summary.get("coldstart") or {}
    line = f"style {info.get('style')}"
    if info.get("style") == "reflective":
        kinds = ", ".join(f"{k} {v}" for k, v in (info.get("slips") or {}).items())
        n, slipped = info.get("n") or 0, info.get("slipped") or 0
        line += (f": {slipped} of {n} traces ({slipped / n if n else 0:.1%}) with a slip the check catches"
                 + (f" ({kinds})" if kinds else "")
                 + ("; slipped lines left out of SFT's loss" if slipped and info.get("train_on_slips") is False else ""))
    return line


def coldstart(cfg: ExperimentConfig, request: ColdStartRequest | None = None, *, n: int | None = None,
              out: str | Path | None = None, overwrite: bool = False) -> dict[str, Any]:
    """Write a cold-start set from the task's train split (a seeded choice of problems); return the summary.

    ``request`` says what to write (default: today's ``checked`` chains); ``n`` alone is short
    for ``coldstart_request(n=n)``. Every example is scored with the config's rewards and must
    be kept (correct, formatted, language-consistent): one that is not is a bug in its writer,
    reported with the problem. The summary (also ``<out>.summary.json``) says under
    ``coldstart`` what the set holds: its style, how many traces have a slip, of each kind;
    each record says its ``style`` and ``slip`` (a kind, or None). Existing output files are an
    error unless ``overwrite`` (checked, and the output locked, before anything is written).

    Example:
        >>> from ahazero.config.schema import validate_dict
        >>> cfg = validate_dict({"name": "cs", "model": {"name_or_path": "tiny"},
        ...     "task": {"name": "arithmetic", "num_train": 20, "num_test": 2},
        ...     "rewards": [{"name": "accuracy"}, {"name": "think_format", "require_answer_tags": True}]})
        >>> summary = coldstart(cfg, n=5)
        >>> summary["kept"], summary["files"][0]
        (5, 'runs/cs/coldstart.jsonl')
        >>> request = coldstart_request(n=10, style="reflective", slip_fraction=0.5)
        >>> summary = coldstart(cfg.model_copy(update={"name": "cs-reflective"}), request)
        >>> summary["coldstart"]["slipped"], sum(summary["coldstart"]["slips"].values())
        (5, 5)
    """
    from ahazero.config.validate import check_config
    from ahazero.observe.run_lock import claim_output

    if request is not None and n is not None:
        raise TypeError("coldstart: give a request or n, not both")
    request = request or coldstart_request(n=n)
    seed = cfg.seed if request.seed is None else request.seed
    rows = check_coldstart(cfg, n=request.n, style=request.style, seed=seed)
    target = Path(out) if out else cfg.run_dir / "coldstart.jsonl"
    with claim_output(sample_paths(target), overwrite=overwrite):
        return _write_coldstart(cfg, check_config(cfg, cuda=False), rows, target, request, seed)


def _write_coldstart(cfg: ExperimentConfig, checked: Any, rows: list[dict[str, Any]], target: Path,
                     request: ColdStartRequest, seed: int) -> dict[str, Any]:
    prefill = "<think>\n" if cfg.prompt.prefill_think else ""
    try:
        texts, slips, spans = _texts(rows, cfg.task.name, request, seed)
    except ValueError as err:
        raise ConfigError(f"coldstart: task '{cfg.task.name}': {err}") from None
    opener = "" if prefill else "<think>\n"
    completions = [opener + text for text in texts]
    records = score_records(checked, [{**row, "prompt": "", "prefill": prefill} for row in rows], completions,
                            source="coldstart")
    for record, slip, span in zip(records, slips, spans):
        record.update(style=request.style, slip=slip.kind if slip else None)
        if span is not None and not request.train_on_slips:  # SFT leaves these characters out of the loss
            record[UNTRAINED_SPANS] = [[len(opener) + span[0], len(opener) + span[1]]]
    rules = RejectionRules(max_per_prompt=1, min_language=1.0)
    selected = select_samples(records, rules)
    bad = next((r for r in selected if not r["kept"]), None)
    if bad is not None:
        raise RuntimeError(f"coldstart wrote an example the config's rewards reject ({bad['reject_reason']}, "
                           f"rewards {bad['rewards']}): {bad['problem']!r} -> {bad['completion']!r}")
    info = {"source": "coldstart", "task": cfg.task.name, "split": "train", "coldstart": _describe(request, slips, seed)}
    summary = summarize_samples(selected, rules=rules, info=info)
    if request.style == "reflective" and summary["coldstart"]["slipped"] < round(request.slip_fraction * request.n):
        logger.warning("coldstart: only %d of the %d problems could take a slip of the kinds %s (asked for %d)",
                       summary["coldstart"]["slipped"], request.n, ", ".join(request.slip_kinds),
                       round(request.slip_fraction * request.n))
    summary["files"] = [str(p) for p in write_samples(selected, target, summary)]
    logger.info("coldstart: wrote %d examples to %s (%s)", len(selected), target, describe_set(summary))
    return summary
