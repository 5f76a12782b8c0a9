"""The report of a stages run: every stage's held-out numbers side by side (markdown + HTML).

``runs/<name>/report.md`` holds two tables: what each stage did (kind, input, wall time,
steps, samples kept) and the held-out evaluation of the base model and of every grpo/sft
stage's final model, one column each (a table per task when stages train on different
tasks). ``runs/<name>/report/report.html`` is ``ahazero report`` over the grpo and sft
stages (training curves, aha test, the same evaluations).

Example:
    >>> print(held_out_table([("base", {"pass@1": 0.25, "n": 4}), ("rl", {"pass@1": 0.5, "n": 4})]).splitlines()[2])
    | pass@1 | 25.0% | 50.0% |
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ahazero.cache.atomic_files import atomic_write_text
from ahazero.config.schema import ExperimentConfig
from ahazero.stages.plan import stage_status

__all__ = ["held_out_table", "stage_table", "tasks_apart", "write_stage_report"]

logger = logging.getLogger("ahazero.stages.report")

#: Rows of the held-out table: (key in the eval results, label, format).
HELD_OUT_ROWS = (
    ("pass@1", "pass@1", "{:.1%}"),
    ("format_rate", "format rate", "{:.1%}"),
    ("think_tokens_mean", "thinking tokens, mean", "{:.1f}"),
    ("think_tokens_closed_mean", "thinking tokens, closed think blocks", "{:.1f}"),
    ("reflection_rate", "reflection rate", "{:.1%}"),
    ("language_consistency", "language consistency", "{:.3f}"),
    ("truncation_rate", "truncated", "{:.1%}"),
    ("n", "held-out problems", "{}"),
)


def _fmt(value: Any, form: str) -> str:
    return "–" if value is None else form.format(value)


def held_out_table(columns: Sequence[tuple[str, dict[str, Any]]]) -> str:
    """A markdown table: one row per held-out metric, one column per evaluated model.

    Example:
        >>> print(held_out_table([("base", {"pass@1": 0.25})]).splitlines()[0])
        | | base |
    """
    lines = ["| | " + " | ".join(name for name, _ in columns) + " |", "|---" * (len(columns) + 1) + "|"]
    for key, label, form in HELD_OUT_ROWS:
        lines.append(f"| {label} | " + " | ".join(_fmt(results.get(key), form) for _, results in columns) + " |")
    return "\n".join(lines)


def tasks_apart(columns: Sequence[tuple[str, dict[str, Any]]],
                default: str) -> dict[str, list[tuple[str, dict[str, Any]]]]:
    """Group evaluated columns by the task they were evaluated on (stages may train on different tasks).

    An evaluation without a ``task`` counts as the config's (``default``); the order of first
    appearance is kept, so a warm-up stage's task comes before the main one's.

    Example:
        >>> cols = [("base", {"task": "arithmetic"}), ("warm", {"task": "arithmetic"}), ("rl", {"task": "gsm8k"})]
        >>> {task: [name for name, _ in c] for task, c in tasks_apart(cols, "gsm8k").items()}
        {'arithmetic': ['base', 'warm'], 'gsm8k': ['rl']}
    """
    groups: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    for name, results in columns:
        groups.setdefault(str(results.get("task") or default), []).append((name, results))
    return groups


def _did(record: dict[str, Any]) -> str:
    if record.get("kind") in ("grpo", "sft"):
        steps = record.get("steps", 0)
        parts = [f"{steps} step{'' if steps == 1 else 's'}"]
        if record.get("train_runtime") is not None:
            parts.append(f"{record['train_runtime']:.0f} s training")
        if record.get("last_loss") is not None and record.get("kind") == "sft":
            parts.append(f"last loss {record['last_loss']:.3f}")
        if record.get("last_reward") is not None:
            parts.append(f"last reward {record['last_reward']:.2f}")
        return ", ".join(parts)
    if record.get("kind") == "sample":
        return (f"kept {record.get('kept')} of {record.get('sampled')} completions, "
                f"{record.get('prompts_kept')} of {record.get('prompts')} prompts")
    return f"{record.get('kept')} examples"


def stage_table(rows: Sequence[tuple[str, str, dict[str, Any] | None]]) -> str:
    """A markdown table of ``(stage, kind, stage.json or None)``: what each stage did and how long it took.

    Example:
        >>> print(stage_table([("rl", "grpo", None)]).splitlines()[2])
        | rl | grpo | – | not run yet | – |
    """
    lines = ["| stage | kind | from | what it did | wall time |", "|---|---|---|---|---|"]
    for name, kind, record in rows:
        if record is None:
            lines.append(f"| {name} | {kind} | – | not run yet | – |")
            continue
        source = record.get("input_data") or record.get("input_model") or "–"
        seconds = (record.get("seconds") or 0.0) + (record.get("eval_seconds") or 0.0)
        wall = f"{seconds:.0f} s" + (f" ({record['eval_seconds']:.0f} s eval)" if record.get("eval_seconds") else "")
        lines.append(f"| {name} | {kind} | `{source}` | {_did(record)} | {wall} |")
    return "\n".join(lines)


def write_stage_report(cfg: ExperimentConfig, plan: Sequence[Any], *, html: bool = True) -> tuple[Path, Path | None]:
    """Write ``report.md`` and, with ``html``, the HTML report when a grpo/sft stage has run; return both paths."""
    root = cfg.run_dir
    records = [(stage.name, stage.kind, stage_status(stage.run_dir)) for stage in plan]
    columns: list[tuple[str, dict[str, Any]]] = []
    for name, _, record in records:
        evals = (record or {}).get("evals") or {}
        if "base" in evals:
            columns.append((f"base (`{evals['base'].get('model')}`)", evals["base"]))
        if "start" in evals:
            columns.append((f"{name}: start", evals["start"]))
        if "final" in evals:
            columns.append((name, evals["final"]))
    body = [f"# Stages of `{cfg.name}`", "", " -> ".join(f"{n} ({k})" for n, k, _ in records), "",
            "## Stages", "", stage_table(records), ""]
    by_task = tasks_apart(columns, cfg.task.name)
    if by_task:
        body += ["## Held-out evaluation", ""]
        for task, task_columns in by_task.items():
            if len(by_task) > 1:
                body += [f"### `{task}`", ""]
            body += [f"Greedy decoding on the `{task}` test split, scored with the config's rewards "
                     "(`ahazero eval`; each stage's `eval/` folder has the completions).", "",
                     held_out_table(task_columns), ""]
    md = atomic_write_text(root / "report.md", "\n".join(body))
    trained = [stage.run_dir for stage, (_, _, record) in zip(plan, records)
               if stage.kind in ("grpo", "sft") and record is not None]
    html_path = None
    if trained and html:
        from ahazero.observe.report import build_report

        try:
            html_path = build_report(trained, out=root / "report", title=f"ahazero stages: {cfg.name}")
        except ImportError as err:  # matplotlib missing: the markdown report still stands
            logger.warning("no HTML report (%s); the markdown report is %s", err, md)
    return md, html_path
