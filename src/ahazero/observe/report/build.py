"""``ahazero report RUN [RUN ...]``: one self-contained HTML report of a run's behaviours (plus the PNGs).

The report shows, over training steps: each reward component and the total, accuracy, format
rate, thinking length (mean with a p10–p90 band), reflection rate, language consistency and
truncation rate (several runs overlaid, one colour each); the aha test of :mod:`ahazero.observe.aha`
with its verdict and example completions from before and after the aha step (or early vs
late), reflection phrases highlighted; the base model's behaviour from ``eval/base.json``
as a dashed reference line and in a table (small models often "reflect" superficially from
step 0, so a reflection word alone is no aha moment); and the ``ahazero eval`` results.

The HTML embeds every image as a ``data:`` URI and has no external CSS or JavaScript, so
it can be mailed or attached as one file. Needs matplotlib.

Example:
    $ ahazero report runs/default                       # runs/default/report/report.html
    $ ahazero report runs/lr1e-6 runs/lr5e-6 --out reports/lr.html

    >>> import argparse
    >>> parser = argparse.ArgumentParser(); sub = parser.add_subparsers()
    >>> _ = add_parser(sub)
    >>> args = parser.parse_args(["report", "runs/a", "runs/b", "--out", "cmp"])
    >>> args.runs, args.out, args.func.__name__
    (['runs/a', 'runs/b'], 'cmp', 'run_report')
"""

from __future__ import annotations

import argparse
import base64
import html
import io
import json
import math
import re
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from rich.console import Console

from ahazero.observe.aha import DEFINITION, AhaResult, aha_from_run, format_p, step_span
from ahazero.observe.rundir import RunDir, read_metrics
from ahazero.observe.trace_store import full_text, is_reflective, load_traces, step_metrics
from ahazero.observe.traces_view import completion_spans, middle_cut

__all__ = [
    "PLOTS",
    "RunData",
    "add_parser",
    "build_report",
    "highlight_html",
    "load_run",
    "report_paths",
    "run_report",
]

#: The metric plots: (metrics key, title, eval/base.json key for the reference line, is a rate).
PLOTS: list[tuple[str, str, str | None, bool]] = [
    ("reward", "Total reward", None, False),
    ("behaviour/accuracy", "Accuracy", "pass@1", True),
    ("behaviour/format_rate", "Format rate", "format_rate", True),
    ("behaviour/think_tokens_mean", "Thinking length (tokens)", "think_tokens_mean", False),
    ("behaviour/think_tokens_closed_mean", "Thinking length, closed </think> only (tokens)",
     "think_tokens_closed_mean", False),
    ("behaviour/reflection_rate", "Reflection rate", "reflection_rate", True),
    ("behaviour/language_consistency", "Language consistency", "language_consistency", True),
    ("behaviour/truncation_rate", "Truncation rate", "truncation_rate", True),
    ("timing/tokens_per_second", "Rollout throughput (generated tokens/s)", None, False),
    ("timing/generation_seconds", "Rollout generation time per step (s)", None, False),
]
_BAND = ("behaviour/think_tokens_p10", "behaviour/think_tokens_p90")
_COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf"]
_SMOOTH = 5  # rolling-mean window (steps) drawn over the per-step values when a run has >= 15 steps


@dataclass
class RunData:
    """What the report reads from one run directory."""

    name: str
    root: Path
    rows: list[dict[str, Any]]  #: one per training step (metrics.jsonl, else rebuilt from traces)
    metrics_source: str
    evals: dict[str, dict[str, Any]]  #: eval tag -> eval/<tag>.json
    aha: AhaResult
    config: dict[str, Any] = field(default_factory=dict)
    finished: bool = False
    runtime_s: float | None = None

    def series(self, key: str) -> tuple[list[int], list[float]]:
        """Steps and finite values of one metric.

        Example:
            >>> from ahazero.observe.aha import detect_aha
            >>> rd = RunData("r", Path("."), [{"step": 1, "x": 0.5}, {"step": 2, "x": None}], "m", {}, detect_aha([]))
            >>> rd.series("x")
            ([1], [0.5])
        """
        xs, ys = [], []
        for row in self.rows:
            v = row.get(key)
            if isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v):
                xs.append(int(row["step"]))
                ys.append(float(v))
        return xs, ys

    @property
    def updates_skipped(self) -> int | None:
        """Optimizer updates dropped for a non-finite gradient, or None when unknown.

        Read from the ``updates_skipped`` metric; for runs logged before it existed, a step
        whose loss was logged without a ``grad_norm`` (NaN is written as null) counts.

        Example:
            >>> from ahazero.observe.aha import detect_aha
            >>> rows = [{"step": 1, "loss": 0.1, "grad_norm": 2.0}, {"step": 2, "loss": 0.2, "grad_norm": None}]
            >>> RunData("r", Path("."), rows, "metrics.jsonl", {}, detect_aha([])).updates_skipped
            1
        """
        if self.metrics_source != "metrics.jsonl":
            return None
        if any("updates_skipped" in row for row in self.rows):
            return int(sum(row.get("updates_skipped") or 0 for row in self.rows))
        return sum(1 for row in self.rows if "loss" in row and row.get("grad_norm") is None)

    @property
    def base(self) -> dict[str, Any] | None:
        """``eval/base.json`` (the untrained model), when present."""
        return self.evals.get("base")


