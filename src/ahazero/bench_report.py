"""What ``ahazero bench`` reports: per-case summaries, comparisons against ``hf``, the % of the GPU's peak, the tables.

A case's per-step records (wall time, the generation/reward split, decode counts, the
update's time and tokens, peak memory, reward means) become one summary
(:func:`summarize_case`); :func:`compare_cases` adds the speed-up over the ``hf`` case of the
same batch and whether the reward moved; :func:`add_peak_shares` puts the decode step's
bandwidth and FLOP rate, and the update's FLOP rate (MFU), against the device's peaks
(:mod:`ahazero.bench_roofline`); :func:`print_table` prints one row per case and
:func:`print_update_table` one row per update variant (``--update-variants``).

Example:
    >>> steps = [{"step_seconds": 2.0, "generation_seconds": 1.5, "reward_seconds": 0.1,
    ...           "generated_tokens": 3000, "decode_seconds": 1.2, "decode_steps": 300,
    ...           "decode_rows": 38400, "decode_kv_positions": 38400 * 640}] * 2
    >>> facts = {"weight_bytes": 1e9, "matmul_parameters": 5e8, "kv_bytes_per_position": 12288,
    ...          "attention_flops_per_position": 86016}
    >>> s = summarize_case(steps, warmup=1, completions_per_step=128, facts=facts)
    >>> s["completions_per_second"], s["decode_step_ms"], s["decode_rows_per_step"], s["decode_timing"]
    (64.0, 4.0, 128.0, 'measured')
"""

from __future__ import annotations

import math
import statistics
import sys
from typing import Any

from ahazero.bench_roofline import percent_of_peak
from ahazero.bench_update import update_rates
from ahazero.rollout.decode_cost import decode_rates

__all__ = ["add_peak_shares", "compare_cases", "print_table", "print_update_table", "summarize_case"]

#: Per-step counts summed into the decode figures.
_DECODE_KEYS = ("decode_seconds", "decode_steps", "decode_rows", "decode_kv_positions", "prefill_seconds",
                "prefill_rows", "rows", "decode_estimated", "compactions")


def summarize_case(steps: list[dict[str, Any]], warmup: int, completions_per_step: int,
                   facts: dict[str, float] | None = None) -> dict[str, Any]:
    """Aggregate per-step records (warm-up steps excluded) into the numbers the table shows.

    With the model's ``facts`` (:func:`~ahazero.rollout.decode_cost.model_facts`) and decode
    counts in the records, it adds the decode step's time, rows, TB/s and TFLOP/s.

    Example:
        >>> steps = [{"step_seconds": 9.0, "generation_seconds": 8.0, "reward_seconds": 0.1,
        ...           "generated_tokens": 800, "reward": 0.5, "peak_reserved_gib": 3.0}] * 3
        >>> s = summarize_case(steps, warmup=1, completions_per_step=128)
        >>> s["tokens_per_second"], s["generation_share"], s["decode_step_ms"]
        (100.0, 0.889, None)
    """
    measured = steps[warmup:] or steps
    n = len(measured)
    gen = sum(s.get("generation_seconds", 0.0) for s in measured)
    rew = sum(s.get("reward_seconds", 0.0) for s in measured)
    total = sum(s.get("step_seconds", 0.0) for s in measured)
    tokens = sum(s.get("generated_tokens", 0.0) for s in measured)
    out: dict[str, Any] = {
        "measured_steps": n,
        "tokens_per_second": round(tokens / gen, 1) if gen else None,
        "completions_per_second": round(n * completions_per_step / total, 1) if total else None,
        "mean_completion_tokens": round(tokens / (n * completions_per_step), 1),
        "step_seconds": round(total / n, 3) if measured else None,
        "generation_seconds": round(gen / n, 3) if measured else None,
        "reward_seconds": round(rew / n, 4) if measured else None,
        "generation_share": round(gen / total, 3) if total else None,
        "reward_share": round(rew / total, 4) if total else None,
        "update_share": round(max(total - gen - rew, 0.0) / total, 3) if total else None,
        "warmup_step_seconds": [round(s.get("step_seconds", 0.0), 2) for s in steps[:warmup]],
        "warmup_generation_seconds": [round(s.get("generation_seconds", 0.0), 2) for s in steps[:warmup]],
    }
    out.update(_decode_summary(measured, facts))
    out.update(_update_summary(measured, facts))
    for key in ("peak_allocated_gib", "peak_reserved_gib"):
        values = [s[key] for s in steps if s.get(key) is not None]
        out[key] = round(max(values), 2) if values else None
    reward_keys = sorted({k for s in measured for k in s if k == "reward" or k.startswith("rewards/")})
    for key in reward_keys:
        values = [s[key] for s in measured if s.get(key) is not None]
        out[key] = round(statistics.fmean(values), 4) if values else None
    return out


