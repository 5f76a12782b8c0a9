"""Reflection measured two ways (R1's words, Dr. GRPO's keywords), in traces, metrics, eval and readers."""

from __future__ import annotations

import json

import pytest
from helpers import trace_record

from ahazero.observe.behaviours import (
    DRGRPO_REFLECTION_PHRASES,
    describe,
    find_drgrpo_reflections,
    find_reflections,
    summarize,
)
from ahazero.observe.trace_store import step_metrics, summarize_records


@pytest.mark.parametrize("phrase", DRGRPO_REFLECTION_PHRASES)
def test_every_drgrpo_keyword_is_found_in_any_case(phrase):
    text = f"First 12 * 4 = 48. {phrase.upper()} the product: 48."
    assert find_drgrpo_reflections(text) == [phrase]


def test_drgrpo_keywords_match_word_starts_like_its_authors_count():
    assert find_drgrpo_reflections("Reconsidering... I rechecked it; I will go over  the steps") == [
        "reconsider", "recheck", "go over the steps"]
    # R1's everyday words are not in Dr. GRPO's pool, and a keyword inside a word does not count
    assert find_drgrpo_reflections("Wait, check: that is wrong. prerecheck") == []
    assert find_reflections("Wait, check: that is wrong.") == ["wait", "check", "wrong"]


def test_both_measures_look_at_the_thinking_only():
    b = describe("<think>12 * 4 = 48, let me recheck: 48</think><answer>48, wait, double-check</answer>")
    assert b.reflections == ["recheck"] and b.reflections_drgrpo == ["recheck"]
    truncated = describe("<think>12 * 4 = 48. Let me think again")
    assert truncated.thinking is None and truncated.reflections_drgrpo == ["think again"]


def test_summary_has_rates_and_reflective_accuracy_for_both_measures():
    texts = ["<think>wait, 2</think>2", "<think>recheck: 3</think>3", "<think>2</think>2", "<think>5</think>5"]
    m = summarize([describe(t) for t in texts], correct=[True, False, True, False])
    assert m["behaviour/reflection_rate"] == 0.5  # "wait" and "recheck" are both R1 words here
    assert m["behaviour/reflection_rate_drgrpo"] == 0.25
    assert m["behaviour/accuracy_reflective_drgrpo"] == 0.0
    assert m["behaviour/accuracy_non_reflective_drgrpo"] == pytest.approx(2 / 3)
    # nothing reflective: the reflective accuracy is unknown, not zero
    m = summarize([describe("<think>2</think>2")], correct=[True])
    assert m["behaviour/accuracy_reflective_drgrpo"] is None and m["behaviour/accuracy_non_reflective_drgrpo"] == 1.0


def test_traces_carry_the_keywords_and_old_traces_are_measured_from_their_text(tmp_path):
    new = trace_record(1, "a", "12 * 4 = 48, re-examine: ok</think><answer>48</answer>", correct=True, reward=1.0)
    assert new["reflections_drgrpo"] == ["re-examine"]
    old = trace_record(1, "b", "reconsider 9</think><answer>9</answer>", correct=False, reward=0.0)
    del old["reflections_drgrpo"]  # a trace file written before this measure existed
    m = summarize_records([new, old])
    assert m["behaviour/reflection_rate_drgrpo"] == 1.0
    assert m["behaviour/accuracy_reflective_drgrpo"] == 0.5
    (tmp_path / "traces").mkdir()
    (tmp_path / "traces" / "step-000001.jsonl").write_text("\n".join(json.dumps(r) for r in (new, old)) + "\n")
    assert step_metrics(tmp_path)[0]["behaviour/reflection_rate_drgrpo"] == 1.0


def test_viewer_summary_and_report_show_the_second_measure(tmp_path):
    import io

    from rich.console import Console

    from ahazero.observe.report import build_report
    from ahazero.observe.traces_view import render_summary

    console = Console(record=True, width=160, file=io.StringIO())
    console.print(render_summary([{"step": 1, "n": 4, "behaviour/reflection_rate": 0.5,
                                   "behaviour/reflection_rate_drgrpo": 0.25}]))
    text = console.export_text()
    assert "DrGRPO" in text and "25.0%" in text

    run = tmp_path / "run"
    (run / "eval").mkdir(parents=True)
    rows = [{"step": s, "reward": 0.5, "behaviour/reflection_rate": 0.2, "behaviour/reflection_rate_drgrpo": 0.1,
             "behaviour/accuracy_reflective_drgrpo": 0.3, "behaviour/accuracy_non_reflective_drgrpo": 0.4}
            for s in (1, 2)]
    (run / "metrics.jsonl").write_text("\n".join(map(json.dumps, rows)) + "\n")
    (run / "eval" / "base.json").write_text(json.dumps(
        {"tag": "base", "model": "m", "n": 10, "pass@1": 0.2, "reflection_rate": 0.3, "reflection_rate_drgrpo": 0.05}))
    html = build_report([run]).read_text()
    assert "Reflection rate, Dr. GRPO keywords" in html
    assert "reflective vs non-reflective completions, Dr. GRPO keywords" in html
    assert "Dr. GRPO's keywords: base model (greedy eval) 5.0%, training step 1 10.0%" in html
