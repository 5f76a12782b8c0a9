"""The aha-reflect comparison from scripts/gpu_aha_reflect.sh's runs: one table, the recipe's targets, curves, traces.

Reads the eval JSONs ``ahazero eval`` wrote (``pass@1``, ``reflection_rate_drgrpo``,
``think_tokens_closed_mean`` and the self-check aggregate ``self_check``), for each variant, stage
and held-out set, from the layout the GPU script writes (``P`` is ``--prefix``)::

    runs/P-base/eval/{heldout,hard}/base.json              before: the base model (every variant)
    runs/P-zero/grpo/eval/{heldout,hard}/                  (a) zero: GRPO from the base model
    runs/P-reflect-s<seed>/{sft,grpo}/eval/{heldout,hard}/ (b) reflective cold start -> GRPO; (d) = its sft
    runs/P-control/{sft,grpo}/eval/{heldout,hard}/         (c) non-reflective (plain) cold start -> GRPO
    runs/P-masked-s<seed>/{sft,grpo}/eval/{heldout,hard}/  (e) (b) with the slipped lines left out of SFT's loss

and writes ``--out`` (markdown) with the same numbers as JSON beside it (``.json``): per held-out
set a row per variant and stage (before / after cold start / end of RL) with pass@1, revision
rate, net corrections per 100, check rate, checks agreed when right and disagreed when wrong,
accuracy of checked and unchecked answers, Dr. GRPO's keyword rate and closed thinking length;
the recipe's targets as PASS / FAIL lines (on the held-out set, the mean over the recipe's seeds,
each seed's value beside it); whether the held-out problems were in any cold-start set; per-step
curves of ``behaviour/check_rate``, ``behaviour/net_corrections_per_100`` and
``behaviour/caught_error_rate`` over RL (``<out>-check-rate.png``, ``<out>-net-corrections.png``,
``<out>-caught-errors.png``, from each GRPO stage's
``metrics.jsonl``); and a few traces of caught errors early and late in RL (trace records whose
``self_check`` says ``caught_error``). Anything missing is said, not guessed.

Usage:
    python3 scripts/aha_reflect_table.py [--runs runs] [--prefix ar] [--out logs/aha_reflect.md]

Example:
    >>> signed(5.04), signed(-2), signed(None)
    ('+5.0', '-2.0', '–')
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from ahazero.observe.report.data import load_run, mean
from ahazero.observe.report.html import fmt
from ahazero.observe.report.plots import plot_metric
from ahazero.observe.rundir import read_jsonl
from ahazero.observe.trace_store import load_traces

SETS = {"heldout": "held-out (the task's 200 test problems)", "hard": "harder held-out set (task.max_terms=5 "
        "task.max_value=999)"}
#: Column title, where the value is (``self_check`` keys or top-level eval keys), how it is written.
COLUMNS: list[tuple[str, str, str]] = [
    ("pass@1", "pass@1", "pct"),
    ("revision rate", "self_check.revision_rate", "pct"),
    ("net corrections / 100", "self_check.net_corrections_per_100", "signed"),
    ("check rate", "self_check.check_rate", "pct"),
    ("check agreed when right", "self_check.check_agreed_when_right", "pct"),
    ("check disagreed when wrong", "self_check.check_disagreed_when_wrong", "pct"),
    ("accuracy checked", "self_check.accuracy_checked", "pct"),
    ("accuracy unchecked", "self_check.accuracy_unchecked", "pct"),
    ("Dr. GRPO keywords", "reflection_rate_drgrpo", "pct"),
    ("closed thinking (tokens)", "think_tokens_closed_mean", "num"),
]
CURVES = [("behaviour/check_rate", "Check rate over RL", True, "check-rate"),
          ("behaviour/net_corrections_per_100", "Net corrections per 100 over RL", False, "net-corrections"),
          ("behaviour/caught_error_rate", "Caught errors over RL (share of answers)", True, "caught-errors")]


def signed(value: Any) -> str:
    """A per-100 number with its sign, ``–`` when missing.

    Example:
        >>> signed(0.0)
        '+0.0'
    """
    return fmt(value) if not isinstance(value, int | float) else f"{value:+.1f}"


def value_of(result: dict[str, Any] | None, key: str) -> Any:
    """``key`` (dotted: ``self_check.check_rate``) of an eval result, None when missing.

    Example:
        >>> value_of({"self_check": {"check_rate": 0.5}}, "self_check.check_rate"), value_of(None, "pass@1")
        (0.5, None)
    """
    for part in key.split("."):
        result = result.get(part) if isinstance(result, dict) else None
    return result


def read_eval(folder: Path) -> dict[str, Any] | None:
    """The eval result in ``folder`` (``<tag>.json``; a final model's or the base model's first), or None."""
    paths = sorted(folder.glob("*.json"), key=lambda p: (not p.stem.endswith(("-final", "base")), -p.stat().st_mtime))
    for path in paths:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(data, dict) and "pass@1" in data:
            return data
    return None


def variants(runs: Path, prefix: str) -> list[dict[str, Any]]:
    """The runs of the comparison: ``{label, run, stages: {stage title: stage folder}}`` (and ``seed`` for (b))."""
    found = [{"label": "(a) zero (GRPO from the base model)", "run": runs / f"{prefix}-zero",
              "stages": {"end of RL": "grpo"}}]
    seeds = sorted(runs.glob(f"{prefix}-reflect-s*"), key=lambda p: (len(p.name), p.name))
    for run in seeds or [runs / f"{prefix}-reflect-s0"]:
        seed = run.name.rsplit("-s", 1)[1]
        found.append({"label": f"(b) reflective cold start -> GRPO, seed {seed}", "run": run,
                      "seed": seed, "stages": {"after cold start": "sft", "end of RL": "grpo"}})
    found.append({"label": "(c) non-reflective cold start -> GRPO", "run": runs / f"{prefix}-control",
                  "stages": {"after cold start": "sft", "end of RL": "grpo"}})
    for run in sorted(runs.glob(f"{prefix}-masked-s*"), key=lambda p: (len(p.name), p.name)):
        seed = run.name.rsplit("-s", 1)[1]
        found.append({"label": f"(e) reflective cold start, slips not trained -> GRPO, seed {seed}", "run": run,
                      "group": "(e)", "stages": {"after cold start": "sft", "end of RL": "grpo"}})
    return found


def _row(label: str, stage: str, result: dict[str, Any] | None) -> dict[str, Any]:
    values = {title: value_of(result, key) for title, key, _ in COLUMNS}
    return {"variant": label, "stage": stage, **values, "n": value_of(result, "n"),
            "evaluated": value_of(result, "tag") if result else "no eval"}


def _mean_row(label: str, stage: str, rows: list[dict[str, Any]]) -> dict[str, Any]:
    present = [r for r in rows if r["evaluated"] != "no eval"]
    values = {title: mean([r[title] for r in present if isinstance(r[title], int | float)]) for title, _, _ in COLUMNS}
    return {"variant": label, "stage": stage, **values, "n": present[0]["n"] if present else None,
            "evaluated": f"mean of {len(present)} seed{'s' * (len(present) != 1)}"}


def set_rows(runs: Path, prefix: str, name: str) -> list[dict[str, Any]]:
    """Every row of one held-out set's table: the base model, (a), (b) per seed and their mean, (d), (c)."""
    rows = [_row("every variant", "before (base model)", read_eval(runs / f"{prefix}-base" / "eval" / name))]
    seeds: dict[str, list[dict[str, Any]]] = {"after cold start": [], "end of RL": []}
    masked: dict[str, list[dict[str, Any]]] = {"after cold start": [], "end of RL": []}
    for v in variants(runs, prefix):
        if "seed" not in v and seeds["end of RL"] and not any(r["variant"].startswith("(d)") for r in rows):
            rows += _seed_summary(seeds)  # after the last seed of (b)
        for title, folder in v["stages"].items():
            rows.append(_row(v["label"], title, read_eval(v["run"] / folder / "eval" / name)))
            if "seed" in v:
                seeds[title].append(rows[-1])
            elif v.get("group") == "(e)":
                masked[title].append(rows[-1])
    rows += [_mean_row("(e) reflective cold start, slips not trained -> GRPO, mean", title, group)
             for title, group in masked.items() if len(group) > 1]
    return rows