def _eval_order(tag: str) -> tuple[int, int, str]:
    if tag == "base":
        return (0, 0, tag)
    m = re.fullmatch(r"step-(\d+)", tag)
    if m:
        return (1, int(m.group(1)), tag)
    return (3, 0, tag) if tag == "final" else (2, 0, tag)


def load_run(run_dir: str | Path, *, name: str | None = None) -> RunData:
    """Read a run directory for the report (works on a run still in progress).

    Example:
        >>> import tempfile
        >>> rd = load_run(tempfile.mkdtemp(), name="empty")
        >>> rd.rows, rd.evals, rd.aha.aha_step
        ([], {}, None)
    """
    root = Path(run_dir)
    rd = RunDir(root)
    raw = read_metrics(rd.metrics)
    rows = [r for r in raw if "step" in r and any(k == "reward" or k.startswith("behaviour/") for k in r)]
    source = "metrics.jsonl"
    if not rows:
        rows, source = step_metrics(root), "traces"
    last: dict[int, dict[str, Any]] = {}
    for r in rows:  # a resumed run may log a step twice: keep the last
        last[int(r["step"])] = r
    rows = [last[s] for s in sorted(last)]
    evals = {}
    eval_dir = root / "eval"
    if eval_dir.is_dir():
        for path in eval_dir.glob("*.json"):
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
            except (json.JSONDecodeError, OSError):
                continue
            if isinstance(data, dict):
                evals[str(data.get("tag") or path.stem)] = data
    evals = dict(sorted(evals.items(), key=lambda kv: _eval_order(kv[0])))
    config: dict[str, Any] = {}
    if rd.config.is_file():
        try:
            config = yaml.safe_load(rd.config.read_text(encoding="utf-8")) or {}
        except (yaml.YAMLError, OSError):
            config = {}
    runtime = next((r.get("train_runtime") for r in reversed(raw) if "train_runtime" in r), None)
    return RunData(name=name or root.name, root=root, rows=rows, metrics_source=source, evals=evals,
                   aha=aha_from_run(root), config=config if isinstance(config, dict) else {},
                   finished=runtime is not None, runtime_s=runtime)


# ---------------------------------------------------------------------------------------------- plots


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "plot"


def _rolling(ys: Sequence[float], window: int) -> list[float]:
    half = window // 2
    return [sum(ys[max(0, i - half):i + half + 1]) / len(ys[max(0, i - half):i + half + 1]) for i in range(len(ys))]


def _new_axes(title: str, *, rate: bool, height: float = 3.6) -> tuple[Any, Any]:
    from matplotlib.figure import Figure
    from matplotlib.ticker import PercentFormatter

    fig = Figure(figsize=(6.4, height), dpi=100, layout="constrained")
    ax = fig.add_subplot()
    ax.set_title(title, fontsize=12, loc="left")
    ax.set_xlabel("training step")
    ax.grid(alpha=0.3)
    if rate:
        ax.yaxis.set_major_formatter(PercentFormatter(1.0))
    return fig, ax


