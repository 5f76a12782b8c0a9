"""Rejection sampling on hand-written completions: what is kept, what is rejected and why; the files."""

from __future__ import annotations

import json

import pytest
from helpers import base_config

from ahazero.config.schema import ConfigError, validate_dict
from ahazero.config.validate import check_config
from ahazero.observe.behaviours import describe
from ahazero.observe.tracing import TraceWriter, build_records
from ahazero.stages.sample import SampleRequest, sample_from_traces
from ahazero.stages.samples import (
    RejectionRules,
    SamplesError,
    read_samples,
    select_samples,
    summarize_samples,
    write_samples,
)
from ahazero.stages.scoring import check_scorable, score_records

RECIPE_REWARDS = [{"name": "accuracy"}, {"name": "think_format", "weight": 0.5, "require_answer_tags": True},
                  {"name": "language_consistency", "weight": 0.1}]


@pytest.fixture(scope="module")
def checked():
    return check_config(validate_dict(base_config(rewards=RECIPE_REWARDS)), cuda=False)


def _row(problem="Compute: 17 + 25", answer="42", id_="p1"):
    return {"id": id_, "problem": problem, "answer": answer, "prompt": f"...{problem}...<think>\n",
            "prefill": "<think>\n"}


def _select(checked, completions, *, truncated=None, **rules):
    rows = [_row() for _ in completions]
    records = score_records(checked, rows, completions, truncated=truncated)
    return select_samples(records, RejectionRules(**rules))


def test_each_rule_rejects_what_it_should(checked):
    completions = [
        "Add: 17 + 25 = 42\n</think>\n<answer>42</answer>",          # kept
        "Add: 17 + 25 = 41\n</think>\n<answer>41</answer>",          # wrong answer
        "Add: 17 + 25 = 42, so 42",                                   # cut at the token limit
        "Add: 17 + 25 = 42 </think> <answer>42</answer> and more",    # text after the answer
        "十七加二十五等于四十二\n</think>\n<answer>42</answer>",        # thinking in Chinese
        "Add: 17 + 25 = 42\n</think>\n<answer>42</answer>",          # the same text again
        "17 plus 25 is 42\n</think>\n<answer>42</answer>",           # correct, but over the limit of 1
    ]
    truncated = [False, False, True, False, False, False, False]
    out = _select(checked, completions, truncated=truncated)
    assert [r["reject_reason"] for r in out] == [
        None, "wrong", "truncated", "unformatted", "language", "duplicate", "over_limit"]
    assert [r["kept"] for r in out] == [True] + [False] * 6
    assert out[0]["rewards"] == {"accuracy": 1.0, "think_format": 1.0, "language_consistency": 1.0}
    assert out[0]["reward"] == pytest.approx(1.6)


def test_duplicates_ignore_whitespace_and_the_limit_counts_distinct_texts(checked):
    out = _select(checked, ["17 + 25 = 42\n</think>\n<answer>42</answer>",
                            "17 +  25 = 42 </think> <answer>42</answer>",
                            "Add: 17 + 25 = 42\n</think>\n<answer>42</answer>"], max_per_prompt=2)
    assert [r["reject_reason"] for r in out] == [None, "duplicate", None]


def test_min_language_lets_a_mixed_chain_through_when_lowered(checked):
    mixed = "Add them: 17 + 25 = 42, 也 42\n</think>\n<answer>42</answer>"  # 2 of 3 words English
    assert _select(checked, [mixed])[0]["reject_reason"] == "language"
    assert _select(checked, [mixed], min_language=0.5)[0]["kept"] is True


def test_rules_reject_bad_settings():
    with pytest.raises(ValueError, match="max_per_prompt must be at least 1"):
        RejectionRules(max_per_prompt=0)
    with pytest.raises(ValueError, match="min_language must be between 0 and 1"):
        RejectionRules(min_language=1.5)


def test_a_config_without_a_correctness_reward_cannot_reject():
    cfg = validate_dict(base_config(rewards=[{"name": "think_format"}]))
    with pytest.raises(ConfigError, match="needs a correctness reward"):
        check_scorable(check_config(cfg, cuda=False))


def test_files_summary_and_reading_back(checked, tmp_path):
    completions = ["17 + 25 = 42\n</think>\n<answer>42</answer>", "no idea\n</think>\n<answer>7</answer>"]
    records = _select(checked, completions)
    rules = RejectionRules()
    summary = summarize_samples(records, rules=rules, info={"source": "test"})
    paths = write_samples(records, tmp_path / "out" / "s.jsonl", summary)
    assert [p.name for p in paths] == ["s.jsonl", "s.rejected.jsonl", "s.summary.json"]
    kept, rejected = read_samples(paths[0]), read_samples(paths[1])
    assert [r["completion"] for r in kept] == completions[:1] and rejected[0]["reject_reason"] == "wrong"
    written = json.loads(paths[2].read_text())
    assert (written["sampled"], written["kept"], written["rejected"], written["source"]) == (2, 1, {"wrong": 1}, "test")
    assert written["per_prompt"] == [{"id": "p1", "sampled": 2, "correct": 1, "kept": 1}]

    paths[0].write_text(paths[0].read_text() + "{broken\n")
    with pytest.raises(SamplesError, match="s.jsonl:2 is not a JSON object"):
        read_samples(paths[0])
    with pytest.raises(SamplesError, match="samples file not found"):
        read_samples(tmp_path / "missing.jsonl")


