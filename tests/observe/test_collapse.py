"""The collapse alarm on synthetic metric rows, and where it shows: `ahazero traces` and `ahazero report`."""

from __future__ import annotations

import argparse
import json
import random
from pathlib import Path

import pytest
import yaml
from helpers import trace_record
from rich.console import Console

from ahazero.config.schema import CollapseSettings
from ahazero.observe.collapse import check_collapse, collapse_from_run, first_alarms, settings_from_config
from ahazero.observe.trace_store import summarize_records
from ahazero.observe.traces_cli import add_parser
from ahazero.observe.tracing import TraceWriter


def binomial_rows(steps, *, accuracy, fmt, think=None, answer=9.0, n=128, seed=0):
    """Metric rows as training logs them: each step's rates drawn from n completions."""
    rng = random.Random(seed)
    rows = []
    for step in range(1, steps + 1):
        row = {"step": step, "reward": 0.0,
               "behaviour/accuracy": sum(rng.random() < accuracy(step) for _ in range(n)) / n,
               "behaviour/format_rate": sum(rng.random() < fmt(step) for _ in range(n)) / n}
        if think is not None:
            row["behaviour/think_tokens_closed_mean"] = think(step) * (1 + rng.uniform(-0.1, 0.1))
            row["behaviour/answer_tokens_closed_mean"] = answer
        rows.append(row)
    return rows


def test_the_gsm8k_format_collapse_is_caught():
    """Measured on GSM8K: format 33% -> 100%, sampled accuracy 5.5% at the start, 0-6% from step 30,
    thinking 153 -> 21 tokens with answers of about 9."""
    rows = binomial_rows(60, accuracy=lambda s: 0.055 if s <= 10 else 0.03,
                         fmt=lambda s: min(1.0, 0.33 + s * 0.05), think=lambda s: max(21.0, 150 - 5 * s))
    kinds = {a.kind: a for a in first_alarms(rows)}
    assert set(kinds) == {"format", "thinking"}
    assert 30 <= kinds["format"].step <= 45 and 30 <= kinds["thinking"].step <= 40
    assert "format collapse at step" in kinds["format"].message and "while accuracy fell" in kinds["format"].message


def test_the_default_recipe_shape_raises_nothing():
    """Arithmetic: format and accuracy both rise; thinking shortens 30 -> 18 tokens, twice the answer's 9."""
    rows = binomial_rows(60, accuracy=lambda s: min(0.65, 0.28 + s * 0.01), fmt=lambda s: min(1.0, 0.25 + s * 0.03),
                         think=lambda s: max(18.0, 30 - s * 0.4))
    assert first_alarms(rows) == []


def test_noise_at_a_low_flat_accuracy_rarely_raises_a_format_alarm():
    """Format learned, accuracy flat at 5%: a fall must be real (z >= 3), not the luck of the early steps."""
    alarms = [first_alarms(binomial_rows(100, accuracy=lambda s: 0.05, fmt=lambda s: min(1.0, 0.1 + s * 0.05),
                                         seed=seed)) for seed in range(20)]
    assert sum(bool(a) for a in alarms) <= 1


def test_format_alarm_needs_both_the_rise_and_the_fall():
    falling = binomial_rows(40, accuracy=lambda s: 0.3 if s <= 10 else 0.1, fmt=lambda s: 0.9)  # format was high
    assert check_collapse(falling) == []
    rising = binomial_rows(40, accuracy=lambda s: 0.3, fmt=lambda s: 0.2 if s <= 10 else 0.9)
    assert check_collapse(rising) == []
    both = binomial_rows(40, accuracy=lambda s: 0.3 if s <= 10 else 0.1, fmt=lambda s: 0.2 if s <= 10 else 0.9)
    assert [a.kind for a in check_collapse(both)] == ["format"]


def test_thinking_alarm_needs_a_halving_down_to_a_few_times_the_answer():
    long_answers = binomial_rows(40, accuracy=lambda s: 0.5, fmt=lambda s: 1.0,
                                 think=lambda s: 400 if s <= 10 else 150, answer=10.0)
    assert check_collapse(long_answers) == []  # halved, but still 15x the answer: terse reasoning, not collapse
    collapsed = binomial_rows(40, accuracy=lambda s: 0.5, fmt=lambda s: 1.0,
                              think=lambda s: 100 if s <= 10 else 25, answer=10.0)
    (alarm,) = check_collapse(collapsed)
    assert alarm.kind == "thinking" and "after </think>" in alarm.message
    assert " -> 25 tokens" in alarm.message or " -> 24 tokens" in alarm.message or " -> 26 tokens" in alarm.message
    old_run = [{k: v for k, v in r.items() if k != "behaviour/answer_tokens_closed_mean"} for r in collapsed]
    assert [a.kind for a in check_collapse(old_run)] == ["thinking"]  # no answer metric: the halving decides