def _decode_summary(measured: list[dict[str, Any]], facts: dict[str, float] | None) -> dict[str, Any]:
    sums = {key: sum(s.get(key, 0.0) for s in measured) for key in _DECODE_KEYS}
    rates = decode_rates(sums, facts or {}) if sums["decode_steps"] else None
    timing = None if not sums["decode_steps"] else "estimated" if sums["decode_estimated"] else "measured"
    n = len(measured) or 1
    return {
        "decode_timing": timing,
        "decode_step_ms": rates["step_ms"] if rates else None,
        "decode_rows_per_step": rates["rows_per_step"] if rates else None,
        "decode_tbps": _significant(rates["tbps"]) if rates else None,
        "decode_tflops": _significant(rates["tflops"]) if rates else None,
        "decode_steps_per_step": round(sums["decode_steps"] / n, 1) if sums["decode_steps"] else None,
        "prefill_seconds": round(sums["prefill_seconds"] / n, 4) if sums["prefill_seconds"] else None,
        "prefill_rows_per_row": round(sums["prefill_rows"] / sums["rows"], 4) if sums["rows"] else None,
        "compactions_per_step": round(sums["compactions"] / n, 2) if timing == "measured" else None,
    }


#: Per-step update counts summed into the update figures.
_UPDATE_KEYS = ("update_seconds", "update_forward_seconds", "update_tokens", "update_real_tokens", "update_loss_tokens",
                "logprob_seconds", "optimizer_seconds")


def _update_summary(measured: list[dict[str, Any]], facts: dict[str, float] | None) -> dict[str, Any]:
    """The update's mean time per step (forward and backward apart), tokens, padding share and rates."""
    sums = {key: sum(s.get(key, 0.0) for s in measured) for key in _UPDATE_KEYS}
    n = len(measured) or 1
    timed = sums["update_seconds"] > 0
    per_step = lambda key, digits=3: round(sums[key] / n, digits) if timed else None  # noqa: E731
    out: dict[str, Any] = {
        "update_seconds": per_step("update_seconds"),
        "update_forward_seconds": per_step("update_forward_seconds"),
        "update_backward_seconds": round((sums["update_seconds"] - sums["update_forward_seconds"]) / n, 3)
        if timed else None,
        "update_tokens": per_step("update_tokens", 1),
        "update_loss_tokens": per_step("update_loss_tokens", 1),
        "update_padding_share": round(1 - sums["update_real_tokens"] / sums["update_tokens"], 4)
        if sums["update_tokens"] else None,
        "logprob_seconds": round(sums["logprob_seconds"] / n, 3) if sums["logprob_seconds"] else None,
        "optimizer_seconds": round(sums["optimizer_seconds"] / n, 4) if sums["optimizer_seconds"] else None,
    }
    out.update(update_rates(sums, facts))
    return out


def _significant(value: float, digits: int = 4) -> float:
    """``value`` to ``digits`` significant digits (TB/s of a tiny CPU run and of an H200 alike)."""
    return float(f"{value:.{digits}g}")