def _png(fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", metadata={"Software": None})
    return buf.getvalue()


def _plot_metric(runs: Sequence[RunData], key: str, title: str, base_key: str | None, rate: bool) -> bytes | None:
    if not any(rd.series(key)[0] for rd in runs):
        return None
    fig, ax = _new_axes(title, rate=rate)
    for i, rd in enumerate(runs):
        color = _COLORS[i % len(_COLORS)]
        xs, ys = rd.series(key)
        if not xs:
            continue
        single = len(runs) == 1
        if key == "behaviour/think_tokens_mean":
            bx, lo = rd.series(_BAND[0])
            bx2, hi = rd.series(_BAND[1])
            if bx and bx == bx2:
                ax.fill_between(bx, lo, hi, color=color, alpha=0.15, linewidth=0,
                                label=f"{rd.name} p10–p90" if len(runs) > 1 else "p10–p90")
        if len(xs) >= 15:
            ax.plot(xs, ys, color=color, alpha=0.3, linewidth=1, label="per step" if single else None)
            ax.plot(xs, _rolling(ys, _SMOOTH), color=color, linewidth=2,
                    label=f"{_SMOOTH}-step rolling mean" if single else rd.name)
        else:
            ax.plot(xs, ys, color=color, linewidth=1.8, marker="o", markersize=3,
                    label="per step" if single else rd.name)
        base = rd.base
        if base_key and base and isinstance(base.get(base_key), int | float):
            value = float(base[base_key])
            shown = f"{value:.1%}" if rate else f"{value:.3g}"
            ax.axhline(value, color=color, linestyle="--", linewidth=1.3,
                       label=f"base model (eval, greedy): {shown}" if single else f"{rd.name} base model: {shown}")
        if key == "behaviour/reflection_rate" and rd.aha.aha_step is not None:
            ax.axvline(rd.aha.aha_step, color=color, linestyle=":", linewidth=1.5,
                       label=f"{rd.name} aha step {rd.aha.aha_step}")
    if rate:
        top = max([v for rd in runs for v in rd.series(key)[1]] + [0.0])
        base_vals = [float(rd.base[base_key]) for rd in runs if base_key and rd.base
                     and isinstance(rd.base.get(base_key), int | float)]
        top = max([top, *base_vals])
        ax.set_ylim(-0.02 * max(top, 0.05), max(0.05, min(1.0, top) * 1.1))
    else:
        ax.set_ylim(bottom=min(0.0, ax.get_ylim()[0]))
    ax.legend(fontsize=8, loc="best")
    return _png(fig)


def _plot_reflective_accuracy(runs: Sequence[RunData]) -> bytes | None:
    keys = ("behaviour/accuracy_reflective", "behaviour/accuracy_non_reflective")
    if not any(rd.series(keys[0])[0] for rd in runs):
        return None
    fig, ax = _new_axes("Accuracy: reflective vs non-reflective completions", rate=True)
    for i, rd in enumerate(runs):
        color = _COLORS[i % len(_COLORS)]
        prefix = f"{rd.name}: " if len(runs) > 1 else ""
        xs, ys = rd.series(keys[0])
        ax.plot(xs, ys, color=color, linestyle="none", marker="o", markersize=4, label=f"{prefix}reflective")
        xs, ys = rd.series(keys[1])
        ax.plot(xs, ys, color=color, linewidth=1.5, alpha=0.8, label=f"{prefix}non-reflective")
    ax.set_ylim(-0.02, 1.05)
    ax.legend(fontsize=8, loc="best")
    return _png(fig)


def _plot_aha(rd: RunData, color: str) -> bytes | None:
    aha = rd.aha
    rates = aha.rates()
    if not rates:
        return None
    fig, ax = _new_axes(f"Reflection rate and the aha test: {rd.name}", rate=True, height=4.6)
    ax.bar([s for s, _ in rates], [r for _, r in rates], color=color, alpha=0.35, width=0.8,
           label="share of completions with ≥1 reflection phrase")
    if aha.windows:
        ax.step([w.start for w in aha.windows], [w.rate for w in aha.windows], where="post", color=color,
                linewidth=1.8, label=f"{aha.window}-step window rate (from its first step)")
        up = [w for w in aha.windows if w.elevated]
        if up:
            ax.plot([w.start for w in up], [w.rate for w in up], "o", color="#d62728", markersize=4,
                    label="elevated window (significant and ≥ baseline + min rise)")
    if aha.baseline_rate is not None and aha.baseline_steps is not None:
        a, b = aha.baseline_steps
        ax.axvspan(a - 0.5, b + 0.5, color="grey", alpha=0.12, label=f"baseline steps {a}–{b}")
        ax.axhline(aha.baseline_rate, color="black", linewidth=1.2, label=f"baseline {aha.baseline_rate:.1%}")
        ax.axhline(aha.baseline_rate + aha.min_rise, color="black", linestyle=":", linewidth=1,
                   label=f"baseline + {aha.min_rise:.0%} (min rise)")
    base = rd.base
    if base and isinstance(base.get("reflection_rate"), int | float):
        ax.axhline(float(base["reflection_rate"]), color=color, linestyle="--", linewidth=1.3,
                   label=f"base model (eval, greedy): {float(base['reflection_rate']):.1%}")
    if aha.aha_step is not None:
        ax.axvline(aha.aha_step, color="#d62728", linestyle="-", linewidth=1.5, label=f"aha step {aha.aha_step}")
    top = max([r for _, r in rates] + [(aha.baseline_rate or 0) + aha.min_rise] +
              [float(base["reflection_rate"]) if base and isinstance(base.get("reflection_rate"), int | float)
               else 0.0])
    ax.set_ylim(0, min(1.0, top * 1.25) if top > 0 else 0.1)
    ax.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2, frameon=False)
    return _png(fig)


