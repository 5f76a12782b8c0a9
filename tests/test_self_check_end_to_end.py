"""The self-check measure where it appears: traces and metrics of a run, eval, `ahazero behaviours`,
`ahazero traces --revised/--checked`, the report's panel and the sweep summary (tiny model, offline)."""

from __future__ import annotations

import argparse
import io
import json

import pytest
from helpers import base_config
from rich.console import Console

from ahazero.cli import main
from ahazero.config.schema import validate_dict
from ahazero.config.validate import check_config
from ahazero.evaluate import EvalSettings, evaluate
from ahazero.observe.rundir import read_metrics
from ahazero.observe.self_check import SELF_CHECK_KEYS
from ahazero.observe.trace_store import filter_traces, load_traces, summarize_records
from ahazero.observe.traces_cli import add_parser, run_traces
from ahazero.observe.tracing import TraceWriter
from rewards import get_reward

METRIC_KEYS = {f"behaviour/{k}" for k in SELF_CHECK_KEYS if k != "n"}
#: The rates over all completions of a step, never None (shares of nothing are left out of metrics.jsonl).
RATE_KEYS = {f"behaviour/{k}" for k in ("revision_rate", "wrong_to_right_rate", "right_to_wrong_rate",
                                         "net_corrections_per_100", "check_rate", "caught_error_rate")}


def reflective_texts(golds: list[str]) -> list[str]:
    """A caught slip, a right answer talked into a wrong one, a clean check and an unchecked control."""
    g = [int(x) for x in golds]
    return [
        f"So the answer is {g[0] + 1}.\nLet me check: {g[0] + 1} - 0 = {g[0] + 1}, which is wrong.\n"
        f"Wait, so the answer is {g[0]}.\nLet me check: {g[0]} + 0 = {g[0]}. Correct.\n</think>\n<answer>{g[0]}</answer>",
        f"So the answer is {g[1]}.\nLet me check: {g[1]} + 0 = {g[1]}. That is wrong.\nSo the answer is {g[1] + 1}.\n"
        f"</think>\n<answer>{g[1] + 1}</answer>",
        f"So the answer is {g[2]}.\nLet me check: {g[2]} + 0 = {g[2]}. Correct.\n</think>\n<answer>{g[2]}</answer>",
        f"So the answer is {g[3]}.\n</think>\n<answer>{g[3]}</answer>",
    ]


EXPECTED = {"n": 4, "revision_rate": 0.5, "wrong_to_right_rate": 0.25, "right_to_wrong_rate": 0.25,
            "net_corrections_per_100": 0.0, "check_rate": 0.75, "check_agreed_when_right": 2 / 3,
            "check_disagreed_when_wrong": 1.0, "accuracy_checked": 2 / 3, "accuracy_unchecked": 1.0,
            "caught_error_rate": 0.5}


def config(tmp_path):
    return validate_dict(base_config(output_root=str(tmp_path)))


def test_the_trace_writer_records_each_completions_self_check_and_the_steps_aggregates(tmp_path):
    rows = [{"id": f"p{i}", "problem": f"Compute: {g} + 0", "answer": str(g), "prefill": "<think>\n"}
            for i, g in enumerate((11, 12, 13, 14))]
    texts = reflective_texts([r["answer"] for r in rows])
    correct = [1.0, 0.0, 1.0, 1.0]
    writer = TraceWriter(tmp_path / "traces", grader=get_reward("accuracy", isolate=False))
    metrics = writer.observe(step=1, rows=rows, completions=texts, rewards={"accuracy": correct}, weights=[1.0],
                             advantages=[0.0] * 4, completion_tokens=[30] * 4, truncated=[False] * 4)
    assert {k: metrics[f"behaviour/{k}"] for k in EXPECTED if k != "n"} == pytest.approx(
        {k: v for k, v in EXPECTED.items() if k != "n"})
    records = load_traces(tmp_path)
    assert [r["self_check"]["candidates"] for r in records] == [["12", "11"], ["12", "13"], ["13"], ["14"]]
    assert summarize_records(records)["behaviour/check_rate"] == 0.75  # the traces give back the step's numbers
    assert [r["prompt_id"] for r in filter_traces(records, revised=True)] == ["p0", "p1"]
    assert [r["prompt_id"] for r in filter_traces(records, checked=False)] == ["p3"]
    assert filter_traces([{"completion": "old trace"}], checked=False) == []  # no self_check: matches neither


def test_a_tiny_training_run_logs_the_self_check_per_step_and_per_completion(tmp_path, tiny_model_dir):
    from ahazero.training.assemble import train

    cfg = validate_dict(base_config(output_root=str(tmp_path), grpo={
        "num_generations": 4, "per_device_train_batch_size": 8, "max_steps": 1, "save_steps": 10,
        "max_completion_length": 8, "gradient_checkpointing": False}))
    run_dir = train(cfg)
    row = next(r for r in read_metrics(run_dir / "metrics.jsonl") if "behaviour/check_rate" in r)
    assert RATE_KEYS <= set(row) and row["behaviour/revision_rate"] == 0.0
    records = load_traces(run_dir)
    assert len(records) == 8 and all(set(r["self_check"]) >= {"candidates", "checked", "checks"} for r in records)
    assert all(r["self_check"]["final_correct"] == r["correct"] for r in records)

    console = Console(record=True, width=200, file=io.StringIO())
    parser = argparse.ArgumentParser()
    add_parser(parser.add_subparsers())
    assert run_traces(parser.parse_args(["traces", str(run_dir), "--last", "--no-checked", "--limit", "1"]),
                      console=console) == 0
    assert "self-check:" in console.export_text()


