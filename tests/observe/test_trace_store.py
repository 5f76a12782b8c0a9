"""trace_store: reading traces of finished and in-progress runs, filtering, sorting, summarising."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from helpers import trace_record

from ahazero.observe.behaviours import describe
from ahazero.observe.trace_store import (
    filter_traces,
    full_text,
    group_by_step,
    iter_traces,
    load_traces,
    read_trace_file,
    reflection_counts,
    sort_traces,
    step_metrics,
    steps_with_traces,
    summarize_records,
    to_dataframe,
    traces_dir,
)
from ahazero.observe.tracing import TraceWriter, build_records


def _record(step: int, i: int, *, text: str, correct: bool, reward: float, truncated: bool = False) -> dict:
    return trace_record(step, f"p{i}", text, correct=correct, reward=reward, truncated=truncated,
                        problem=f"Compute {i}")


@pytest.fixture
def run(tmp_path: Path) -> Path:
    root = tmp_path / "run"
    writer = TraceWriter(root / "traces")
    writer.write(1, [
        _record(1, 0, text="2+2 is 4</think><answer>4</answer>", correct=True, reward=1.5),
        _record(1, 1, text="2+2 is 5, wait, let me check: 4</think><answer>4</answer>", correct=True, reward=1.5),
        _record(1, 2, text="so many words here to think about the sum</think><answer>5</answer>",
                correct=False, reward=0.5),
    ])
    writer.write(2, [
        _record(2, 3, text="hmm hmm hmm hmm hmm hmm hmm hmm hmm hmm hmm hmm", correct=False, reward=0.0,
                truncated=True),
        _record(2, 4, text="verify: 4</think><answer>4</answer>", correct=True, reward=1.5),
    ])
    return root


def test_load_all_steps_in_order(run):
    records = load_traces(run)
    assert [r["step"] for r in records] == [1, 1, 1, 2, 2]
    assert [r["prompt_id"] for r in records] == ["p0", "p1", "p2", "p3", "p4"]
    assert steps_with_traces(run) == [1, 2]
    # The traces folder itself is accepted too.
    assert traces_dir(run / "traces") == run / "traces"
    assert len(load_traces(run / "traces")) == 5


def test_load_selected_steps_and_missing_steps(run):
    assert [r["prompt_id"] for r in load_traces(run, steps=[2, 7])] == ["p3", "p4"]
    assert load_traces(run, steps=[]) == []


def test_in_progress_run_torn_line_and_tmp_file_are_tolerated(run):
    folder = run / "traces"
    # A step being written right now (the writer's temp file) is not read...
    (folder / ".step-000003.tmp").write_text(json.dumps({"step": 3, "prompt_id": "half"}) + "\n")
    # ...and a torn last line, a non-object line and garbage are skipped.
    with (folder / "step-000002.jsonl").open("a", encoding="utf-8") as fh:
        fh.write("[1, 2]\nnot json at all\n" + '{"step": 2, "prompt_id": "torn", "rew')
    records = load_traces(run)
    assert steps_with_traces(run) == [1, 2]
    assert [r["prompt_id"] for r in records] == ["p0", "p1", "p2", "p3", "p4"]
    assert read_trace_file(folder / "step-000099.jsonl") == []


def test_record_without_step_gets_its_files_step(tmp_path):
    (tmp_path / "step-000007.jsonl").write_text('{"prompt_id": "x"}\n')
    assert [r["step"] for r in iter_traces(tmp_path)] == [7]


def test_filters(run):
    records = load_traces(run)
    ids = lambda rs: [r["prompt_id"] for r in rs]  # noqa: E731
    assert ids(filter_traces(records, correct=True)) == ["p0", "p1", "p4"]
    assert ids(filter_traces(records, correct=False)) == ["p2", "p3"]
    assert ids(filter_traces(records, reflective=True)) == ["p1", "p4"]
    assert ids(filter_traces(records, reflective=False)) == ["p0", "p2", "p3"]
    assert ids(filter_traces(records, truncated=True)) == ["p3"]
    assert ids(filter_traces(records, min_reward=1.0)) == ["p0", "p1", "p4"]
    assert ids(filter_traces(records, max_reward=0.5)) == ["p2", "p3"]
    assert ids(filter_traces(records, min_reward=0.1, max_reward=0.9)) == ["p2"]
    assert ids(filter_traces(records, search="LET ME CHECK")) == ["p1"]
    assert ids(filter_traces(records, search="compute 3")) == ["p3"]  # the problem is searched too
    assert ids(filter_traces(records, correct=True, reflective=True, min_reward=1.5)) == ["p1", "p4"]
    assert ids(filter_traces(records, prompt_id="p2")) == ["p2"]


def test_flags_that_are_none_never_match(run):
    records = [{"correct": None, "reward": None, "reflections": []}]
    assert filter_traces(records, correct=True) == []
    assert filter_traces(records, correct=False) == []
    assert filter_traces(records, min_reward=0.0) == []
    assert len(filter_traces(records)) == 1


def test_sort(run):
    records = load_traces(run)
    by_thinking = sort_traces(records, "thinking")
    assert by_thinking[0]["prompt_id"] == "p3"  # the truncated ramble
    assert [r["thinking_tokens"] for r in by_thinking] == sorted((r["thinking_tokens"] for r in records),
                                                                 reverse=True)
    by_reward = sort_traces(records, "reward", descending=False)
    assert by_reward[0]["prompt_id"] == "p3" and by_reward[-1]["reward"] == 1.5
    by_length = sort_traces(records, "length")
    assert by_length[0]["completion_tokens"] == max(r["completion_tokens"] for r in records)
    with pytest.raises(ValueError, match="unknown sort key"):
        sort_traces(records, "nope")


def test_summaries_match_the_training_metrics(run):
    """summarize_records reuses behaviours.summarize, so its numbers equal what training logs."""
    step1 = load_traces(run, steps=[1])
    m = summarize_records(step1)
    assert m["n"] == 3
    assert m["behaviour/reflection_rate"] == pytest.approx(1 / 3)
    assert m["behaviour/accuracy"] == pytest.approx(2 / 3)
    assert m["behaviour/format_rate"] == 1.0
    rows = step_metrics(run)
    assert [r["step"] for r in rows] == [1, 2]
    assert rows[1]["behaviour/truncation_rate"] == 0.5
    assert rows[0]["reward"] == pytest.approx((1.5 + 1.5 + 0.5) / 3)
    assert rows[0]["rewards/accuracy/mean"] == pytest.approx(2 / 3)


def test_summary_equals_trace_writer_metrics(tmp_path):
    """What TraceWriter.observe logs for a step equals what the store rebuilds from its file."""
    writer = TraceWriter(tmp_path / "traces")
    rows = [{"id": f"q{i}", "prompt": "p", "answer": "4", "prefill": "<think>"} for i in range(4)]
    completions = ["wait, 4</think><answer>4</answer>", "5</think><answer>5</answer>", "4", "check 4</think>4"]
    metrics = writer.observe(step=3, rows=rows, completions=completions,
                             rewards={"accuracy": [1.0, 0.0, None, 1.0], "think_format": [1.0, 1.0, 0.0, 1.0]},
                             weights=[1.0, 0.5], advantages=[0.1, -0.1, 0.0, 0.2], completion_tokens=[6, 5, 1, 4],
                             truncated=[False, False, True, False])
    rebuilt = step_metrics(tmp_path)[0]
    for key, value in metrics.items():
        assert rebuilt[key] == pytest.approx(value), key


def test_reflection_counts(run):
    counts = reflection_counts(run)
    assert [(c.step, c.n, c.reflective) for c in counts] == [(1, 3, 1), (2, 2, 1)]


def test_group_and_full_text(run):
    groups = group_by_step(load_traces(run))
    assert list(groups) == [1, 2] and len(groups[1]) == 3
    assert full_text(groups[1][0]).startswith("<think>2+2 is 4</think>")


def test_dataframe(run):
    pytest.importorskip("pandas")
    df = to_dataframe(load_traces(run))
    assert len(df) == 5
    assert list(df["reward/accuracy"]) == [1.0, 1.0, 0.0, 0.0, 1.0]
    assert list(df["reflective"]) == [False, True, False, False, True]
    assert df.groupby("step")["reflective"].mean().to_dict() == {1: pytest.approx(1 / 3), 2: 0.5}


def test_build_records_round_trip(tmp_path):
    """Records as tracing builds them load back unchanged."""
    b = describe("<think>ok</think><answer>4</answer>")
    recs = build_records(step=1, rows=[{"id": "a", "prompt": "p", "answer": "4", "prefill": "<think>"}],
                         completions=["ok</think><answer>4</answer>"], rewards={"accuracy": [1.0]}, weights=[1.0],
                         advantages=[0.0], completion_tokens=[9], truncated=[False], behaviours=[b])
    TraceWriter(tmp_path / "traces").write(1, recs)
    assert load_traces(tmp_path) == recs