# ---------------------------------------------------------------------------------------------- html


def highlight_html(record: dict[str, Any], *, max_chars: int = 1500) -> str:
    """The prefill + completion as escaped HTML, with thinking, answer and reflection phrases marked.

    Uses the viewer's spans (:func:`ahazero.observe.traces_view.completion_spans`): ``<mark>`` for
    reflection phrases, ``span.think`` / ``span.ans`` / ``span.tag`` for the rest.

    Example:
        >>> h = highlight_html({"completion": "<think>Wait, 2<3</think><answer>4</answer>", "reflections": ["wait"]})
        >>> '<span class="think"><mark>Wait</mark></span><span class="think">, 2&lt;3</span>' in h
        True
        >>> '<span class="ans">4</span>' in h and "<think>" not in h
        True
    """
    text, cut = middle_cut(full_text(record), max_chars)
    kinds: list[set[str]] = [set() for _ in text]
    spans = completion_spans(text, record.get("reflections") or [])
    if cut is not None:
        spans.append((cut[0], cut[1], "omitted"))
    for start, end, kind in spans:
        for i in range(start, end):
            kinds[i].add(kind)
    css = {"thinking": "think", "answer": "ans", "tag": "tag", "omitted": "omit"}
    out, i = [], 0
    while i < len(text):
        j = i
        while j < len(text) and kinds[j] == kinds[i]:
            j += 1
        chunk = html.escape(text[i:j], quote=False)
        classes = " ".join(css[k] for k in ("thinking", "answer", "tag", "omitted") if k in kinds[i])
        if "reflection" in kinds[i]:
            chunk = f"<mark>{chunk}</mark>"
        out.append(f'<span class="{classes}">{chunk}</span>' if classes else chunk)
        i = j
    return "".join(out)


_CSS = """
body{font-family:-apple-system,'Segoe UI',Helvetica,Arial,sans-serif;margin:24px auto;max-width:1240px;color:#222;
  line-height:1.45;padding:0 16px}
h1{margin-bottom:4px} h2{border-bottom:2px solid #ddd;padding-bottom:4px;margin-top:36px}
.meta{color:#666;font-size:13px}
table{border-collapse:collapse;margin:8px 0 16px;font-size:13px}
th,td{border:1px solid #ddd;padding:4px 8px;text-align:right} th{background:#f4f4f4}
td:first-child,th:first-child{text-align:left}
.grid{display:grid;grid-template-columns:repeat(2,minmax(0,1fr));gap:12px}
figure{margin:0;border:1px solid #e3e3e3;border-radius:6px;padding:6px;background:#fff}
figure img{width:100%;height:auto;display:block} figcaption{font-size:13px;font-weight:600;margin-bottom:4px}
.verdict{font-size:16px;padding:10px 14px;border-left:5px solid #1f77b4;background:#f3f7fb;margin:10px 0}
.verdict.aha{border-color:#d62728;background:#fdf3f3}
.note{background:#fffbea;border-left:5px solid #e0b000;padding:8px 12px;margin:10px 0;font-size:14px}
.examples{display:grid;grid-template-columns:repeat(2,minmax(0,1fr));gap:12px}
.card{border:1px solid #ddd;border-radius:6px;padding:8px 10px;font-size:13px;background:#fcfcfc;min-width:0}
.card h4{margin:0 0 4px;font-size:13px}
.card .head{color:#555;margin-bottom:6px}
pre.completion{white-space:pre-wrap;word-break:break-word;font-size:12px;background:#fff;border:1px solid #eee;
  padding:6px;margin:0;max-height:420px;overflow:auto}
.think{color:#0b6e79} .ans{font-weight:700;color:#1a7f37;background:#e9f7ec} .tag{color:#999}
.omit{color:#999;font-style:italic} mark{background:#ffe14d;color:#000;font-weight:700;padding:0 1px}
.ok{color:#1a7f37;font-weight:600} .bad{color:#c62828;font-weight:600}
code{background:#f4f4f4;padding:0 3px}
"""