@pytest.fixture
def reflective_eval(tmp_path, monkeypatch):
    """``ahazero eval`` of the tiny config, its completions replaced by the four reflective texts."""
    import ahazero.evaluate as ev

    cfg = config(tmp_path)
    golds = [str(row["answer"]) for row in check_config(cfg).task.load("test")][:4]
    texts = reflective_texts(golds)
    monkeypatch.setattr(ev, "_generate", lambda model, tok, prompts, settings, **kw: [[(t, 40)] for t in texts])
    return cfg


def test_eval_writes_the_self_check_beside_the_base_models(tmp_path, tiny_model_dir, reflective_eval):
    settings = EvalSettings(limit=4, batch_size=4, max_new_tokens=64)
    base = evaluate(reflective_eval, model="base", settings=settings)
    assert base["self_check"] == pytest.approx(EXPECTED)
    out = tmp_path / "t" / "eval"
    saved = json.loads((out / "base.json").read_text())
    assert list(saved["self_check"]) == list(SELF_CHECK_KEYS)
    samples = [json.loads(line) for line in (out / "base-samples.jsonl").read_text().splitlines()]
    assert [s["self_check"]["caught_error"] for s in samples] == [True, True, False, False]
    assert "| self_check.net_corrections_per_100 | +0.0 |" in (out / "base.md").read_text()

    trained = evaluate(reflective_eval, model=str(tiny_model_dir), settings=settings)  # another tag, same texts
    assert trained["base"]["self_check"] == saved["self_check"]
    md = (out / f"{trained['tag']}.md").read_text()
    assert "| self_check.check_rate | 0.750 | 0.750 |" in md and "| metric |" in md and "base model |" in md

    assert main(["behaviours", str(out / "base-samples.jsonl")]) == 0


def test_behaviours_reads_eval_samples_like_eval_did(tmp_path, tiny_model_dir, reflective_eval, capsys):
    evaluate(reflective_eval, model="base", settings=EvalSettings(limit=4, batch_size=4, max_new_tokens=64))
    capsys.readouterr()
    assert main(["behaviours", str(tmp_path / "t" / "eval" / "base-samples.jsonl"), "--summary-only"]) == 0
    summary = json.loads(capsys.readouterr().out)["summary"]
    assert summary == pytest.approx(EXPECTED)


def test_eval_of_the_tiny_model_itself_has_the_self_check(tmp_path, tiny_model_dir, capsys):
    results = evaluate(config(tmp_path), model="base", settings=EvalSettings(limit=3, batch_size=4,
                                                                              max_new_tokens=12))
    assert results["self_check"]["n"] == 3 and set(results["greedy"]) >= METRIC_KEYS
    capsys.readouterr()
    assert main(["behaviours", str(tmp_path / "t" / "eval" / "base-samples.jsonl"), "--summary-only"]) == 0
    summary = json.loads(capsys.readouterr().out)["summary"]
    for key in ("n", "revision_rate", "check_rate", "caught_error_rate"):
        assert summary[key] == results["self_check"][key], key


@pytest.mark.parametrize(("content", "message"), [
    (None, "no such file"),
    ("", "holds no records"),
    ('{"completion": "4"}\nnot json\n', "line 2: not JSON"),
    ('{"gold": "4"}\n', "line 1: no 'completion' string"),
    ('{"completion": "4", "gold": [4]}\n', "'gold' is not a string or a number"),
])
def test_behaviours_refuses_a_bad_file_in_one_line(tmp_path, capsys, content, message):
    path = tmp_path / "c.jsonl"
    if content is not None:
        path.write_text(content)
    assert main(["behaviours", str(path)]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and message in captured.err and len(captured.err.strip().splitlines()) == 1


def test_behaviours_names_the_valid_tasks(tmp_path, capsys):
    path = tmp_path / "c.jsonl"
    path.write_text('{"completion": "4"}\n')
    assert main(["behaviours", str(path), "--task", "gsm9k"]) == 2
    err = capsys.readouterr().err
    assert "unknown task 'gsm9k'" in err and "gsm8k" in err and "countdown" in err


def test_countdown_records_are_graded_by_the_countdown_reward(tmp_path, capsys):
    path = tmp_path / "c.jsonl"
    path.write_text(json.dumps({"completion": "<think>The answer is 3 * 3.\nWait, that uses 3 twice. "
                                              "So the answer is (1 + 2) * 3.</think><answer>(1 + 2) * 3</answer>",
                                "numbers": [1, 2, 3], "target": 9}) + "\n")
    assert main(["behaviours", str(path), "--task", "countdown"]) == 0
    record = json.loads(capsys.readouterr().out.splitlines()[0])
    assert record["candidates"] == ["3 * 3", "(1 + 2) * 3"]
    assert (record["first_correct"], record["final_correct"], record["revised"]) == (False, True, True)