def add_peak_shares(results: list[dict[str, Any]], peaks: dict[str, Any]) -> None:
    """Add each case's decode bandwidth and FLOP rate, and its update's (MFU), as a % of the device's peaks.

    None where a peak or a rate is unknown.

    Example:
        >>> r = [{"status": "ok", "summary": {"decode_tbps": 1.2, "decode_tflops": 99.0, "update_tflops": 297.0}}]
        >>> add_peak_shares(r, {"peak_tbps": 4.8, "peak_tflops": 990.0})
        >>> s = r[0]["summary"]
        >>> s["decode_bandwidth_pct"], s["decode_flops_pct"], s["update_mfu_pct"]
        (25.0, 10.0, 30.0)
    """
    for r in results:
        if r.get("status") != "ok":
            continue
        s = r["summary"]
        s["decode_bandwidth_pct"] = percent_of_peak(s.get("decode_tbps"), peaks.get("peak_tbps"))
        s["decode_flops_pct"] = percent_of_peak(s.get("decode_tflops"), peaks.get("peak_tflops"))
        for summary in (s, *r.get("update_variants", {}).values()):
            summary["update_mfu_pct"] = percent_of_peak(summary.get("update_tflops"), peaks.get("peak_tflops"))


def compare_cases(results: list[dict[str, Any]], completions_per_step: int | None = None) -> None:
    """Speed-up over the ``hf`` case of the same batch and whether the first reward's mean moved beyond noise.

    Example:
        >>> r = [{"status": "ok", "resolved_backend": "hf", "batch": 8, "summary": {"tokens_per_second": 10.0}},
        ...      {"status": "ok", "resolved_backend": "graph", "batch": 8, "summary": {"tokens_per_second": 55.0}}]
        >>> compare_cases(r)
        >>> r[1]["summary"]["speedup_vs_hf"]
        5.5
    """
    bases: dict[Any, dict[str, Any]] = {}
    for r in results:
        if r["status"] == "ok" and r.get("resolved_backend") == "hf":
            bases.setdefault(r.get("batch"), r)
    for r in results:
        base = bases.get(r.get("batch"))
        if base is None or r["status"] != "ok":
            continue
        b, s = base["summary"], r["summary"]
        per_step = r.get("batch") or completions_per_step or 0
        if b.get("tokens_per_second") and s.get("tokens_per_second"):
            s["speedup_vs_hf"] = round(s["tokens_per_second"] / b["tokens_per_second"], 2)
        first = next((k for k in s if k.startswith("rewards/")), None)
        if first and s.get(first) is not None and b.get(first) is not None:
            s["reward_delta_vs_hf"] = round(s[first] - b[first], 4)
            s["reward_checked"] = first
            s["reward_delta_se"] = _se_of_difference(s[first], b[first], s["measured_steps"] * per_step,
                                                     b["measured_steps"] * per_step)


def _se_of_difference(p1: float, p2: float, n1: int, n2: int) -> float | None:
    """Standard error of a difference of two reward means in [0, 1] (binomial bound)."""
    if n1 < 1 or n2 < 1:
        return None
    var = lambda p: max(min(p, 1.0), 0.0) * (1 - max(min(p, 1.0), 0.0))  # noqa: E731
    return round(math.sqrt(var(p1) / n1 + var(p2) / n2), 4)


def _fmt(value: Any, pct: Any = None) -> str:
    if value is None:
        return "-"
    text = f"{value:,}" if isinstance(value, int | float) else str(value)
    return f"{text} ({pct}%)" if pct is not None else text


def _with(value: Any, part: Any) -> str:
    """``value (part)``: a figure and one of its parts."""
    return "-" if value is None else f"{_fmt(value)} ({_fmt(part)})"