def _e(value: Any) -> str:
    return html.escape(str(value))


def _fmt(value: Any, *, pct: bool = False, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int | float):
        if pct:
            return f"{100 * value:.1f}%"
        if isinstance(value, int):
            return f"{value}"
        return f"{value:.{digits}f}"
    return _e(value)


def _img(png: bytes, title: str) -> str:
    data = base64.b64encode(png).decode("ascii")
    return (f'<figure id="{_slug(title)}"><img alt="{_e(title)}" title="{_e(title)}" '
            f'src="data:image/png;base64,{data}"></figure>')


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    head = "".join(f"<th>{h}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _card(record: dict[str, Any], label: str) -> str:
    ok = record.get("correct")
    verdict = ('<span class="ok">✓ correct</span>' if ok else '<span class="bad">✗ wrong</span>'
               if ok is not None else "")
    refl = ", ".join(record.get("reflections") or []) or "none"
    step = f"step {record['step']} · " if "step" in record else ""
    facts = [f"answer <b>{_e(record.get('extracted_answer'))}</b>", f"gold {_e(record.get('gold'))}", verdict]
    if record.get("reward") is not None:
        facts.append(f"reward {_fmt(record.get('reward'))}")
    facts += [f"{_fmt(record.get('thinking_tokens'))} thinking tokens", f"reflections: <b>{_e(refl)}</b>"]
    return (
        f'<div class="card"><h4>{_e(label)}: {step}{_e(record.get("prompt_id") or record.get("id") or "")}</h4>'
        f'<div class="head">{_e(record.get("problem") or "")}<br>{" · ".join(f for f in facts if f)}</div>'
        f'<pre class="completion">{highlight_html(record)}</pre></div>'
    )


def _pick_examples(records: Sequence[dict[str, Any]], k: int) -> list[dict[str, Any]]:
    """Up to ``k`` records, reflective ones first (one per prompt), spread over the given steps."""
    reflective = [r for r in records if is_reflective(r)]
    others = [r for r in records if not is_reflective(r)]
    picked: list[dict[str, Any]] = []
    seen: set[Any] = set()
    for pool in (reflective, others):
        by_step: dict[int, list[dict[str, Any]]] = {}
        for r in pool:
            by_step.setdefault(int(r.get("step", 0)), []).append(r)
        queues = list(by_step.values())
        while len(picked) < k and any(queues):
            for q in queues:
                while q and q[0].get("prompt_id") in seen:
                    q.pop(0)
                if q and len(picked) < k:
                    r = q.pop(0)
                    seen.add(r.get("prompt_id"))
                    picked.append(r)
    return picked


def _phrase_counts(records: Sequence[dict[str, Any]]) -> str:
    counts = Counter(p for r in records for p in (r.get("reflections") or []))
    return ", ".join(f"{p} ×{c}" for p, c in counts.most_common(6)) or "none"


def _aha_section(rd: RunData, color: str, examples: int) -> tuple[str, dict[str, bytes]]:
    aha = rd.aha
    pngs: dict[str, bytes] = {}
    parts = [f"<h3>{_e(rd.name)}</h3>",
             f'<div class="verdict{" aha" if aha.aha_step is not None else ""}">{_e(aha.verdict)}</div>']
    png = _plot_aha(rd, color)
    parts.append('<div class="grid">')
    if png:
        pngs[f"aha-{_slug(rd.name)}.png"] = png
        parts.append(_img(png, f"Reflection rate and the aha test: {rd.name}"))
    w = aha.reported
    rows = [
        ["baseline reflection rate",
         f"{_fmt(aha.baseline_rate, pct=True)} (steps {aha.baseline_steps[0]}–{aha.baseline_steps[1]}, "
         f"n = {aha.baseline_n})" if aha.baseline_steps else "–"],
        ["aha step", _fmt(aha.aha_step) if aha.aha_step is not None else "none"],
        ["window tested" + (" (aha)" if aha.aha_step is not None else " (largest z)"),
         f"steps {w.start}–{w.end}: {_fmt(w.rate, pct=True)} (n = {w.n})" if w else "–"],
        ["z / one-sided p", f"{w.z:.2f} / {format_p(w.p_value)}" if w else "–"],
        ["Bonferroni-adjusted p", f"{format_p(w.p_adjusted)} ({aha.n_tests} windows)" if w else "–"],
        ["settings", f"window {aha.window} steps, alpha {aha.alpha}, min rise +{aha.min_rise:.0%}"],
        ["steps with data", f"{aha.n_steps} ({_e(aha.source)})"],
    ]
    parts.append(f'<div>{_table(["aha test", "value"], [[_e(a), b] for a, b in rows])}</div></div>')

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
            f"Reflection phrases in {labels[0]} {step_span(before[0], before[-1])}: {_e(_phrase_counts(early))}"
            + (f"; in {labels[1]} {step_span(after[0], after[-1])}: {_e(_phrase_counts(late))}." if after else ".")
            + "</p>"
        )
        cards = []
        left = _pick_examples(early, examples)
        right = _pick_examples(late, examples)
        for i in range(max(len(left), len(right))):
            cards.append(_card(left[i], labels[0]) if i < len(left) else "<div></div>")
            cards.append(_card(right[i], labels[1]) if i < len(right) else "<div></div>")
        parts.append(f'<div class="examples">{"".join(cards)}</div>')
    return "\n".join(parts), pngs


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def _train_mean(rd: RunData, key: str, *, first: bool, k: int) -> float | None:
    ys = rd.series(key)[1]
    return _mean(ys[:k] if first else ys[-k:])


