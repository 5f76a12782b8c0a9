"""Did reflection rise? A documented test for the "aha step" of a run.

R1-Zero's "aha moment" is the point in training where the model starts re-checking its work.
Here it is made measurable with the **reflection rate**: the share of a step's completions
with at least one reflection phrase ("wait", "let me check", ... see
:mod:`ahazero.observe.behaviours`). The statistic:

1. **Counts.** For every step with traces: ``n`` completions traced, ``k`` of them reflective.
   (Without traces, ``metrics.jsonl``'s ``behaviour/reflection_rate`` is used with an assumed
   ``n`` per step: the config's ``per_device_train_batch_size * gradient_accumulation_steps``.)
2. **Baseline.** The pooled rate ``p0 = sum(k) / sum(n)`` over the first ``K`` steps,
   ``K = max(3, ceil(10% of the steps))``.
3. **Windows.** For every later step ``t``, the ``W = 5`` consecutive steps starting at ``t``
   are pooled the same way and compared with the baseline by a one-sided two-proportion
   z-test (pooled variance) of "window rate > baseline rate". The z is divided by the square
   root of the baseline's overdispersion ``phi`` (Pearson chi-square of the baseline steps
   over ``K - 1``, at least 1), so step-to-step swings larger than binomial noise (each step
   has other prompts) do not count as a rise. A window is **elevated** when
   (a) its one-sided p-value is below ``alpha / m`` (Bonferroni over the ``m`` windows tested,
   ``alpha = 0.01``), (b) its pooled rate is at least ``p0 + 0.10`` (the minimum rise), and
   (c) most of its steps (at least ``ceil(W / 2)``) are themselves at least ``p0 + 0.10``, so
   one or two outlier steps cannot carry a window.
4. **Aha step.** The first step ``t`` whose own rate is at least ``p0 + 0.10`` and whose window
   and the ``W`` windows after it (starting at ``t+1 ... t+W``: ``2W`` steps in all, no single
   step in every one of them) are all elevated: the rise is significant, large and lasting.
   A flat run, noise around the baseline and a brief spike give no aha step; a rise that
   starts fewer than ``2W`` steps before the end cannot be confirmed yet.

Small models often reflect *superficially* from step 0 (the word "wait" with no re-check
behind it), so the baseline is the model's own early rate, not zero.

Example:
    >>> flat = [(s, 64, 3) for s in range(1, 41)]
    >>> detect_aha(flat).aha_step is None
    True
    >>> rise = [(s, 64, 3 if s < 20 else 30) for s in range(1, 41)]
    >>> detect_aha(rise).aha_step
    20
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ahazero.observe.records import Problem
from ahazero.observe.rundir import RunDir, read_metrics
from ahazero.observe.trace_store import StepCount, reflection_counts

__all__ = [
    "DEFINITION",
    "AhaResult",
    "WindowTest",
    "aha_from_run",
    "counts_from_metrics",
    "detect_aha",
    "dispersion",
    "format_p",
    "one_sided_z_test",
    "step_span",
]

DEFAULT_ASSUMED_N = 64

#: The statistic in plain English (for reports and the README).
DEFINITION = (
    "Reflection rate = share of a step's completions with at least one reflection phrase (wait, verify, "
    "check, let me check, ...). Baseline = that rate pooled over the first K steps (10% of the steps, at "
    "least 3). Every later window of W = 5 consecutive steps is pooled and compared with the baseline by a "
    "one-sided two-proportion z-test, allowing for the baseline's step-to-step overdispersion and "
    "Bonferroni-corrected over all windows tested (alpha = 0.01). A window is elevated when it is "
    "significant, at least 10 points above the baseline, and most of its steps are themselves 10 points "
    "above it. The aha step is the first step whose own rate is 10 points above the baseline and whose "
    "window and the next W windows (2W steps) are all elevated; flat runs, noise and brief spikes give none."
)


def one_sided_z_test(k1: int, n1: int, k0: int, n0: int) -> tuple[float, float]:
    """One-sided two-proportion z-test of ``k1/n1 > k0/n0`` (pooled variance): ``(z, p)``.

    Example:
        >>> z, p = one_sided_z_test(40, 100, 10, 100)
        >>> round(z, 2), p < 1e-6
        (4.9, True)
        >>> one_sided_z_test(5, 100, 5, 100)
        (0.0, 0.5)
    """
    if n1 <= 0 or n0 <= 0:
        return 0.0, 1.0
    p1, p0 = k1 / n1, k0 / n0
    pooled = (k1 + k0) / (n1 + n0)
    se = math.sqrt(pooled * (1.0 - pooled) * (1.0 / n1 + 1.0 / n0))
    if se == 0.0:
        if p1 == p0:
            return 0.0, 0.5
        return (math.inf, 0.0) if p1 > p0 else (-math.inf, 1.0)
    z = (p1 - p0) / se
    return z, 0.5 * math.erfc(z / math.sqrt(2.0))


def format_p(p: float | None) -> str:
    """A p-value for people: 3 decimals, scientific below 0.001, "< 1e-12" below that.

    Example:
        >>> format_p(0.5), format_p(0.0004), format_p(1e-30), format_p(None)
        ('0.500', '4.0e-04', '< 1e-12', 'n/a')
    """
    if p is None or math.isnan(p):
        return "n/a"
    if p < 1e-12:
        return "< 1e-12"
    if p < 1e-3:
        return f"{p:.1e}"
    return f"{min(p, 1.0):.3f}"


@dataclass(frozen=True)
class WindowTest:
    """One window of steps compared with the baseline."""

    start: int  #: first step of the window
    end: int  #: last step of the window
    n: int
    reflective: int
    rate: float
    z: float
    p_value: float  #: one-sided, uncorrected
    p_adjusted: float  #: Bonferroni: min(1, p * number of windows)
    steps_above: int  #: steps of the window whose own rate is at least baseline + min_rise
    elevated: bool  #: significant after correction and at least ``min_rise`` above the baseline


@dataclass
class AhaResult:
    """The outcome of :func:`detect_aha`; ``verdict`` says it in one sentence."""

    aha_step: int | None
    verdict: str
    baseline_rate: float | None
    baseline_steps: tuple[int, int] | None
    baseline_n: int
    n_steps: int
    window: int
    alpha: float
    min_rise: float
    n_tests: int
    #: The window reported: the aha step's window, else the one with the largest z.
    reported: WindowTest | None
    source: str
    counts: list[StepCount] = field(default_factory=list)
    windows: list[WindowTest] = field(default_factory=list)

    @property
    def z(self) -> float | None:
        return None if self.reported is None else self.reported.z

    @property
    def p_value(self) -> float | None:
        return None if self.reported is None else self.reported.p_value

    @property
    def p_adjusted(self) -> float | None:
        return None if self.reported is None else self.reported.p_adjusted

    def rates(self) -> list[tuple[int, float]]:
        """``(step, reflection rate)`` per step.

        Example:
            >>> detect_aha([(1, 4, 1), (2, 4, 2)]).rates()
            [(1, 0.25), (2, 0.5)]
        """
        return [(c.step, c.reflective / c.n) for c in self.counts if c.n]

    def summary(self) -> dict[str, Any]:
        """The headline numbers as a flat dict (for tables and JSON).

        Example:
            >>> s = detect_aha([(1, 4, 1)]).summary()
            >>> s["aha_step"], s["baseline_rate"], s["verdict"][:24]
            (None, 0.25, 'too few steps to test fo')
        """
        r = self.reported
        return {
            "aha_step": self.aha_step,
            "verdict": self.verdict,
            "baseline_rate": self.baseline_rate,
            "baseline_steps": self.baseline_steps,
            "baseline_n": self.baseline_n,
            "n_steps": self.n_steps,
            "window": self.window,
            "alpha": self.alpha,
            "min_rise": self.min_rise,
            "n_tests": self.n_tests,
            "window_start": None if r is None else r.start,
            "window_rate": None if r is None else r.rate,
            "z": None if r is None else r.z,
            "p_value": None if r is None else r.p_value,
            "p_adjusted": None if r is None else r.p_adjusted,
            "source": self.source,
        }


def dispersion(base: Sequence[tuple[int, int, int]], p0: float) -> float:
    """Overdispersion of the baseline steps: Pearson chi-square / (K - 1), at least 1.

    1 when the steps vary as much as binomial sampling predicts; more when the rate itself moves
    from step to step (each step has other prompts), which the z-test then allows for.

    Example:
        >>> dispersion([(1, 100, 10), (2, 100, 10)], 0.1), round(dispersion([(1, 100, 0), (2, 100, 20)], 0.1), 2)
        (1.0, 22.22)
    """
    base = [StepCount(*c) for c in base]
    if len(base) < 2 or p0 <= 0.0 or p0 >= 1.0:
        return 1.0
    chi2 = sum((c.reflective - c.n * p0) ** 2 / (c.n * p0 * (1.0 - p0)) for c in base)
    return max(1.0, chi2 / (len(base) - 1))


def _pool(counts: Sequence[StepCount]) -> tuple[int, int]:
    return sum(c.n for c in counts), sum(c.reflective for c in counts)


def step_span(a: int, b: int) -> str:
    """``"step 3"`` or ``"steps 3–7"``.

    Example:
        >>> step_span(3, 3), step_span(3, 7)
        ('step 3', 'steps 3–7')
    """
    return f"step {a}" if a == b else f"steps {a}–{b}"


def detect_aha(
    counts: Sequence[tuple[int, int, int]],
    *,
    baseline_steps: int | None = None,
    baseline_fraction: float = 0.1,
    min_baseline_steps: int = 3,
    window: int = 5,
    sustain: int | None = None,
    alpha: float = 0.01,
    min_rise: float = 0.10,
    source: str = "traces",
) -> AhaResult:
    """Find the step where the reflection rate rises significantly above its early baseline.

    ``counts`` holds ``(step, n, reflective)`` per step (any order; steps with ``n == 0`` are
    dropped). ``baseline_steps`` fixes ``K`` (else ``max(min_baseline_steps,
    ceil(baseline_fraction * steps))``); ``sustain`` is how many windows after the first must
    also be elevated (default ``window``). See the module docstring for the definition.

    Example:
        >>> spike = [(s, 64, 50 if s == 20 else 3) for s in range(1, 41)]
        >>> detect_aha(spike).aha_step is None
        True
        >>> burst = [(s, 64, 40 if 20 <= s < 24 else 3) for s in range(1, 41)]
        >>> r = detect_aha(burst)
        >>> r.aha_step, r.verdict.split(":")[1].strip()
        (None, 'the rise to 50.9% in steps 19–23 did not stay elevated; last 5 steps 4.7%.')
    """
    steps = sorted((StepCount(int(s), int(n), int(k)) for s, n, k in counts if n > 0), key=lambda c: c.step)
    sustain = window if sustain is None else sustain
    n_steps = len(steps)
    k_base = baseline_steps or max(min_baseline_steps, math.ceil(baseline_fraction * n_steps))
    common: dict[str, Any] = {
        "n_steps": n_steps, "window": window, "alpha": alpha, "min_rise": min_rise, "source": source,
        "counts": steps,
    }
    if not steps:
        return AhaResult(aha_step=None, verdict="no reflection data: the run has no traces or logged steps yet.",
                         baseline_rate=None, baseline_steps=None, baseline_n=0, n_tests=0, reported=None, **common)

    base = steps[:k_base]
    n0, k0 = _pool(base)
    p0 = k0 / n0
    base_span = (base[0].step, base[-1].step)
    need = k_base + window + sustain
    if n_steps < need:
        return AhaResult(
            aha_step=None,
            verdict=(f"too few steps to test for a rise in reflection: {n_steps} logged, {need} needed "
                     f"(baseline {p0:.1%} over {step_span(*base_span)})."),
            baseline_rate=p0, baseline_steps=base_span, baseline_n=n0, n_tests=0, reported=None, **common,
        )

    phi = dispersion(base, p0)
    rest = steps[k_base:]
    starts = range(len(rest) - window + 1)
    m = len(starts)
    windows = []
    for i in starts:
        chunk = rest[i:i + window]
        n1, k1 = _pool(chunk)
        z, p = one_sided_z_test(k1, n1, k0, n0)
        if phi > 1.0 and math.isfinite(z):
            z = z / math.sqrt(phi)
            p = 0.5 * math.erfc(z / math.sqrt(2.0))
        rate = k1 / n1
        p_adj = min(1.0, p * m)
        above = sum(c.reflective / c.n >= p0 + min_rise for c in chunk)
        windows.append(WindowTest(
            start=chunk[0].step, end=chunk[-1].step, n=n1, reflective=k1, rate=rate, z=z, p_value=p,
            p_adjusted=p_adj, steps_above=above,
            elevated=p < alpha / m and rate >= p0 + min_rise and above >= math.ceil(len(chunk) / 2),
        ))

    aha = None
    for i in range(len(windows)):
        own = rest[i]
        if own.reflective / own.n < p0 + min_rise:
            continue
        following = windows[i:i + sustain + 1]
        if len(following) == sustain + 1 and all(x.elevated for x in following):
            aha = i
            break

    last = rest[-window:]
    n_last, k_last = _pool(last)
    if aha is not None:
        w = windows[aha]
        verdict = (
            f"reflection rises significantly at step {w.start}: {w.rate:.1%} of completions in "
            f"{step_span(w.start, w.end)} vs a {p0:.1%} baseline over {step_span(*base_span)} "
            f"(z = {w.z:.1f}, Bonferroni-adjusted p {_p_phrase(w.p_adjusted)}), and it stays elevated."
        )
        return AhaResult(aha_step=w.start, verdict=verdict, baseline_rate=p0, baseline_steps=base_span,
                         baseline_n=n0, n_tests=m, reported=w, windows=windows, **common)

    best = max(windows, key=lambda x: x.z)
    tail = f"; last {len(last)} steps {k_last / n_last:.1%}"
    transient = [x for x in windows if x.elevated]
    if transient:
        peak = max(transient, key=lambda x: x.rate)
        verdict = (
            f"no sustained rise in reflection over {n_steps} steps (baseline {p0:.1%} over "
            f"{step_span(*base_span)}): the rise to {peak.rate:.1%} in {step_span(peak.start, peak.end)} "
            f"did not stay elevated{tail}."
        )
    else:
        verdict = (
            f"no significant rise in reflection over {n_steps} steps (baseline {p0:.1%} over "
            f"{step_span(*base_span)}; highest {window}-step window {best.rate:.1%} from step {best.start}, "
            f"adjusted p {_p_phrase(best.p_adjusted)}{tail})."
        )
    return AhaResult(aha_step=None, verdict=verdict, baseline_rate=p0, baseline_steps=base_span,
                     baseline_n=n0, n_tests=m, reported=best, windows=windows, **common)


def _p_phrase(p: float) -> str:
    text = format_p(p)
    return text if text.startswith("<") else f"= {text}"


def counts_from_metrics(rows: Sequence[dict[str, Any]], n: int) -> list[StepCount]:
    """Per-step counts from ``metrics.jsonl`` rows' ``behaviour/reflection_rate`` and an assumed ``n``.

    Example:
        >>> counts_from_metrics([{"step": 1, "behaviour/reflection_rate": 0.25}, {"step": 2}], n=8)
        [StepCount(step=1, n=8, reflective=2)]
    """
    out = []
    for row in rows:
        rate = row.get("behaviour/reflection_rate")
        if "step" in row and isinstance(rate, int | float) and math.isfinite(rate):
            out.append(StepCount(int(row["step"]), n, round(rate * n)))
    return out


def _completions_per_step(run_dir: Path) -> int | None:
    """Completions generated per optimizer step, from the run's ``config.yaml`` (single process)."""
    try:
        cfg = yaml.safe_load(RunDir(run_dir).config.read_text(encoding="utf-8")) or {}
        grpo = cfg.get("grpo") or {}
        batch = int(grpo.get("per_device_train_batch_size", 8))
        accum = int(grpo.get("steps_per_generation") or grpo.get("gradient_accumulation_steps", 1))
        return batch * accum
    except (OSError, ValueError, TypeError, AttributeError, yaml.YAMLError):
        return None


def aha_from_run(run_dir: str | Path, *, assumed_n: int | None = None, problems: list[Problem] | None = None,
                 **kwargs: Any) -> AhaResult:
    """:func:`detect_aha` on a run directory: trace counts, else ``metrics.jsonl`` with an assumed n.

    ``kwargs`` go to :func:`detect_aha`. Works on a run still in progress. Damaged lines are
    skipped and, when ``problems`` is given, added to it.

    Example:
        >>> import tempfile
        >>> aha_from_run(tempfile.mkdtemp()).verdict
        'no reflection data: the run has no traces or logged steps yet.'
    """
    root = Path(run_dir)
    counts = reflection_counts(root, problems)
    if counts:
        return detect_aha(counts, source="traces", **kwargs)
    n = assumed_n or _completions_per_step(root) or DEFAULT_ASSUMED_N
    counts = counts_from_metrics(read_metrics(RunDir(root).metrics, problems), n)
    return detect_aha(counts, source=f"metrics.jsonl (n={n} assumed per step)", **kwargs)