def _seed_summary(seeds: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """The mean rows of (b)'s seeds, and (d): the models after (b)'s cold start."""
    out = [_mean_row("(b) reflective cold start -> GRPO, mean", title, group) for title, group in seeds.items()
           if len(group) > 1]
    alone = seeds["after cold start"]
    if alone:
        out.append({**(_mean_row("", "", alone) if len(alone) > 1 else alone[0]),
                    "variant": "(d) reflective cold start alone (the model after (b)'s cold start)",
                    "stage": "after cold start"})
    return out


def render_rows(rows: list[dict[str, Any]]) -> list[str]:
    """The markdown table of one set's rows."""
    kinds = {title: kind for title, _, kind in COLUMNS}
    show = {"pct": lambda v: fmt(v, pct=True), "signed": signed, "num": lambda v: fmt(v, digits=1)}
    lines = ["| variant | stage | " + " | ".join(kinds) + " | n | evaluated |", "|---" * (len(kinds) + 4) + "|"]
    for row in rows:
        cells = [show[kind](row[title]) for title, kind in kinds.items()]
        lines.append(f"| {row['variant']} | {row['stage']} | " + " | ".join(cells)
                     + f" | {fmt(row['n'])} | {row['evaluated']} |")
    return lines


def _pick(rows: list[dict[str, Any]], prefix: str, stage: str) -> list[dict[str, Any]]:
    return [r for r in rows if r["variant"].startswith(prefix) and r["stage"] == stage and "mean" not in r["variant"]]


def targets(rows: list[dict[str, Any]], variant: str = "(b)") -> list[dict[str, Any]]:
    """The recipe's targets on one set for ``variant`` ((b) or (e)): each with the seeds' values, their mean, a verdict."""
    end, start = _pick(rows, variant, "end of RL"), _pick(rows, variant, "after cold start")
    control = next((r["pass@1"] for r in _pick(rows, "(c)", "end of RL")), None)

    def per_seed(get: Any) -> list[float | None]:
        return [get(r, s) for r, s in zip(end, start)]

    def ratio(r: dict, s: dict) -> float | None:
        if not isinstance(r["check rate"], int | float) or not s["check rate"]:
            return None
        return r["check rate"] / s["check rate"]

    def gap(r: dict, _: Any) -> float | None:
        a, b = r["accuracy checked"], r["accuracy unchecked"]
        return a - b if isinstance(a, int | float) and isinstance(b, int | float) else None

    specs = [
        ("net corrections >= +5 per 100 after RL", per_seed(lambda r, _: r["net corrections / 100"]), 5.0, signed),
        ("checked answers more accurate than unchecked after RL (gap in points)",
         [g * 100 if g is not None else None for g in per_seed(gap)], 1e-9, signed),
        ("check rate at the end of RL >= 1.5x its rate right after the cold start", per_seed(ratio), 1.5,
         lambda v: fmt(v, digits=2) + "x" if v is not None else fmt(v)),
        ("held-out accuracy >= variant (c)'s at the end of RL (gap in points)",
         per_seed(lambda r, _: (r["pass@1"] - control) * 100 if isinstance(r["pass@1"], int | float)
                  and control is not None else None), 0.0, signed),
    ]
    out = []
    for name, values, threshold, show in specs:
        known = [v for v in values if v is not None]
        average = mean(known)
        out.append({"target": name, "per_seed": values, "mean": average, "threshold": threshold,
                    "passed": None if average is None else average >= threshold,
                    "text": f"{show(average)} (seeds: {', '.join(show(v) for v in values) or 'none'})"})
    return out


def verdict_lines(judged: list[dict[str, Any]]) -> list[str]:
    """One ``- PASS|FAIL|n/a: target: values`` line per target of :func:`targets`."""
    return [f"- {({True: 'PASS', False: 'FAIL', None: 'n/a'})[t['passed']]}: {t['target']}: {t['text']}"
            for t in judged]


def overlaps(runs: Path, prefix: str) -> list[str]:
    """Lines saying how many problems of each cold-start set the held-out sets hold."""
    held = {}
    for name in SETS:
        folder = runs / f"{prefix}-base" / "eval" / name
        held[name] = {r.get("problem") for p in folder.glob("*-samples.jsonl") for r in read_jsonl(p)}
    lines = []
    for v in variants(runs, prefix):
        samples = v["run"] / "coldstart" / "samples.jsonl"
        if not samples.is_file():
            continue
        cold = {r.get("problem") for r in read_jsonl(samples)}
        parts = [f"{len(cold & held[name])} in the {name} set ({len(held[name])} problems)" for name in SETS
                 if held[name]]
        lines.append(f"- {v['label']}: {len(cold)} cold-start problems; {', '.join(parts) or 'no held-out eval'}")
    return lines


def curves(runs: Path, prefix: str, out: Path) -> list[str]:
    """Write the per-step curves of the GRPO stages; return markdown lines naming the files."""
    data = [load_run(v["run"] / "grpo", name=v["label"].split(" (")[0]) for v in variants(runs, prefix)
            if (v["run"] / "grpo").is_dir()]
    lines = []
    for key, title, rate, suffix in CURVES:
        try:
            png = plot_metric(data, key, title, None, rate) if data else None
        except ImportError:  # no matplotlib: the table still stands
            png = None
        if png is None:
            lines.append(f"- {title}: no `{key}` in any GRPO stage's metrics.jsonl")
            continue
        path = out.with_name(f"{out.stem}-{suffix}.png")
        path.write_bytes(png)
        lines.append(f"- {title}: ![{title}]({path.name})")
    return lines


def _caught(record: dict[str, Any]) -> bool:
    check = record.get("self_check")
    return bool(check.get("caught_error")) if isinstance(check, dict) else bool(record.get("caught_error"))


def caught_traces(runs: Path, prefix: str, k: int = 2) -> list[str]:
    """How many caught errors each variant's RL traces hold; up to ``k`` of the first (b) seed's, early and late."""
    lines, shown = [], False
    for v in variants(runs, prefix):
        if not (v["run"] / "grpo" / "traces").is_dir():
            continue
        caught = [r for r in load_traces(v["run"] / "grpo") if _caught(r)]
        steps = sorted({int(r["step"]) for r in caught})
        lines.append(f"- {v['label']}: {len(caught)} caught errors in the traces of {len(steps)} steps"
                     + (f" ({steps[0]} to {steps[-1]})" if steps else ""))
        if shown or "seed" not in v or not caught:
            continue
        shown = True
        early = [r for r in caught if int(r["step"]) == steps[0]][:k]
        late = [r for r in caught if int(r["step"]) == steps[-1]][:k] if len(steps) > 1 else []
        for when, picked in (("early", early), ("late", late)):
            for r in picked:
                text = (r.get("prefill") or "") + (r.get("completion") or "")
                lines += ["", f"  {when}, step {r['step']}, {'right' if r.get('correct') else 'wrong'} "
                          f"(gold {r.get('gold')}): {r.get('problem')}", "", "  ```text",
                          *("  " + t for t in text[:1500].splitlines()), "  ```", ""]
    return lines


def build(runs: Path, prefix: str, out: Path) -> dict[str, Any]:
    """Write the markdown and JSON; return the JSON's content."""
    result: dict[str, Any] = {"runs": str(runs), "prefix": prefix, "sets": {}, "targets": {}}
    md = ["# aha-reflect: reflective cold start vs zero vs a plain cold start", ""]
    for name, title in SETS.items():
        rows = set_rows(runs, prefix, name)
        result["sets"][name] = rows
        result["targets"][name] = targets(rows)
        md += [f"## {title}", "", *render_rows(rows), ""]
    md += ["## The recipe's targets (held-out set; (b), the mean over its seeds)", ""]
    md += verdict_lines(result["targets"]["heldout"])
    if _pick(result["sets"]["heldout"], "(e)", "end of RL"):
        result["targets_masked"] = {name: targets(rows, "(e)") for name, rows in result["sets"].items()}
        md += ["", "## The same targets for (e), slips not trained (held-out set; the mean over its seeds)", ""]
        md += verdict_lines(result["targets_masked"]["heldout"])
    result["overlap"] = overlaps(runs, prefix)
    md += ["", "## Held-out problems in the cold-start sets", "", *(result["overlap"] or ["- no cold-start set"]), ""]
    result["curves"] = curves(runs, prefix, out)
    md += ["## Per-step curves over RL", "", *result["curves"], ""]
    md += ["## Caught errors in RL, early and late (from the traces)", "", *(caught_traces(runs, prefix) or
                                                                             ["- no traces"]), ""]
    out.write_text("\n".join(md), encoding="utf-8")
    out.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", default="runs", help="the folder of the run directories (default runs)")
    parser.add_argument("--prefix", default="ar", help="the runs' name prefix (default ar)")
    parser.add_argument("--out", default="logs/aha_reflect.md", help="markdown file; .json and .png beside it")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    build(Path(args.runs), args.prefix, out)
    print(out.read_text(encoding="utf-8"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
