"""The two tables of ``scripts/gpu_beyond_zero.sh``: distillation and cold start, from the run dirs.

Reads each run directory's newest eval JSON (``<run>/eval/*.json``, written by ``ahazero eval``:
greedy, the default task's held-out split) and its ``metrics.jsonl`` (``train_runtime``, steps),
and writes two markdown tables:

- **Distillation** (student SmolLM2-135M-Instruct): the student, + GRPO alone, + SFT on the
  teacher's rejection samples, + that SFT and the same GRPO; with the teacher and what its
  rejection sampling kept (``runs/<prefix>-data/teacher.summary.json``) below the table.
- **Cold start** (Qwen2.5-Coder-0.5B-Instruct): the base model, + cold-start SFT, + that SFT and
  GRPO, and GRPO alone (``--teacher-run``, the default recipe's big-batch run).

A row whose run or eval is missing says so instead of numbers; an eval of a checkpoint rather
than the final model (a run cut short by its timeout) is marked with the checkpoint's tag.
Standard library only.

Usage:
    python3 scripts/beyond_zero_table.py [--runs runs] [--prefix bz] [--teacher-run runs/big-batch]
                                         [--status logs/status.txt] [--out logs/beyond_zero.md]

Example:
    >>> pct(0.645), num(47.71), num(None)
    ('64.5%', '47.7', 'n/a')
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any

COLUMNS = ("pass@1", "format", "think tokens (mean)", "think tokens (closed)", "reflection", "truncated", "n",
           "train steps", "train_runtime (s)", "model evaluated")


def pct(value: Any) -> str:
    """A rate as a percentage with one decimal, ``n/a`` when missing.

    Example:
        >>> pct(1), pct("x")
        ('100.0%', 'n/a')
    """
    return f"{100 * value:.1f}%" if _is_number(value) else "n/a"


def num(value: Any, digits: int = 1) -> str:
    """A number with ``digits`` decimals, ``n/a`` when missing.

    Example:
        >>> num(132.66, 0), num(float("nan"))
        ('133', 'n/a')
    """
    return f"{value:.{digits}f}" if _is_number(value) else "n/a"


def seconds(value: Any) -> str:
    """Seconds with one decimal and the unit, ``n/a`` when missing.

    Example:
        >>> seconds(31), seconds(None)
        ('31.0 s', 'n/a')
    """
    return f"{value:.1f} s" if _is_number(value) else "n/a"


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _read_json(path: Path) -> dict | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def latest_eval(run: Path) -> dict | None:
    """The newest eval JSON of a run directory (``<run>/eval/*.json``), or None.

    Example:
        >>> import tempfile
        >>> d = Path(tempfile.mkdtemp()); (d / "eval").mkdir()
        >>> _ = (d / "eval" / "x-final.json").write_text('{"tag": "x-final", "pass@1": 0.5}')
        >>> latest_eval(d)["tag"], latest_eval(d / "nowhere")
        ('x-final', None)
    """
    files = sorted((run / "eval").glob("*.json"), key=lambda p: (p.stat().st_mtime, p.name))
    for path in reversed(files):
        data = _read_json(path)
        if data is not None and "pass@1" in data:
            return data
    return None


def training(run: Path) -> dict:
    """``steps`` (the last logged step) and ``train_runtime`` (seconds) of a run's ``metrics.jsonl``.

    Torn or non-JSON lines are skipped. Missing values are None.

    Example:
        >>> import tempfile
        >>> d = Path(tempfile.mkdtemp())
        >>> _ = (d / "metrics.jsonl").write_text('{"step": 1, "loss": 2}\\n{"step": 2, "train_runtime": 9.5}\\n{"st')
        >>> training(d)
        {'steps': 2, 'train_runtime': 9.5}
    """
    steps, runtime = None, None
    try:
        lines = (run / "metrics.jsonl").read_text(encoding="utf-8").splitlines()
    except OSError:
        lines = []
    for line in lines:
        try:
            row = json.loads(line)
        except ValueError:
            continue
        if not isinstance(row, dict):
            continue
        if _is_number(row.get("step")):
            steps = max(steps or 0, int(row["step"]))
        if _is_number(row.get("train_runtime")):
            runtime = float(row["train_runtime"])
    return {"steps": steps, "train_runtime": runtime}


def row(label: str, run: Path | None, *, trained: tuple = ()) -> str:
    """One table row: ``run``'s eval, and the summed training of the runs in ``trained``."""
    result = latest_eval(run) if run is not None else None
    steps, runtimes = [], []
    for path in trained:
        info = training(path)
        steps.append(str(info["steps"]) if info["steps"] is not None else "n/a")
        runtimes.append(info["train_runtime"])
    runtime_text = " + ".join(num(r) for r in runtimes) or "-"
    if len(runtimes) > 1 and all(_is_number(r) for r in runtimes):
        runtime_text += f" = {num(sum(runtimes))}"
    if result is None:
        missing = f"no eval in {run}/eval" if run is not None else "not run"
        return f"| {label} | " + " | ".join(["n/a"] * 7) + f" | {' + '.join(steps) or '-'} | {runtime_text} | {missing} |"
    cells = [pct(result.get("pass@1")), pct(result.get("format_rate")), num(result.get("think_tokens_mean")),
             num(result.get("think_tokens_closed_mean")), pct(result.get("reflection_rate")),
             pct(result.get("truncation_rate")), str(result.get("n", "n/a")), " + ".join(steps) or "-",
             runtime_text, f"`{result.get('tag', '?')}`"]
    return f"| {label} | " + " | ".join(cells) + " |"


def _header(first: str) -> list:
    return [f"| {first} | " + " | ".join(COLUMNS) + " |", "|---" * (len(COLUMNS) + 1) + "|"]


def distillation_table(runs: Path, prefix: str, teacher_run: Path) -> str:
    """The distillation table (student base / + GRPO / + SFT / + SFT + GRPO) and the teacher's lines."""
    s = runs / f"{prefix}-student"
    lines = ["## Distillation: SmolLM2-135M-Instruct student, arithmetic held-out (greedy)", ""]
    lines += _header("student")
    lines.append(row("base", runs / f"{prefix}-student-base"))
    lines.append(row("+ GRPO", runs / f"{prefix}-student-grpo", trained=(runs / f"{prefix}-student-grpo",)))
    lines.append(row("+ SFT on teacher samples", runs / f"{prefix}-student-sft", trained=(runs / f"{prefix}-student-sft",)))
    lines.append(row("+ SFT + GRPO", runs / f"{prefix}-student-sft-grpo",
                     trained=(Path(f"{s}-sft"), Path(f"{s}-sft-grpo"))))
    lines.append("")
    teacher = latest_eval(teacher_run)
    summary = _read_json(runs / f"{prefix}-data" / "teacher.summary.json")
    notes = [f"Teacher ({teacher_run}): pass@1 {pct(teacher.get('pass@1'))}, format {pct(teacher.get('format_rate'))}"
             if teacher else f"Teacher ({teacher_run}): no eval"]
    if summary:
        notes.append(f"rejection sampling kept {summary.get('kept')} of {summary.get('sampled')} completions "
                     f"({summary.get('prompts_kept')} of {summary.get('prompts')} prompts; correct "
                     f"{pct(summary.get('correct_rate'))}; generation {num(summary.get('generation_seconds'), 0)} s)")
    else:
        notes.append("no rejection-sampling summary")
    lines.append("; ".join(notes) + ".")
    grpo, sft = training(runs / f"{prefix}-student-grpo"), training(runs / f"{prefix}-student-sft")
    lines.append(f"Training budget (`train_runtime`): student GRPO {seconds(grpo['train_runtime'])} vs student SFT "
                 f"{seconds(sft['train_runtime'])}; the teacher's sampling time is extra.")
    return "\n".join(lines) + "\n"


def coldstart_table(runs: Path, prefix: str, teacher_run: Path) -> str:
    """The cold-start table (base / + SFT / + SFT + GRPO / GRPO alone)."""
    c = runs / f"{prefix}-cold"
    lines = ["## Cold start: Qwen2.5-Coder-0.5B-Instruct, arithmetic held-out (greedy)", ""]
    lines += _header("model")
    lines.append(row("base", runs / f"{prefix}-base"))
    lines.append(row("+ cold-start SFT", Path(f"{c}-sft"), trained=(Path(f"{c}-sft"),)))
    lines.append(row("+ cold-start SFT + GRPO", Path(f"{c}-grpo"), trained=(Path(f"{c}-sft"), Path(f"{c}-grpo"))))
    lines.append(row(f"GRPO alone (`{teacher_run.name}`)", teacher_run, trained=(teacher_run,)))
    summary = _read_json(runs / f"{prefix}-data" / "coldstart.summary.json")
    if summary:
        lines += ["", f"Cold-start set: {summary.get('kept')} examples."]
    return "\n".join(lines) + "\n"


def render(runs: Path, prefix: str, teacher_run: Path, status: Path | None = None) -> str:
    """Both tables as one markdown document (with the status lines of the run, when given)."""
    parts = ["# Beyond R1-Zero: distillation and cold start", "",
             "pass@1 and format: greedy, the default task's held-out split; think tokens: all text before the "
             "answer (mean) and in closed think blocks; train steps and `train_runtime` of each training run "
             "behind the row, summed.", "",
             distillation_table(runs, prefix, teacher_run), coldstart_table(runs, prefix, teacher_run)]
    if status is not None and status.is_file():
        text = status.read_text(encoding="utf-8", errors="replace").splitlines()
        start = max((i for i, line in enumerate(text) if line.startswith("=== ") and "gpu_beyond_zero" in line),
                    default=0)
        parts += ["## Steps (status.txt, last run)", "", "```", *text[start:], "```", ""]
    return "\n".join(parts)


def main(argv: list | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", default="runs", help="the runs folder (default runs)")
    parser.add_argument("--prefix", default="bz", help="run-name prefix of gpu_beyond_zero.sh (default bz)")
    parser.add_argument("--teacher-run", default="runs/big-batch", help="the teacher's run = GRPO alone")
    parser.add_argument("--status", default=None, help="logs/status.txt, appended to the tables")
    parser.add_argument("--out", default=None, help="write the markdown here too")
    args = parser.parse_args(argv)
    text = render(Path(args.runs), args.prefix, Path(args.teacher_run), Path(args.status) if args.status else None)
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(text, encoding="utf-8")
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
