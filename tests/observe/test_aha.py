"""The aha statistic: a planted rise is found near its step; flat, noisy and spiky runs give none."""

from __future__ import annotations

import json
import math
import random
from pathlib import Path

import pytest

from ahazero.observe.aha import (
    DEFINITION,
    aha_from_run,
    counts_from_metrics,
    detect_aha,
    dispersion,
    format_p,
    one_sided_z_test,
)
from ahazero.observe.tracing import TraceWriter

STEPS = 60
N = 32  # completions traced per step


def _binomial(rng: random.Random, n: int, p: float) -> int:
    return sum(rng.random() < p for _ in range(n))


def write_run(root: Path, rate_at, *, seed: int, n: int = N, steps: int = STEPS) -> Path:
    """A synthetic run: trace files whose completions reflect with probability rate_at(rng, step)."""
    rng = random.Random(seed)
    writer = TraceWriter(root / "traces")
    for step in range(1, steps + 1):
        k = _binomial(rng, n, rate_at(rng, step))
        records = [{"step": step, "prompt_id": f"s{step}-{i}",
                    "reflections": ["wait"] if i < k else [], "completion": "..."} for i in range(n)]
        writer.write(step, records)
    return root


def counts(rate_at, *, seed: int, n: int = N, steps: int = STEPS) -> list[tuple[int, int, int]]:
    rng = random.Random(seed)
    return [(s, n, _binomial(rng, n, rate_at(rng, s))) for s in range(1, steps + 1)]


def test_z_test_matches_the_textbook_formula():
    z, p = one_sided_z_test(40, 100, 10, 100)
    pooled = 50 / 200
    assert z == pytest.approx(0.3 / math.sqrt(pooled * (1 - pooled) * (2 / 100)))
    assert p == pytest.approx(0.5 * math.erfc(z / math.sqrt(2)))
    assert one_sided_z_test(10, 100, 40, 100)[1] > 0.99  # a fall is not a rise
    assert one_sided_z_test(0, 10, 0, 10) == (0.0, 0.5)
    assert one_sided_z_test(3, 10, 0, 10)[0] > 0


def test_dispersion_and_p_formatting():
    assert dispersion([(1, 100, 10), (2, 100, 10), (3, 100, 10)], 0.1) == 1.0
    assert dispersion([(1, 100, 0), (2, 100, 20)], 0.1) > 10
    assert format_p(0.01234) == "0.012" and format_p(1e-20) == "< 1e-12"


def test_planted_rise_in_trace_files_is_found_at_the_right_step(tmp_path):
    run = write_run(tmp_path / "rise", lambda rng, s: 0.05 if s < 35 else 0.45, seed=1)
    result = aha_from_run(run)
    assert result.source == "traces"
    assert result.aha_step is not None and 33 <= result.aha_step <= 36
    assert result.baseline_steps == (1, 6) and result.baseline_n == 6 * N
    assert result.baseline_rate < 0.15
    assert result.reported.rate > 0.3 and result.p_adjusted < 0.01
    assert result.verdict.startswith(f"reflection rises significantly at step {result.aha_step}")
    assert "stays elevated" in result.verdict


@pytest.mark.parametrize("seed", range(12))
def test_planted_rise_is_found_near_its_step_for_many_seeds(seed):
    result = detect_aha(counts(lambda rng, s: 0.05 if s < 35 else 0.45, seed=seed))
    assert result.aha_step is not None and 32 <= result.aha_step <= 36


def test_smaller_later_rise_on_a_reflective_baseline():
    """A base model that already 'reflects' 20% of the time: the rise is measured from there."""
    result = detect_aha(counts(lambda rng, s: 0.2 if s < 40 else 0.5, seed=3))
    assert result.baseline_rate == pytest.approx(0.2, abs=0.07)
    assert 37 <= result.aha_step <= 41


def test_flat_run_gives_none(tmp_path):
    run = write_run(tmp_path / "flat", lambda rng, s: 0.05, seed=2)
    result = aha_from_run(run)
    assert result.aha_step is None
    assert result.verdict.startswith("no significant rise in reflection over 60 steps (baseline ")
    assert result.n_tests == STEPS - 6 - 5 + 1