def print_table(report: dict[str, Any]) -> None:
    """One row per case: throughput, step split, the decode step against the peaks, memory, reward."""
    from rich.console import Console
    from rich.table import Table

    s, machine = report["settings"], report["machine"]
    batches = sorted({r.get("batch") for r in report["cases"] if r.get("batch")})
    shape = (f"{'/'.join(str(b) for b in batches)} completions ({s['generations']} per prompt)" if batches
             else f"{s['prompts']} prompts x {s['generations']} completions")
    peaks = (f"; peaks {machine.get('peak_tbps')} TB/s, {machine.get('peak_tflops')} TFLOP/s"
             if machine.get("peak_tbps") or machine.get("peak_tflops") else "")
    table = Table(title=f"rollouts: {shape} x {s['max_tokens']} max tokens, {s['steps']} measured steps "
                        f"({machine['device']}{peaks})")
    for col in ("case", "backend", "batch", "tok/s", "speed-up", "compl/s", "step s", "gen %", "update %",
                "decode ms/step (rows)", "TB/s (% peak)", "TFLOP/s (% peak)", "update s (fwd)",
                "update tok/s (MFU %)", "pad %", "peak GiB (alloc/reserved)", "reward mean", "status"):
        table.add_column(col)
    for r in report["cases"]:
        if r["status"] != "ok":
            table.add_row(r["case"], r.get("backend", ""), _fmt(r.get("batch")), *[""] * 14, r["status"])
            continue
        m = r["summary"]
        pct = lambda x: f"{100 * x:.1f}" if x is not None else "-"  # noqa: E731
        peak = (f"{m['peak_allocated_gib']}/{m['peak_reserved_gib']}" if m.get("peak_reserved_gib") is not None
                else "-")
        decode = "-"
        if m.get("decode_step_ms") is not None:
            decode = f"{m['decode_step_ms']} ({m['decode_rows_per_step']:g})"
            decode += " est." if m.get("decode_timing") == "estimated" else ""
        table.add_row(r["case"], r.get("resolved_backend", ""), _fmt(r.get("batch")), _fmt(m["tokens_per_second"]),
                      _fmt(m.get("speedup_vs_hf")), _fmt(m.get("completions_per_second")), _fmt(m["step_seconds"]),
                      pct(m["generation_share"]), pct(m["update_share"]), decode,
                      _fmt(m.get("decode_tbps"), m.get("decode_bandwidth_pct")),
                      _fmt(m.get("decode_tflops"), m.get("decode_flops_pct")),
                      _with(m.get("update_seconds"), m.get("update_forward_seconds")),
                      _fmt(m.get("update_tokens_per_second"), m.get("update_mfu_pct")),
                      pct(m.get("update_padding_share")), peak, _fmt(m.get("reward")), "ok")
    Console(width=None if sys.stdout.isatty() else 320).print(table)


def print_update_table(report: dict[str, Any]) -> None:
    """One row per case and update variant (``--update-variants``); nothing when none was measured.

    Example:
        >>> print_update_table({"settings": {}, "machine": {"device": "cpu"}, "cases": []})
    """
    from rich.console import Console
    from rich.table import Table

    cases = [r for r in report["cases"] if r.get("update_variants")]
    if not cases:
        return
    table = Table(title=f"the update, each variant on the same completions before every step's update "
                        f"({report['machine']['device']}; speed-up and gradient difference against the first)")
    for col in ("case", "variant", "update s (fwd / bwd)", "tokens / step (scored)", "tok/s", "scored tok/s",
                "pad %", "TFLOP/s (MFU %)", "peak GiB", "speed-up", "grad diff", "status"):
        table.add_column(col)
    pct = lambda x: f"{100 * x:.1f}" if x is not None else "-"  # noqa: E731
    for r in cases:
        for name, v in r["update_variants"].items():
            if v.get("status") != "ok":
                table.add_row(r["case"], name, *[""] * 9, v.get("status", "-"))
                continue
            table.add_row(r["case"], name,
                          f"{v['update_seconds']} ({v['update_forward_seconds']} / {v['update_backward_seconds']})",
                          f"{v['update_tokens']:,.0f} ({v['update_loss_tokens']:,.0f})",
                          _fmt(v.get("update_tokens_per_second")), _fmt(v.get("update_loss_tokens_per_second")),
                          pct(v.get("update_padding_share")), _fmt(v.get("update_tflops"), v.get("update_mfu_pct")),
                          _fmt(v.get("peak_allocated_gib")), _fmt(v.get("speedup")), _fmt(v.get("grad_rel_diff")),
                          "ok")
    Console(width=None if sys.stdout.isatty() else 320).print(table)
