"""A sweep's results: one row per variant from its run directory, ``summary.md`` / ``summary.json``.

Per variant: held-out pass@1 of the base model and after training (``ahazero eval``, greedy),
format rate, thinking tokens inside closed ``</think>`` blocks at the first training step
whose format rate reached 90% and at the last step (sampled completions, from
``metrics.jsonl``) and in the held-out evals, the reflection rate with R1's words and with
Dr. GRPO's keywords (base eval, first and last training step, trained eval), the accuracy of
reflective vs non-reflective held-out answers for both measures, the self-check (share of
completions that recompute an answer, and revisions wrong -> right minus right -> wrong per 100:
:mod:`ahazero.observe.self_check`) of the base eval, the first and last training step and the
trained eval, steps, and training seconds (``train_runtime``). The target column checks the
goal this project sets itself for a recipe: pass@1 up by at least 20 points; closed-think
length at the last step at least 1.5x its value at the format-90% step; the trained model's
held-out closed-think length above the base model's; at most 15 minutes of training.

Example:
    >>> target({"pass1_base": 0.28, "pass1_final": 0.51, "think_closed_fmt90": 20.0, "think_closed_end": 31.0,
    ...         "think_closed_eval_base": 29.6, "think_closed_eval_final": 33.0, "train_seconds": 600.0})
    {'gain': True, 'growth': True, 'above_base': True, 'time': True, 'met': True}
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ahazero.cache.atomic_files import atomic_write_text
from ahazero.models.loading import is_model_folder
from ahazero.observe.rundir import RunDir, read_metrics

__all__ = ["SELF_CHECK_COLUMNS", "TARGET", "metric_rows", "progress_line", "render_markdown", "target", "variant_row",
           "write_summary"]

#: The recipe target: (pass@1 gain, closed-think growth factor, training seconds).
TARGET = {"min_gain": 0.20, "min_growth": 1.5, "max_train_seconds": 900.0}

_EVAL_KEYS = ("pass@1", "format_rate", "think_tokens_closed_mean", "reflection_rate", "reflection_rate_drgrpo", "n")
#: The self-check numbers a summary row carries (``self_check`` of the evals, ``behaviour/<key>`` of the steps).
SELF_CHECK_COLUMNS = ("check_rate", "net_corrections_per_100", "revision_rate", "check_agreed_when_right",
                      "check_disagreed_when_wrong")


def _self_check(evaluation: dict[str, Any] | None, key: str) -> float | None:
    sc = (evaluation or {}).get("self_check")
    return _num(sc.get(key)) if isinstance(sc, dict) else None


def metric_rows(run: RunDir) -> list[dict[str, Any]]:
    """The logged training steps of a run (the last line wins for a step logged twice), in step order.

    Example:
        >>> import tempfile
        >>> metric_rows(RunDir(tempfile.mkdtemp()))
        []
    """
    last: dict[int, dict[str, Any]] = {}
    for row in read_metrics(run.metrics):
        if "step" in row and any(k.startswith("behaviour/") for k in row):
            last[int(row["step"])] = row
    return [last[s] for s in sorted(last)]


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _num(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _reflective_split(evaluation: dict[str, Any] | None, measure: str) -> dict[str, Any]:
    """Accuracy of reflective / non-reflective held-out answers and how many there were."""
    if not evaluation:
        return {}
    greedy = evaluation.get("greedy") or {}
    n, rate = evaluation.get("n"), _num(evaluation.get(f"reflection_rate{measure}"))
    count = round(rate * n) if rate is not None and isinstance(n, int) else None
    return {"accuracy_reflective": _num(greedy.get(f"behaviour/accuracy_reflective{measure}")),
            "accuracy_non_reflective": _num(greedy.get(f"behaviour/accuracy_non_reflective{measure}")),
            "reflective": count, "non_reflective": None if count is None else n - count}


def target(row: dict[str, Any]) -> dict[str, bool | None]:
    """Which parts of :data:`TARGET` a variant meets (None where a number is missing).

    Example:
        >>> target({"pass1_base": 0.3, "pass1_final": 0.4})["gain"], target({})["met"]
        (False, None)
    """
    def check(ok: Any, *values: Any) -> bool | None:
        return None if any(v is None for v in values) else bool(ok())

    base, final = row.get("pass1_base"), row.get("pass1_final")
    fmt90, end = row.get("think_closed_fmt90"), row.get("think_closed_end")
    eval_base, eval_final = row.get("think_closed_eval_base"), row.get("think_closed_eval_final")
    seconds = row.get("train_seconds")
    parts = {
        "gain": check(lambda: final - base >= TARGET["min_gain"] - 1e-9, base, final),
        "growth": check(lambda: end >= TARGET["min_growth"] * fmt90, fmt90, end),
        "above_base": check(lambda: eval_final > eval_base, eval_base, eval_final),
        "time": check(lambda: seconds <= TARGET["max_train_seconds"], seconds),
    }
    values = list(parts.values())
    parts["met"] = False if False in values else (None if None in values else True)
    return parts


def variant_row(run_root: Path, *, label: str, values: dict[str, Any], seed: int | None,
                base: dict[str, Any] | None, exit_code: int | None = None) -> dict[str, Any]:
    """One summary row from a variant's run directory and its base model's eval.

    Example:
        >>> import tempfile, pathlib
        >>> row = variant_row(pathlib.Path(tempfile.mkdtemp()), label="v", values={}, seed=None, base=None)
        >>> row["status"], row["steps"], row["target"]["met"]
        ('not started', None, None)
    """
    run = RunDir(run_root)
    rows = metric_rows(run)
    raw = read_metrics(run.metrics)
    runtime = next((_num(r.get("train_runtime")) for r in reversed(raw) if "train_runtime" in r), None)
    final = _read_json(run.root / "eval" / "final.json")
    if runtime is not None and is_model_folder(run.model):
        status = "finished"
    elif exit_code not in (None, 0):
        status = "interrupted" if exit_code == -2 else f"failed (exit {exit_code})"
    else:
        status = "stopped" if rows else "not started"

    def at(row: dict[str, Any] | None, key: str) -> float | None:
        return None if row is None else _num(row.get(f"behaviour/{key}"))

    first = rows[0] if rows else None
    last = rows[-1] if rows else None
    fmt90 = next((r for r in rows if (_num(r.get("behaviour/format_rate")) or 0.0) >= 0.9 - 1e-9), None)
    times = [_num(r.get("step_time")) for r in rows]
    times = [t for t in times if t is not None]
    # train_runtime covers the last session only: a resumed run counts the time of its logged steps instead
    sessions = len((_read_json(run.info) or {}).get("history") or [None])
    if runtime is not None and sessions <= 1:
        seconds, source = runtime, "train_runtime"
    else:
        seconds, source = (sum(times), "step_time") if times and runtime is not None else (None, None)
    out: dict[str, Any] = {
        "variant": label, "run_dir": str(run.root), "values": values, "seed": seed, "status": status,
        "exit_code": exit_code, "steps": None if last is None else int(last["step"]), "train_seconds": seconds,
        "train_seconds_source": source,
        "step_seconds_mean": sum(times) / len(times) if times else None,
        "pass1_base": _num((base or {}).get("pass@1")), "pass1_final": _num((final or {}).get("pass@1")),
        "format_final": _num((final or {}).get("format_rate")), "format_end": at(last, "format_rate"),
        "format90_step": None if fmt90 is None else int(fmt90["step"]),
        "think_closed_first": at(first, "think_tokens_closed_mean"),
        "think_closed_fmt90": at(fmt90, "think_tokens_closed_mean"),
        "think_closed_end": at(last, "think_tokens_closed_mean"),
        "think_closed_eval_base": _num((base or {}).get("think_tokens_closed_mean")),
        "think_closed_eval_final": _num((final or {}).get("think_tokens_closed_mean")),
        "first_step": None if first is None else int(first["step"]),
    }
    for measure, tag in (("", "r1"), ("_drgrpo", "drgrpo")):
        out[f"reflection_{tag}"] = {
            "eval_base": _num((base or {}).get(f"reflection_rate{measure}")),
            "first_step": at(first, f"reflection_rate{measure}"), "end": at(last, f"reflection_rate{measure}"),
            "eval_final": _num((final or {}).get(f"reflection_rate{measure}")),
            "final_eval_split": _reflective_split(final, measure),
        }
    out["self_check"] = {key: {"eval_base": _self_check(base, key), "first_step": at(first, key),
                               "end": at(last, key), "eval_final": _self_check(final, key)}
                         for key in SELF_CHECK_COLUMNS}
    growth = out["think_closed_end"], out["think_closed_fmt90"]
    out["think_closed_growth"] = growth[0] / growth[1] if None not in growth and growth[1] else None
    out["target"] = target(out)
    return out


def _pct(value: Any) -> str:
    return "–" if value is None else f"{value:.1%}"


def _n(value: Any, digits: int = 1) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _signed(value: Any) -> str:
    return "–" if value is None else f"{value:+.1f}"


def _times(value: Any) -> str:
    return "–" if value is None else f"{value:.2f}x"


def _split(r: dict[str, Any]) -> str:
    s = r["final_eval_split"]
    if not s:
        return "–"
    return (f"{_pct(s.get('accuracy_reflective'))} (n={s.get('reflective', '–')}) / "
            f"{_pct(s.get('accuracy_non_reflective'))} (n={s.get('non_reflective', '–')})")


def _mark(value: bool | None) -> str:
    return {True: "yes", False: "no", None: "?"}[value]


def progress_line(row: dict[str, Any], index: int, total: int, seconds: float | None, log: Path) -> str:
    """One line for a variant that just ended.

    Example:
        >>> import pathlib
        >>> row = {"variant": "a", "run_dir": "runs/s-a", "status": "failed (exit 1)", "pass1_base": None,
        ...        "pass1_final": None, "think_closed_fmt90": None, "think_closed_end": None, "format90_step": None,
        ...        "reflection_r1": {"first_step": None, "end": None}, "reflection_drgrpo": {"first_step": None,
        ...        "end": None}}
        >>> progress_line(row, 1, 2, 12.0, pathlib.Path("runs/s-a/sweep.log"))
        '[1/2] a: failed (exit 1) after 0.2 min; log runs/s-a/sweep.log'
    """
    head = f"[{index}/{total}] {row['variant']}: {row['status']}"
    if seconds is not None:
        head += f" after {seconds / 60:.1f} min"
    if not row["status"].startswith("finished"):
        return f"{head}; log {log}"
    r1, drg = row["reflection_r1"], row["reflection_drgrpo"]
    return (f"{head} · pass@1 {_pct(row['pass1_base'])} → {_pct(row['pass1_final'])} · closed think "
            f"{_n(row['think_closed_fmt90'])} (step {row['format90_step'] or '–'}, format ≥ 90%) → "
            f"{_n(row['think_closed_end'])} · reflection {_pct(r1['first_step'])} → {_pct(r1['end'])} "
            f"(Dr. GRPO {_pct(drg['first_step'])} → {_pct(drg['end'])}) · log {log}")


def render_markdown(info: dict[str, Any], rows: Sequence[dict[str, Any]], bases: Sequence[dict[str, Any]]) -> str:
    """``summary.md``: the command, the base model(s), one table row per variant, the definitions.

    Example:
        >>> md = render_markdown({"name": "s", "command": "ahazero sweep c.yaml", "config": "c.yaml", "grid": {},
        ...                       "overrides": [], "seeds": None, "notes": []}, [], [])
        >>> md.splitlines()[0]
        '# Sweep s'
    """
    common = ", ".join(f"`{o}`" for o in info["overrides"]) or "none"
    grid = "; ".join(f"`{key}` = " + ", ".join(values) for key, values in info["grid"].items()) or "none"
    seeds = f"; seeds {', '.join(map(str, info['seeds']))}" if info.get("seeds") else ""
    lines = [f"# Sweep {info['name']}", "", f"`{info['command']}`", "",
             f"Config `{info['config']}`; common overrides: {common}; grid: {grid}{seeds}.", ""]
    for label, spec in (info.get("variants") or {}).items():
        extra = [f"config `{spec['config']}`"] + [f"preset `{name}`" for name in spec.get("presets", [])]
        extra += [f"`{o}`" for o in spec.get("overrides", [])]
        lines.append(f"- variant `{label}`: {', '.join(extra)}")
    if info.get("variants"):
        lines.append("")
    lines += [f"{note}." for note in info.get("notes", [])]
    if bases:
        lines += ["", "## Base model (held-out, greedy)", "", "| eval | for | n | pass@1 | format | closed-think tokens | "
                  "reflection (R1 words) | reflection (Dr. GRPO) | checked | net corrections /100 |",
                  "|---|---|---|---|---|---|---|---|---|---|"]
        for b in bases:
            e = b.get("eval") or {}
            lines.append(f"| {b['folder']} | {', '.join(b.get('variants') or []) or '–'} | {e.get('n', '–')} | {_pct(e.get('pass@1'))} | {_pct(e.get('format_rate'))}"
                         f" | {_n(e.get('think_tokens_closed_mean'))} | {_pct(e.get('reflection_rate'))} | "
                         f"{_pct(e.get('reflection_rate_drgrpo'))} | {_pct(_self_check(e, 'check_rate'))} | "
                         f"{_signed(_self_check(e, 'net_corrections_per_100'))} |")
    lines += ["", "## Variants", "",
              "| variant | status | steps | train s | pass@1 base → trained | format (trained) | closed think at "
              "format ≥ 90% (step) → last step | growth | closed think, eval base → trained | reflection, R1 words: "
              "base · first step → last step · trained | reflection, Dr. GRPO: base · first → last · trained | "
              "accuracy reflective / not (trained eval, R1) | the same, Dr. GRPO | checked: base · first step → "
              "last step · trained | net corrections /100: base · first → last · trained | target |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        r1, drg, t = r["reflection_r1"], r["reflection_drgrpo"], r["target"]
        sc = r.get("self_check") or {}
        checked, net = sc.get("check_rate") or {}, sc.get("net_corrections_per_100") or {}
        met = _mark(t["met"]) + ("" if t["met"] else f" (gain {_mark(t['gain'])}, growth {_mark(t['growth'])}, "
                                 f"above base {_mark(t['above_base'])}, time {_mark(t['time'])})")
        lines.append(
            f"| {r['variant']} | {r['status']} | {r['steps'] or '–'} | {_n(r['train_seconds'], 0)}"
            f"{'*' if r['train_seconds_source'] == 'step_time' else ''} | "
            f"{_pct(r['pass1_base'])} → {_pct(r['pass1_final'])} | {_pct(r['format_final'])} | "
            f"{_n(r['think_closed_fmt90'])} ({r['format90_step'] or '–'}) → {_n(r['think_closed_end'])} | "
            f"{_times(r['think_closed_growth'])} | {_n(r['think_closed_eval_base'])} → "
            f"{_n(r['think_closed_eval_final'])} | {_pct(r1['eval_base'])} · {_pct(r1['first_step'])} → "
            f"{_pct(r1['end'])} · {_pct(r1['eval_final'])} | {_pct(drg['eval_base'])} · {_pct(drg['first_step'])} → "
            f"{_pct(drg['end'])} · {_pct(drg['eval_final'])} | {_split(r1)} | {_split(drg)} | "
            f"{_pct(checked.get('eval_base'))} · {_pct(checked.get('first_step'))} → {_pct(checked.get('end'))} · "
            f"{_pct(checked.get('eval_final'))} | {_signed(net.get('eval_base'))} · {_signed(net.get('first_step'))} "
            f"→ {_signed(net.get('end'))} · {_signed(net.get('eval_final'))} | {met} |")
    lines += [
        "", "## How to read it", "",
        "- *base* and *trained*: `ahazero eval` on the held-out split (greedy), before training and with the final "
        "model; *first step* / *last step*: the completions sampled at that training step (`metrics.jsonl`); the "
        "first step samples the untrained model.",
        "- *closed think*: mean thinking tokens over the completions that closed `</think>`; *growth*: last step "
        "over the first step whose format rate reached 90%.",
        "- *reflection*: share of completions with at least one reflection phrase in the thinking: R1's words "
        "(`logging.reflection_phrases`) or Dr. GRPO's keywords (recheck, re-examine, check again, ...).",
        "- *checked*: share of completions that check an answer by recomputing it (undoing the steps, "
        "substituting it back); *net corrections /100*: answers revised wrong → right minus right → wrong per 100 "
        "completions, each answer graded by the task's reward (`ahazero behaviours` reads a file the same way).",
        f"- *target*: pass@1 up by at least {TARGET['min_gain'] * 100:.0f} points; closed think at the last step at least "
        f"{TARGET['min_growth']}x its value at the format-90% step; the trained model's held-out closed think above "
        f"the base model's; at most {TARGET['max_train_seconds'] / 60:.0f} minutes of training (`train_runtime`; "
        "runs that shared a GPU with `--parallel` report the time they took while sharing it).",
        "- *train s*: `train_runtime`; marked * for a resumed run, whose `train_runtime` covers its last session "
        "only: the sum of its logged steps' `step_time` instead.",
    ]
    if info.get("report"):
        lines += ["", f"Curves of every run, overlaid: `{info['report']}`"]
    return "\n".join(lines) + "\n"


def write_summary(out: Path, info: dict[str, Any], rows: Sequence[dict[str, Any]],
                  bases: Sequence[dict[str, Any]]) -> tuple[Path, Path]:
    """Write ``summary.json`` and ``summary.md`` into ``out`` (atomically); return their paths.

    Example:
        >>> import tempfile, pathlib
        >>> info = {"name": "s", "command": "c", "config": "c.yaml", "grid": {}, "overrides": [], "seeds": None}
        >>> [p.name for p in write_summary(pathlib.Path(tempfile.mkdtemp()), info, [], [])]
        ['summary.json', 'summary.md']
    """
    out.mkdir(parents=True, exist_ok=True)
    data = {**info, "generated": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "target": TARGET, "base_evals": list(bases),
            "variants": list(rows)}
    paths = (out / "summary.json", out / "summary.md")
    for path, text in zip(paths, (json.dumps(data, indent=2) + "\n", render_markdown(info, rows, bases))):
        atomic_write_text(path, text, then="write the summary again with the same command and --resume")
    return paths
