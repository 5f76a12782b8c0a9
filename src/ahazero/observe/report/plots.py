"""The report's PNG plots (matplotlib, no pyplot state): metric curves over steps, reflective accuracy, the aha test.

Each function takes :class:`~ahazero.observe.report.data.RunData` and returns PNG bytes, or
None when there is nothing to draw.

Example:
    >>> from pathlib import Path
    >>> from ahazero.observe.aha import detect_aha
    >>> from ahazero.observe.report.data import RunData
    >>> rd = RunData("r", Path("."), [{"step": 1, "reward": 0.5}, {"step": 2, "reward": 0.7}], "m", {}, detect_aha([]))
    >>> plot_metric([rd], "reward", "Total reward", None, False)[:4]
    b'\\x89PNG'
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from typing import Any

from ahazero.observe.report.data import RunData

__all__ = ["COLORS", "PLOTS", "SELF_CHECK_TITLE", "SMOOTH", "plot_aha", "plot_metric", "plot_reflective_accuracy",
           "plot_self_check"]


#: The metric plots: (metrics key, title, eval/base.json key for the reference line, is a rate).
PLOTS: list[tuple[str, str, str | None, bool]] = [
    ("reward", "Total reward", None, False),
    ("behaviour/accuracy", "Accuracy", "pass@1", True),
    ("behaviour/format_rate", "Format rate", "format_rate", True),
    ("behaviour/think_tokens_mean", "Thinking length (tokens)", "think_tokens_mean", False),
    ("behaviour/think_tokens_closed_mean", "Thinking length, closed </think> only (tokens)",
     "think_tokens_closed_mean", False),
    ("behaviour/reflection_rate", "Reflection rate", "reflection_rate", True),
    ("behaviour/reflection_rate_drgrpo", "Reflection rate, Dr. GRPO keywords", "reflection_rate_drgrpo", True),
    ("behaviour/language_consistency", "Language consistency", "language_consistency", True),
    ("behaviour/truncation_rate", "Truncation rate", "truncation_rate", True),
    ("timing/tokens_per_second", "Rollout throughput (generated tokens/s)", None, False),
    ("timing/generation_seconds", "Rollout generation time per step (s)", None, False),
]


_BAND = ("behaviour/think_tokens_p10", "behaviour/think_tokens_p90")


COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf"]


SMOOTH = 5  # rolling-mean window (steps) drawn over the per-step values when a run has >= 15 steps


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


def plot_metric(runs: Sequence[RunData], key: str, title: str, base_key: str | None, rate: bool) -> bytes | None:
    if not any(rd.series(key)[0] for rd in runs):
        return None
    fig, ax = _new_axes(title, rate=rate)
    for i, rd in enumerate(runs):
        color = COLORS[i % len(COLORS)]
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
            ax.plot(xs, _rolling(ys, SMOOTH), color=color, linewidth=2,
                    label=f"{SMOOTH}-step rolling mean" if single else rd.name)
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


def plot_reflective_accuracy(runs: Sequence[RunData], measure: str = "") -> bytes | None:
    """Accuracy of reflective vs non-reflective completions per step; ``measure="_drgrpo"`` for Dr. GRPO's keywords."""
    keys = (f"behaviour/accuracy_reflective{measure}", f"behaviour/accuracy_non_reflective{measure}")
    if not any(rd.series(keys[0])[0] for rd in runs):
        return None
    title = "Accuracy: reflective vs non-reflective completions" + (", Dr. GRPO keywords" if measure else "")
    fig, ax = _new_axes(title, rate=True)
    for i, rd in enumerate(runs):
        color = COLORS[i % len(COLORS)]
        prefix = f"{rd.name}: " if len(runs) > 1 else ""
        xs, ys = rd.series(keys[0])
        ax.plot(xs, ys, color=color, linestyle="none", marker="o", markersize=4, label=f"{prefix}reflective")
        xs, ys = rd.series(keys[1])
        ax.plot(xs, ys, color=color, linewidth=1.5, alpha=0.8, label=f"{prefix}non-reflective")
    ax.set_ylim(-0.02, 1.05)
    ax.legend(fontsize=8, loc="best")
    return _png(fig)


#: The self-check panel's title.
SELF_CHECK_TITLE = "Self-check: checks that recompute an answer, and net corrections"
_SELF_CHECK_PANELS = (("behaviour/check_rate", "check_rate", "completions with a check", True),
                      ("behaviour/net_corrections_per_100", "net_corrections_per_100",
                       "net corrections per 100 (wrong→right − right→wrong)", False))


def plot_self_check(runs: Sequence[RunData]) -> bytes | None:
    """Check rate and net corrections per 100 completions over steps, with the base model's values dashed.

    The base values are ``self_check`` of ``eval/base.json`` (:mod:`ahazero.observe.self_check`).
    """
    from matplotlib.figure import Figure
    from matplotlib.ticker import PercentFormatter

    if not any(rd.series(_SELF_CHECK_PANELS[0][0])[0] for rd in runs):
        return None
    fig = Figure(figsize=(6.4, 5.2), dpi=100, layout="constrained")
    axes = fig.subplots(2, 1, sharex=True)
    axes[0].set_title(SELF_CHECK_TITLE, fontsize=11, loc="left")
    for ax, (key, base_key, label, rate) in zip(axes, _SELF_CHECK_PANELS, strict=True):
        ax.set_ylabel(label, fontsize=8)
        ax.grid(alpha=0.3)
        if rate:
            ax.yaxis.set_major_formatter(PercentFormatter(1.0))
        for i, rd in enumerate(runs):
            color = COLORS[i % len(COLORS)]
            xs, ys = rd.series(key)
            if len(xs) >= 15:
                ax.plot(xs, ys, color=color, alpha=0.3, linewidth=1)
            ax.plot(xs, _rolling(ys, SMOOTH) if len(xs) >= 15 else ys, color=color, linewidth=1.8,
                    marker="o" if len(xs) < 15 else None, markersize=3, label=rd.name if len(runs) > 1 else None)
            base = (rd.base or {}).get("self_check")
            value = base.get(base_key) if isinstance(base, dict) else None
            if isinstance(value, int | float):
                shown = f"{value:.1%}" if rate else f"{value:+.1f}"
                ax.axhline(value, color=color, linestyle="--", linewidth=1.3, label=f"{rd.name} base model: {shown}"
                           if len(runs) > 1 else f"base model (eval, greedy): {shown}")
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=7, loc="best")
    axes[1].axhline(0.0, color="grey", linewidth=0.8)
    axes[1].set_xlabel("training step")
    return _png(fig)


def plot_aha(rd: RunData, color: str) -> bytes | None:
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