_BASE_ROWS = [  # label, eval key, metrics key, percent?, digits otherwise
    ("accuracy (pass@1)", "pass@1", "behaviour/accuracy", True, 3),
    ("format rate", "format_rate", "behaviour/format_rate", True, 3),
    ("thinking tokens (mean)", "think_tokens_mean", "behaviour/think_tokens_mean", False, 1),
    ("reflection rate", "reflection_rate", "behaviour/reflection_rate", True, 3),
    ("language consistency", "language_consistency", "behaviour/language_consistency", False, 3),
    ("truncation rate", "truncation_rate", "behaviour/truncation_rate", True, 3),
]


def _base_section(rd: RunData, examples: int) -> str:
    base = rd.base
    if base is None:
        return (f"<h3>{_e(rd.name)}</h3><p>No <code>eval/base.json</code>: run <code>ahazero eval CONFIG "
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
        header.append(f"trained: {_e(last_tag)} (eval, greedy)")
    rows = []
    for label, bkey, mkey, pct, digits in _BASE_ROWS:
        row = [label, _fmt(base.get(bkey), pct=pct, digits=digits),
               _fmt(_train_mean(rd, mkey, first=True, k=k), pct=pct, digits=digits),
               _fmt(_train_mean(rd, mkey, first=False, k=k), pct=pct, digits=digits)]
        if last_tag:
            row.append(_fmt(rd.evals[last_tag].get(bkey), pct=pct, digits=digits))
        rows.append(row)
    parts = [f"<h3>{_e(rd.name)}</h3>", _table(header, rows)]

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
        if samples:
            text += f" Its phrases: {_e(_phrase_counts(samples))}."
        parts.append(f'<div class="note">{text}</div>')
        shown = [s for s in samples if s.get("reflections")][:examples]
        if shown:
            parts.append('<div class="examples">' + "".join(_card(s, "base model") for s in shown) + "</div>")
    elif isinstance(rate, int | float):
        parts.append(f'<div class="note">The base model uses no reflection phrase in its {base.get("n", "")} '
                     f"greedy held-out completions: any reflection during training is new.</div>")
    return "\n".join(parts)


def _base_line(rd: RunData) -> str:
    """One line under the verdict: how reflective the model was before RL (greedy eval and step 1)."""
    facts = []
    base = rd.base
    if base and isinstance(base.get("reflection_rate"), int | float):
        facts.append(f"base model (greedy eval) {base['reflection_rate']:.1%}")
    xs, ys = rd.series("behaviour/reflection_rate")
    if xs:
        facts.append(f"training step {xs[0]} {ys[0]:.1%}")
        facts.append(f"step {xs[-1]} {ys[-1]:.1%}")
    if not facts:
        return ""
    return f'<br><span class="meta">reflective completions: {_e(", ".join(facts))}</span>'


def _eval_table(runs: Sequence[RunData]) -> str:
    extra = sorted({k for rd in runs for e in rd.evals.values() for k in e
                    if re.fullmatch(r"(pass|maj)@\d+", k) and k != "pass@1"})
    header = ["run", "tag", "model", "n", "pass@1", *extra, "format", "think tokens", "reflection", "language",
              "truncation"]
    rows = []
    for rd in runs:
        for tag, e in rd.evals.items():
            rows.append([_e(rd.name), f"<b>{_e(tag)}</b>", _e(e.get("model", "")), _fmt(e.get("n")),
                         _fmt(e.get("pass@1"), pct=True), *[_fmt(e.get(k), pct=True) for k in extra],
                         _fmt(e.get("format_rate"), pct=True), _fmt(e.get("think_tokens_mean"), digits=1),
                         _fmt(e.get("reflection_rate"), pct=True), _fmt(e.get("language_consistency")),
                         _fmt(e.get("truncation_rate"), pct=True)])
    return _table(header, rows) if rows else ""


def _runs_table(runs: Sequence[RunData]) -> str:
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
        rows.append([_e(rd.name), _e(model), _e(task), _e(rewards),
                     f"{len(steps)} ({steps[0]}–{steps[-1]})" if steps else "0",
                     "–" if skipped is None else f"{skipped} of {len(steps)}", _e(rd.metrics_source), status])
    return _table(["run", "model", "task", "rewards", "steps logged", "updates skipped (non-finite gradient)",
                   "curves from", "status"], rows)


def report_paths(runs: Sequence[str | Path], out: str | Path | None) -> tuple[Path, Path]:
    """``(html file, folder for the PNGs)``: ``runs/<name>/report/`` for one run, ``--out`` (a folder or .html).

    Without ``--out``, several runs go to ``<parent of the first>/report-<a>-vs-<b>/``.

    Example:
        >>> [p.as_posix() for p in report_paths(["runs/a"], None)]
        ['runs/a/report/report.html', 'runs/a/report']
        >>> [p.as_posix() for p in report_paths(["runs/a", "runs/b"], "cmp/lr.html")]
        ['cmp/lr.html', 'cmp']
    """
    if out is not None:
        out = Path(out)
        if out.suffix.lower() in (".html", ".htm"):
            return out, out.parent
        return out / "report.html", out
    first = Path(runs[0])
    folder = first / "report" if len(runs) == 1 else first.parent / (
        "report-" + "-vs-".join(_slug(Path(r).name) for r in runs))
    return folder / "report.html", folder


def build_report(runs: Sequence[str | Path], out: str | Path | None = None, *, title: str | None = None,
                 examples: int = 2) -> Path:
    """Write the HTML report (and its PNGs) for one or more run directories; return the HTML path.

    ``out`` is a folder or an ``.html`` file (see :func:`report_paths`); ``examples`` is the
    number of example completions per side in the aha and base-model sections.

    Example:
        >>> import tempfile, pathlib
        >>> run = pathlib.Path(tempfile.mkdtemp()) / "demo"
        >>> _ = run.mkdir(); _ = (run / "metrics.jsonl").write_text(
        ...     '{"step": 1, "reward": 0.5, "behaviour/accuracy": 0.5}\\n{"step": 2, "reward": 0.7}\\n')
        >>> path = build_report([run])
        >>> path.name, "Total reward" in path.read_text()
        ('report.html', True)
    """
    return _write_report(runs, out, title=title, examples=examples)[0]


def _write_report(runs: Sequence[str | Path], out: str | Path | None, *, title: str | None,
                  examples: int) -> tuple[Path, list[RunData]]:
    if not runs:
        raise ValueError("give at least one run directory")
    names = [Path(r).name for r in runs]
    if len(set(names)) < len(names):
        names = [f"{Path(r).parent.name}/{Path(r).name}" for r in runs]
    data = [load_run(r, name=n) for r, n in zip(runs, names)]
    html_path, png_dir = report_paths(runs, out)
    png_dir.mkdir(parents=True, exist_ok=True)
    html_path.parent.mkdir(parents=True, exist_ok=True)

    pngs: dict[str, bytes] = {}
    figures: list[str] = []
    components = sorted({k for rd in data for row in rd.rows for k in row
                         if k.startswith("rewards/") and k.endswith("/mean")})
    specs = [(k, f"Reward: {k[len('rewards/'):-len('/mean')]}", None, False) for k in components] + PLOTS
    for key, plot_title, base_key, rate in specs:
        png = _plot_metric(data, key, plot_title, base_key, rate)
        if png:
            pngs[f"{_slug(plot_title)}.png"] = png
            figures.append(_img(png, plot_title))
    png = _plot_reflective_accuracy(data)
    if png:
        pngs["accuracy-reflective-vs-non-reflective.png"] = png
        figures.append(_img(png, "Accuracy: reflective vs non-reflective completions"))

    aha_parts = []
    for i, rd in enumerate(data):
        section, extra = _aha_section(rd, _COLORS[i % len(_COLORS)], examples)
        aha_parts.append(section)
        pngs.update(extra)
    for name, png in pngs.items():
        (png_dir / name).write_bytes(png)

    title = title or ("ahazero report: " + ", ".join(names))
    verdicts = "".join(
        f'<div class="verdict{" aha" if rd.aha.aha_step is not None else ""}"><b>{_e(rd.name)}</b>: '
        f"{_e(rd.aha.verdict)}{_base_line(rd)}</div>" for rd in data)
    evals = _eval_table(data)
    body = [
        f"<h1>{_e(title)}</h1>",
        f'<div class="meta">generated {time.strftime("%Y-%m-%d %H:%M")} by <code>ahazero report</code> · '
        f"runs: {', '.join(_e(str(Path(r))) for r in runs)}</div>",
        _runs_table(data),
        "<h2>Did reflection rise?</h2>", verdicts,
        "<h2>Training curves</h2>",
        "<p>Per training step, from the sampled completions of that step (thin line: each step; thick line: "
        f"{_SMOOTH}-step rolling mean when a run has 15 steps or more). Dashed horizontal lines: the base model "
        "from <code>eval/base.json</code> (greedy decoding on the held-out split), where present.</p>",
        f'<div class="grid">{"".join(figures)}</div>' if figures else "<p>No logged steps yet.</p>",
        "<h2>The aha test</h2>", *aha_parts,
        "<h2>Base model</h2>", *[_base_section(rd, examples) for rd in data],
    ]
    if evals:
        body += ["<h2>Held-out evaluation</h2>", "<p>From <code>ahazero eval</code> (greedy pass@1; pass@k and "
                 "maj@k from k samples when run with <code>--samples</code>).</p>", evals]
    body += [
        "<h2>How the aha test works</h2>",
        f"<p>{_e(DEFINITION)}</p>",
    ]
    doc = (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{_e(title)}</title>'
           f"<style>{_CSS}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n")
    tmp = html_path.with_name(f".{html_path.name}.tmp")
    tmp.write_text(doc, encoding="utf-8")
    tmp.replace(html_path)
    return html_path, data


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register the ``report`` subcommand (``set_defaults(func=run_report)``) and return its parser.

    Example:
        >>> import argparse
        >>> parser = argparse.ArgumentParser(); sub = parser.add_subparsers()
        >>> _ = add_parser(sub)
        >>> parser.parse_args(["report", "runs/a"]).out is None
        True
    """
    p = subparsers.add_parser(
        "report", help="write a self-contained HTML report (plots, aha test, base model, eval) of one or more runs",
        description="Write one self-contained HTML report (PNGs embedded, and written beside it).",
    )
    p.add_argument("runs", nargs="+", help="run directories (runs/<name>) or run names under runs/")
    p.add_argument("--out", default=None,
                   help="output folder or .html file (default: runs/<name>/report/ for one run; "
                        "<parent>/report-<a>-vs-<b>/ for several)")
    p.add_argument("--title", default=None, help="the report's title")
    p.add_argument("--examples", type=int, default=2, help="example completions per side (default 2)")
    p.set_defaults(func=run_report)
    return p


def run_report(args: argparse.Namespace, console: Console | None = None) -> int:
    """Run ``ahazero report`` with parsed ``args``; messages go to ``console``. Returns the exit code.

    Example:
        >>> import argparse, io
        >>> from rich.console import Console
        >>> c = Console(record=True, width=120, file=io.StringIO())
        >>> run_report(argparse.Namespace(runs=["no/such/run"], out=None, title=None, examples=2), console=c)
        2
        >>> "no run directory" in c.export_text()
        True
    """
    from ahazero.observe.traces_view import resolve_run

    console = console or Console()
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        console.print("[red]ahazero report needs matplotlib[/red]: pip install matplotlib")
        return 2
    runs = []
    for run in args.runs:
        path = resolve_run(run)
        if path is None:
            console.print(f"[red]no run directory {run!r}[/red] (give a path, or a name under runs/)")
            return 2
        runs.append(path)
    path, data = _write_report(runs, args.out, title=getattr(args, "title", None),
                               examples=getattr(args, "examples", 2))
    for rd in data:
        console.print(f"[bold]{rd.name}[/bold]: {rd.aha.verdict}")
    console.print(f"wrote {path} (and its PNGs in {path.parent})")
    return 0