def test_nothing_is_judged_before_baseline_plus_window_steps_and_settings_apply():
    rows = binomial_rows(40, accuracy=lambda s: 0.3 if s <= 10 else 0.05, fmt=lambda s: 0.2 if s <= 10 else 0.9)
    assert check_collapse(rows[:29]) == [] and check_collapse(rows[:30]) != []
    assert check_collapse(rows[:30], CollapseSettings(window=25)) == []
    assert check_collapse(rows, CollapseSettings(format_rise=0.8)) == []
    assert check_collapse([{"step": 1}] * 40) == []  # no metrics at all: silence, no error


def test_settings_come_from_the_runs_config():
    assert settings_from_config({"collapse": {"window": 3, "min_z": 1.0}}) == CollapseSettings(window=3, min_z=1.0)
    assert CollapseSettings().model_dump() == {"baseline_steps": 10, "window": 20, "format_rise": 0.2,
                                               "accuracy_drop": 0.25, "min_z": 3.0, "think_drop": 0.5,
                                               "think_answer_ratio": 4.0}  # the numbers docs/reliability.md states
    assert settings_from_config({"collapse": {"window": "many"}}) == CollapseSettings()
    assert settings_from_config({}) == CollapseSettings()


def collapsed_run(root: Path, *, with_metrics: bool = True) -> Path:
    """Steps 1-5: 3 of 16 formatted with long thinking, 25% correct; then all formatted, thinking 'guess', ~3%.

    Its config asks for a 5-step early level and a 10-step window, so the alarm holds at step 15."""
    writer = TraceWriter(root / "traces")
    rows = []
    for step in range(1, 21):
        records = []
        for i in range(16):
            if step <= 5:
                text = "working it out step by step " * 8 + "</think><answer>4</answer>" if i < 3 else "no format"
                correct = i < 4
            else:
                text, correct = "guess</think><answer>4</answer>", i == 0 and step % 2 == 0
            record = trace_record(step, f"p{step}-{i}", text, correct=correct, reward=0.0)
            record["formatted"] = "</think>" in text
            records.append(record)
        writer.write(step, records)
        rows.append({"step": step, "reward": 0.1, **summarize_records(records)})
    if with_metrics:
        (root / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (root / "config.yaml").write_text(yaml.safe_dump({"name": root.name,
                                                      "collapse": {"baseline_steps": 5, "window": 10}}))
    return root


def traces_view(run: Path, *argv: str) -> str:
    parser = argparse.ArgumentParser(prog="ahazero")
    add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["traces", str(run), *argv])
    console = Console(record=True, width=250, force_terminal=False, color_system=None)
    assert args.func(args, console=console) == 0
    return console.export_text()


def test_traces_shows_the_alarm_first(tmp_path):
    run = collapsed_run(tmp_path / "gsm")
    text = traces_view(run)
    assert text.startswith("collapse: format collapse at step 15")
    assert text.splitlines()[1].startswith("collapse: thinking collapse at step 15")
    assert traces_view(run, "--last").startswith("collapse: format collapse")
    assert "collapse" not in traces_view(run, "--last", "--json")


def test_runs_without_metrics_are_judged_from_their_traces(tmp_path):
    run = collapsed_run(tmp_path / "traces-only", with_metrics=False)
    assert [a.kind for a in collapse_from_run(run)] == []  # the reader passes the rebuilt rows
    assert traces_view(run).startswith("collapse: format collapse at step 15")


def test_report_shows_the_alarm_at_the_top(tmp_path):
    pytest.importorskip("matplotlib")
    from ahazero.observe.report import build_report

    html = build_report([collapsed_run(tmp_path / "gsm")]).read_text()
    alarm = html.index("format collapse at step 15")
    assert html.index("<h2>Collapse alarm</h2>") < alarm < html.index("Did reflection rise?")