@pytest.mark.parametrize("seed", range(10))
def test_noisy_flat_runs_give_none(seed):
    """The rate itself wanders from step to step (other prompts each step), around a flat level."""
    assert detect_aha(counts(lambda rng, s: rng.uniform(0.02, 0.25), seed=seed)).aha_step is None
    assert detect_aha(counts(lambda rng, s: 0.3, seed=seed)).aha_step is None


@pytest.mark.parametrize("seed", range(10))
def test_a_brief_spike_gives_none(seed):
    one = detect_aha(counts(lambda rng, s: 0.9 if s == 30 else 0.05, seed=seed))
    two = detect_aha(counts(lambda rng, s: 0.9 if s in (30, 31) else 0.05, seed=seed))
    assert one.aha_step is None and two.aha_step is None


def test_a_burst_that_fades_is_called_not_sustained(tmp_path):
    run = write_run(tmp_path / "burst", lambda rng, s: 0.6 if 30 <= s < 34 else 0.05, seed=4)
    result = aha_from_run(run)
    assert result.aha_step is None
    assert result.verdict.startswith("no sustained rise in reflection")
    assert "did not stay elevated" in result.verdict


def test_falling_reflection_is_no_rise():
    result = detect_aha(counts(lambda rng, s: 0.3 if s < 10 else 0.02, seed=5))
    assert result.aha_step is None and "last 5 steps" in result.verdict


def test_too_few_steps_and_no_data():
    short = detect_aha([(s, 16, 1) for s in range(1, 8)])
    assert short.aha_step is None and short.verdict.startswith("too few steps")
    assert "13 needed" in short.verdict  # K = 3 baseline steps + 2W = 10
    empty = detect_aha([])
    assert empty.aha_step is None and empty.baseline_rate is None and "no reflection data" in empty.verdict


def test_steps_without_completions_are_ignored():
    data = counts(lambda rng, s: 0.05 if s < 35 else 0.45, seed=6) + [(100, 0, 0)]
    result = detect_aha(data)
    assert result.n_steps == STEPS and result.aha_step is not None


def test_metrics_fallback_with_assumed_n(tmp_path):
    """Without traces, metrics.jsonl's reflection rate and the config's batch give the counts."""
    run = tmp_path / "m"
    run.mkdir()
    rng = random.Random(7)
    lines = [json.dumps({"step": s, "reward": 0.5,
                         "behaviour/reflection_rate": _binomial(rng, 64, 0.05 if s < 30 else 0.4) / 64})
             for s in range(1, 51)]
    lines.append(json.dumps({"step": 50, "train_runtime": 12.0}))
    (run / "metrics.jsonl").write_text("\n".join(lines) + "\n")
    (run / "config.yaml").write_text("grpo:\n  per_device_train_batch_size: 16\n  gradient_accumulation_steps: 4\n")
    result = aha_from_run(run)
    assert result.source == "metrics.jsonl (n=64 assumed per step)"
    assert 28 <= result.aha_step <= 31
    assert aha_from_run(run, assumed_n=8).source.endswith("(n=8 assumed per step)")


def test_counts_from_metrics_skips_rows_without_a_rate():
    rows = [{"step": 1, "behaviour/reflection_rate": 0.5}, {"step": 2, "train_runtime": 3.0},
            {"step": 3, "behaviour/reflection_rate": None}]
    assert [tuple(c) for c in counts_from_metrics(rows, 10)] == [(1, 10, 5)]


def test_summary_and_definition():
    result = detect_aha(counts(lambda rng, s: 0.05 if s < 35 else 0.45, seed=8))
    s = result.summary()
    assert s["aha_step"] == result.aha_step and s["window_start"] == result.aha_step
    assert s["p_adjusted"] == result.p_adjusted and s["n_tests"] == result.n_tests
    assert [step for step, _ in result.rates()] == list(range(1, STEPS + 1))
    assert "Bonferroni" in DEFINITION and "overdispersion" in DEFINITION
