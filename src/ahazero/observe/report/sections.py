"""The report's sections as HTML: the aha test of each run, the base-model comparison, the eval and runs tables.

Example:
    >>> from pathlib import Path
    >>> from ahazero.observe.aha import detect_aha
    >>> from ahazero.observe.report.data import RunData
    >>> rd = RunData("r", Path("."), [], "metrics.jsonl", {}, detect_aha([]))
    >>> "eval/base.json" in base_section(rd, 2)
    True
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence

from ahazero.observe.aha import format_p, step_span
from ahazero.observe.report.data import RunData, phrase_counts, pick_examples, slug, train_mean
from ahazero.observe.report.html import card, esc, fmt, img, table
from ahazero.observe.report.plots import plot_aha
from ahazero.observe.trace_store import load_traces

__all__ = ["aha_section", "base_line", "base_section", "eval_table", "runs_table"]


def aha_section(rd: RunData, color: str, examples: int) -> tuple[str, dict[str, bytes]]:
    aha = rd.aha
    pngs: dict[str, bytes] = {}
    parts = [f"<h3>{esc(rd.name)}</h3>",
             f'<div class="verdict{" aha" if aha.aha_step is not None else ""}">{esc(aha.verdict)}</div>']
    png = plot_aha(rd, color)
    parts.append('<div class="grid">')
    if png:
        pngs[f"aha-{slug(rd.name)}.png"] = png
        parts.append(img(png, f"Reflection rate and the aha test: {rd.name}"))
    w = aha.reported
    rows = [
        ["baseline reflection rate",
         f"{fmt(aha.baseline_rate, pct=True)} (steps {aha.baseline_steps[0]}–{aha.baseline_steps[1]}, "
         f"n = {aha.baseline_n})" if aha.baseline_steps else "–"],
        ["aha step", fmt(aha.aha_step) if aha.aha_step is not None else "none"],
        ["window tested" + (" (aha)" if aha.aha_step is not None else " (largest z)"),
         f"steps {w.start}–{w.end}: {fmt(w.rate, pct=True)} (n = {w.n})" if w else "–"],
        ["z / one-sided p", f"{w.z:.2f} / {format_p(w.p_value)}" if w else "–"],
        ["Bonferroni-adjusted p", f"{format_p(w.p_adjusted)} ({aha.n_tests} windows)" if w else "–"],
        ["settings", f"window {aha.window} steps, alpha {aha.alpha}, min rise +{aha.min_rise:.0%}"],
        ["steps with data", f"{aha.n_steps} ({esc(aha.source)})"],
    ]
    parts.append(f'<div>{table(["aha test", "value"], [[esc(a), b] for a, b in rows])}</div></div>')

    steps = [c.step for c in aha.counts]
    if steps:
        if aha.aha_step is not None and aha.baseline_steps:
            before = [s for s in steps if aha.baseline_steps[0] <= s <= aha.baseline_steps[1]]
            after = [s for s in steps if aha.reported and aha.reported.start <= s <= aha.reported.end]
            labels = ("before (baseline)", "after (aha window)")
        else:
            k = (aha.baseline_steps[1] - aha.baseline_steps[0] + 1) if aha.baseline_steps else aha.window
            k = max(1, min(k, len(steps) // 2))
            before, after = steps[:k], steps[-k:] if len(steps) > 1 else []
            labels = ("early", "late")
        early = load_traces(rd.root, before)
        late = load_traces(rd.root, after) if after else []
        parts.append(
            f"<p>Example completions, reflective ones first (reflection phrases <mark>highlighted</mark>, "
            f"thinking in <span class='think'>teal</span>, the answer in <span class='ans'>green</span>). "
            f"Reflection phrases in {labels[0]} {step_span(before[0], before[-1])}: {esc(phrase_counts(early))}"
            + (f"; in {labels[1]} {step_span(after[0], after[-1])}: {esc(phrase_counts(late))}." if after else ".")
            + "</p>"
        )
        cards = []
        left = pick_examples(early, examples)
        right = pick_examples(late, examples)
        for i in range(max(len(left), len(right))):
            cards.append(card(left[i], labels[0]) if i < len(left) else "<div></div>")
            cards.append(card(right[i], labels[1]) if i < len(right) else "<div></div>")
        parts.append(f'<div class="examples">{"".join(cards)}</div>')
    return "\n".join(parts), pngs


_BASE_ROWS = [  # label, eval key, metrics key, percent?, digits otherwise
    ("accuracy (pass@1)", "pass@1", "behaviour/accuracy", True, 3),
    ("format rate", "format_rate", "behaviour/format_rate", True, 3),
    ("thinking tokens (mean)", "think_tokens_mean", "behaviour/think_tokens_mean", False, 1),
    ("reflection rate", "reflection_rate", "behaviour/reflection_rate", True, 3),
    ("reflection rate, Dr. GRPO keywords", "reflection_rate_drgrpo", "behaviour/reflection_rate_drgrpo", True, 3),
    ("language consistency", "language_consistency", "behaviour/language_consistency", False, 3),
    ("truncation rate", "truncation_rate", "behaviour/truncation_rate", True, 3),
]


def base_section(rd: RunData, examples: int) -> str:
    base = rd.base
    if base is None:
        return (f"<h3>{esc(rd.name)}</h3><p>No <code>eval/base.json</code>: run <code>ahazero eval CONFIG "
                f"--model base</code> to add the untrained model's behaviour as a reference.</p>")
    trained = [t for t in rd.evals if t != "base"]
    last_tag = trained[-1] if trained else None
    k = rd.aha.baseline_steps[1] - rd.aha.baseline_steps[0] + 1 if rd.aha.baseline_steps else 5
    n_rows = len(rd.rows)
    k = max(1, min(k, n_rows))
    first_steps = [int(r["step"]) for r in rd.rows[:k]]
    last_steps = [int(r["step"]) for r in rd.rows[-k:]]
    header = ["metric", "base model (eval, greedy)",
              f"training {step_span(first_steps[0], first_steps[-1])}" if first_steps else "training (first steps)",
              f"training {step_span(last_steps[0], last_steps[-1])}" if last_steps else "training (last steps)"]
    if last_tag:
        header.append(f"trained: {esc(last_tag)} (eval, greedy)")
    rows = []
    for label, bkey, mkey, pct, digits in _BASE_ROWS:
        row = [label, fmt(base.get(bkey), pct=pct, digits=digits),
               fmt(train_mean(rd, mkey, first=True, k=k), pct=pct, digits=digits),
               fmt(train_mean(rd, mkey, first=False, k=k), pct=pct, digits=digits)]
        if last_tag:
            row.append(fmt(rd.evals[last_tag].get(bkey), pct=pct, digits=digits))
        rows.append(row)
    parts = [f"<h3>{esc(rd.name)}</h3>", table(header, rows)]

    samples = []
    sample_file = rd.root / "eval" / "base-samples.jsonl"
    if sample_file.is_file():
        for line in sample_file.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                s = json.loads(line)
            except json.JSONDecodeError:
                continue
            if isinstance(s, dict) and not s.get("sampled"):
                samples.append(s)
    rate = base.get("reflection_rate")
    greedy = base.get("greedy") or {}
    if isinstance(rate, int | float) and rate > 0:
        step1 = rd.series("behaviour/reflection_rate")
        first = f" and {step1[1][0]:.1%} of its sampled completions at training step {step1[0][0]}" if step1[0] else ""
        text = (f"Before any RL, the base model already uses reflection phrases in <b>{rate:.1%}</b> of its greedy "
                f"held-out completions{first}. Small models often “reflect” superficially from step 0, so a "
                f"reflection word is not evidence of an aha moment: what counts is a rise above this baseline "
                f"(the aha test above).")
        acc_r, acc_n = greedy.get("behaviour/accuracy_reflective"), greedy.get("behaviour/accuracy_non_reflective")
        if isinstance(acc_r, int | float) and isinstance(acc_n, int | float):
            judged = "no more" if acc_r <= acc_n else "more"
            text += (f" The base model's reflective completions are {judged} accurate than the others "
                     f"({acc_r:.1%} vs {acc_n:.1%}).")
        drg, acc_rd = base.get("reflection_rate_drgrpo"), greedy.get("behaviour/accuracy_reflective_drgrpo")
        if isinstance(drg, int | float):
            text += f" Counted with Dr. GRPO's keywords (recheck, re-examine, check again, ...): <b>{drg:.1%}</b>"
            acc_nd = greedy.get("behaviour/accuracy_non_reflective_drgrpo")
            if isinstance(acc_rd, int | float) and isinstance(acc_nd, int | float):
                text += f", {acc_rd:.1%} of them correct vs {acc_nd:.1%} of the others"
            text += "."
        if samples:
            text += f" Its phrases: {esc(phrase_counts(samples))}."
        parts.append(f'<div class="note">{text}</div>')
        shown = [s for s in samples if s.get("reflections")][:examples]
        if shown:
            parts.append('<div class="examples">' + "".join(card(s, "base model") for s in shown) + "</div>")
    elif isinstance(rate, int | float):
        parts.append(f'<div class="note">The base model uses no reflection phrase in its {base.get("n", "")} '
                     f"greedy held-out completions: any reflection during training is new.</div>")
    return "\n".join(parts)


def base_line(rd: RunData) -> str:
    """One line under the verdict: how reflective the model was before RL (greedy eval and step 1)."""
    facts = []
    base = rd.base
    if base and isinstance(base.get("reflection_rate"), int | float):
        facts.append(f"base model (greedy eval) {base['reflection_rate']:.1%}")
    xs, ys = rd.series("behaviour/reflection_rate")
    if xs:
        facts.append(f"training step {xs[0]} {ys[0]:.1%}")
        facts.append(f"step {xs[-1]} {ys[-1]:.1%}")
    line = f'<br><span class="meta">reflective completions: {esc(", ".join(facts))}</span>' if facts else ""
    facts = []
    if base and isinstance(base.get("reflection_rate_drgrpo"), int | float):
        facts.append(f"base model (greedy eval) {base['reflection_rate_drgrpo']:.1%}")
    xs, ys = rd.series("behaviour/reflection_rate_drgrpo")
    if xs:
        facts.append(f"training step {xs[0]} {ys[0]:.1%}")
        facts.append(f"step {xs[-1]} {ys[-1]:.1%}")
    if facts:
        line += f'<br><span class="meta">with Dr. GRPO\'s keywords: {esc(", ".join(facts))}</span>'
    return line


def eval_table(runs: Sequence[RunData]) -> str:
    extra = sorted({k for rd in runs for e in rd.evals.values() for k in e
                    if re.fullmatch(r"(pass|maj)@\d+", k) and k != "pass@1"})
    header = ["run", "tag", "model", "n", "pass@1", *extra, "format", "think tokens", "reflection",
              "reflection (Dr. GRPO)", "checked", "net corrections /100", "language", "truncation"]
    rows = []
    for rd in runs:
        for tag, e in rd.evals.items():
            sc = e.get("self_check") if isinstance(e.get("self_check"), dict) else {}
            rows.append([esc(rd.name), f"<b>{esc(tag)}</b>", esc(e.get("model", "")), fmt(e.get("n")),
                         fmt(e.get("pass@1"), pct=True), *[fmt(e.get(k), pct=True) for k in extra],
                         fmt(e.get("format_rate"), pct=True), fmt(e.get("think_tokens_mean"), digits=1),
                         fmt(e.get("reflection_rate"), pct=True), fmt(e.get("reflection_rate_drgrpo"), pct=True),
                         fmt(sc.get("check_rate"), pct=True), fmt(sc.get("net_corrections_per_100"), digits=1),
                         fmt(e.get("language_consistency")),
                         fmt(e.get("truncation_rate"), pct=True)])
    return table(header, rows) if rows else ""


def runs_table(runs: Sequence[RunData]) -> str:
    rows = []
    for rd in runs:
        cfg = rd.config
        model = (cfg.get("model") or {}).get("name_or_path", "–") if isinstance(cfg.get("model"), dict) else "–"
        task = (cfg.get("task") or {}).get("name", "–") if isinstance(cfg.get("task"), dict) else "–"
        rewards = ", ".join(f"{r.get('name')}×{r.get('weight', 1.0)}" for r in cfg.get("rewards") or []
                            if isinstance(r, dict)) or "–"
        steps = [int(r["step"]) for r in rd.rows]
        status = (f"finished ({rd.runtime_s / 60:.1f} min)" if rd.finished and rd.runtime_s
                  else "finished" if rd.finished else "in progress or stopped")
        skipped = rd.updates_skipped
        rows.append([esc(rd.name), esc(model), esc(task), esc(rewards),
                     f"{len(steps)} ({steps[0]}–{steps[-1]})" if steps else "0",
                     "–" if skipped is None else f"{skipped} of {len(steps)}", esc(rd.metrics_source), status])
    return table(["run", "model", "task", "rewards", "steps logged", "updates skipped (non-finite gradient)",
                   "curves from", "status"], rows)