def _trace_run(tmp_path, cfg, steps):
    """A run directory whose traces answer the task's first train problems (right or wrong per step)."""
    rows = [dict(r, prompt="p", prefill="<think>\n") for r in check_config(cfg, cuda=False).task.load("train")][:3]
    writer = TraceWriter(tmp_path / "run" / "traces")
    for step, right in steps.items():
        texts = [f"step {step}\n</think>\n<answer>{r['answer'] if right else 'x'}</answer>" for r in rows]
        writer.write(step, build_records(
            step=step, rows=rows, completions=texts, rewards={"accuracy": [float(right)] * 3}, weights=[1.0],
            advantages=[0.0] * 3, completion_tokens=[5] * 3, truncated=[False] * 3,
            behaviours=[describe("<think>\n" + t) for t in texts]))
    return tmp_path / "run", rows


def test_from_traces_rescores_and_prefers_the_latest_steps(tmp_path):
    cfg = validate_dict(base_config(rewards=RECIPE_REWARDS, output_root=str(tmp_path)))
    run, rows = _trace_run(tmp_path, cfg, {1: True, 2: False, 3: True})
    summary = sample_from_traces(cfg, run, SampleRequest())
    kept = read_samples(summary["files"][0])
    assert summary["sampled"] == 9 and summary["kept"] == 3
    assert {r["step"] for r in kept} == {3} and {r["id"] for r in kept} == {r["id"] for r in rows}
    assert summary["files"][0].endswith("run/samples/traces-train.jsonl")

    only_early = sample_from_traces(cfg, run, SampleRequest(out=tmp_path / "early.jsonl"), steps=(1, 2))
    assert {r["step"] for r in read_samples(only_early["files"][0])} == {1}
    with pytest.raises(SamplesError, match="no traces in"):
        sample_from_traces(cfg, run, SampleRequest(), steps=(7, None))


def test_from_traces_with_another_tasks_config_says_which_config_to_use(tmp_path):
    cfg = validate_dict(base_config(rewards=RECIPE_REWARDS, output_root=str(tmp_path)))
    run, _ = _trace_run(tmp_path, cfg, {1: True})
    other = validate_dict(base_config(rewards=RECIPE_REWARDS, seed=5, output_root=str(tmp_path)))
    with pytest.raises(ConfigError, match="pass the run's own config"):
        sample_from_traces(other, run, SampleRequest())


@pytest.mark.parametrize("use_graph", [False, True], ids=["generate", "graph-sampler"])
def test_sampling_paths_give_k_finished_or_truncated_completions_per_prompt(use_graph, tiny_model_dir):
    from ahazero.models.loading import load_model_and_tokenizer
    from ahazero.stages.generate import Sampling, sample_completions

    model, tok = load_model_and_tokenizer("tiny", dtype="float32")
    prompts = ["<|im_start|>user\nCompute: 1 + 1<|im_end|>\n", "<|im_start|>user\nCompute: 12 * 3 - 4<|im_end|>\n"]
    sampling = Sampling(n=3, max_new_tokens=6, batch_size=4, use_graph=use_graph, prompt_bucket=16)
    out = sample_completions(model, tok, prompts, sampling, quiet=True)
    assert [len(group) for group in out] == [3, 3]
    for item in (c for group in out for c in group):
        assert 0 <= item["tokens"] <= 6 and item["truncated"] == (item["tokens"] == 6)
        assert isinstance(item["text"], str)


def test_the_command_selects_from_traces(tmp_path, capsys):
    import yaml

    from ahazero.cli import main

    data = base_config(rewards=RECIPE_REWARDS, output_root=str(tmp_path))
    run, _ = _trace_run(tmp_path, validate_dict(data), {1: True, 2: False})
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(data))
    assert main(["sample", str(tmp_path / "c.yaml"), "--from-traces", str(run), "--steps", "2:2"]) == 0
    assert "kept 0 of 3 completions" in capsys.readouterr().out
    assert main(["sample", str(tmp_path / "c.yaml"), "--from-traces", str(run), "--steps", "1:2",
                 "--out", str(tmp_path / "s.jsonl")]) == 0
    assert len(read_samples(tmp_path / "s.jsonl")) == 3
