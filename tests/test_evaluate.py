"""`ahazero eval` on the tiny model: files written, metrics present, greedy reproducible."""

from __future__ import annotations

import json
import re

import pytest
from helpers import base_config

from ahazero.config.schema import validate_dict
from ahazero.evaluate import (
    EvalError,
    EvalSettings,
    evaluate,
    majority_answer,
    render_markdown,
    resolve_eval_model,
)


def cfg(tmp_path):
    return validate_dict(base_config(output_root=str(tmp_path)))


def test_eval_writes_results_and_is_reproducible(tmp_path, tiny_model_dir):
    settings = EvalSettings(limit=6, batch_size=8, max_new_tokens=12, samples=3)
    first = evaluate(cfg(tmp_path), model="base", settings=settings)
    out = tmp_path / "t" / "eval"
    assert sorted(p.name for p in out.iterdir()) == ["base-samples.jsonl", "base.json", "base.md"]
    saved = json.loads((out / "base.json").read_text())
    for key in ("pass@1", "pass@3", "maj@3", "format_rate", "think_tokens_mean", "reflection_rate",
                "language_consistency", "truncation_rate"):
        assert key in saved, key
    assert saved["n"] == 6 and 0.0 <= saved["pass@1"] <= saved["pass@3"] <= 1.0
    samples = [json.loads(line) for line in (out / "base-samples.jsonl").read_text().splitlines()]
    assert len(samples) == 6 + 6 * 3
    assert "| pass@1 |" in (out / "base.md").read_text()

    second = evaluate(cfg(tmp_path), model="base", settings=settings)
    assert [s["completion"] for s in samples[:6]] == [
        json.loads(line)["completion"] for line in (out / "base-samples.jsonl").read_text().splitlines()[:6]
    ]
    assert first["greedy"] == second["greedy"]


def fake_run(root, name="t", steps=(2, 4), final=False):
    run = root / name
    for step in steps:
        (run / "checkpoints" / f"checkpoint-{step}").mkdir(parents=True)
        (run / "checkpoints" / f"checkpoint-{step}" / "trainer_state.json").write_text("{}")
    if final:
        (run / "model").mkdir(parents=True)
        (run / "model" / "config.json").write_text("{}")
    return run


def test_model_resolution(tmp_path):
    config = cfg(tmp_path)
    assert resolve_eval_model(config, None) == ("tiny", "base")
    assert resolve_eval_model(config, "some/hub-model") == ("some/hub-model", "hub-model")
    run = fake_run(tmp_path)
    assert resolve_eval_model(config, "latest") == (str(run / "checkpoints" / "checkpoint-4"), "step-4")
    (run / "model").mkdir()
    (run / "model" / "config.json").write_text("{}")
    assert resolve_eval_model(config, None) == (str(run / "model"), "final")
    # a run stopped by max_train_seconds after its last checkpoint: its final model is the newest weights
    assert resolve_eval_model(config, "latest") == (str(run / "model"), "final")
    assert resolve_eval_model(config, "step-2") == (str(run / "checkpoints" / "checkpoint-2"), "step-2")


def test_no_such_checkpoint_lists_the_ones_that_exist(tmp_path):
    fake_run(tmp_path)
    with pytest.raises(EvalError) as info:
        resolve_eval_model(cfg(tmp_path), "step-999")
    assert str(info.value) == (f"--model step-999: no checkpoint for step 999 in {tmp_path / 't' / 'checkpoints'}; "
                               "this run has: base, latest (step-4), step-2, step-4")
    with pytest.raises(EvalError, match=r"^--model final: .*/t/model holds no final model yet; this run has: base, "
                                        r"latest \(step-4\)"):
        resolve_eval_model(cfg(tmp_path), "final")


def test_step_tags_are_never_hub_ids(tmp_path):
    fake_run(tmp_path)
    for tag in ("step-abc", "step-", "step-1.5"):
        with pytest.raises(EvalError, match=rf"^--model {re.escape(tag)}: a checkpoint is named step-N with N a number"):
            resolve_eval_model(cfg(tmp_path), tag)


def test_missing_local_path(tmp_path):
    for path in ("./no/such/model", str(tmp_path / "nope"), "a/b/c", "missing.gguf"):
        with pytest.raises(EvalError, match=rf"^--model {re.escape(path)}: no such file or folder; .* or one of this "
                                            r"run's: base$"):
            resolve_eval_model(cfg(tmp_path), path)


def test_misspelt_run_name_names_the_runs_that_exist(tmp_path):
    fake_run(tmp_path, name="default")
    fake_run(tmp_path, name="smoke")
    typo = validate_dict(base_config(output_root=str(tmp_path), name="defualt"))
    for model in ("latest", "final", "step-2"):
        with pytest.raises(EvalError) as info:
            resolve_eval_model(typo, model)
        assert str(info.value) == (f"--model {model}: there is no run directory {tmp_path / 'defualt'} (name=defualt); "
                                   f"runs in {tmp_path}/: default, smoke; give the run's name= or --model base")
    assert not (tmp_path / "defualt").exists()


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"limit": 0}, "--limit must be at least 1 (got 0)"),
        ({"limit": -5}, "--limit must be at least 1 (got -5)"),
        ({"batch_size": 0}, "--batch-size must be at least 1 (got 0)"),
        ({"samples": 1}, "--samples must be 0 (greedy only) or at least 2"),
        ({"samples": -2}, "--samples must be 0 (greedy only) or at least 2"),
        ({"max_new_tokens": 0}, "--max-new-tokens must be at least 1 (got 0)"),
        ({"temperature": float("nan")}, "--temperature must be a finite number > 0 (got nan)"),
    ],
)
def test_bad_settings_fail_before_the_model_loads(tmp_path, monkeypatch, settings, message):
    import ahazero.models.loading as loading

    def no_load(*args, **kwargs):
        raise AssertionError("the model was loaded")

    monkeypatch.setattr(loading, "load_model_and_tokenizer", no_load)
    with pytest.raises(EvalError) as info:
        evaluate(cfg(tmp_path), model="base", settings=EvalSettings(**settings))
    assert str(info.value).startswith(message)
    assert not (tmp_path / "t").exists()


def test_majority_vote_and_markdown():
    assert majority_answer(["3", "4", " 4 ", None]) == "4"
    assert majority_answer([None, ""]) is None
    md = render_markdown({"model": "m", "tag": "final", "task": "arithmetic", "split": "test", "n": 4,
                          "pass@1": 0.25, "pass@8": 0.5, "maj@8": 0.5, "format_rate": None})
    assert "| pass@8 | 0.500 |" in md and "| format_rate | n/a |" in md


def test_a_trained_models_eval_shows_the_base_model_and_the_first_step_beside_it(tmp_path):
    from ahazero.evaluate import reference_numbers

    (tmp_path / "base.json").write_text(json.dumps({"tag": "base", "pass@1": 0.285, "reflection_rate": 0.185,
                                                    "reflection_rate_drgrpo": 0.02}))
    (tmp_path / "metrics.jsonl").write_text(json.dumps({"step": 1, "behaviour/reflection_rate": 0.2,
                                                        "behaviour/reflection_rate_drgrpo": 0.01}) + "\n")
    ref = reference_numbers(tmp_path / "base.json", tmp_path / "metrics.jsonl")
    assert ref["base"]["reflection_rate_drgrpo"] == 0.02 and ref["first_step"]["reflection_rate"] == 0.2
    md = render_markdown({"model": "m", "tag": "final", "task": "arithmetic", "split": "test", "n": 4,
                          "pass@1": 0.65, "reflection_rate": 0.0, "reflection_rate_drgrpo": 0.0, **ref})
    assert "| metric | final | base model |" in md
    assert "| reflection_rate | 0.000 | 0.185 |" in md and "| reflection_rate_drgrpo | 0.000 | 0.020 |" in md
    assert "first training step (1, sampled, before any update): reflection_rate 0.200" in md
    assert reference_numbers(tmp_path / "missing.json", tmp_path / "missing.jsonl") == {}


@pytest.mark.parametrize("answer_source", ["any", "tags"])
def test_pass_at_1_is_graded_like_the_field_and_in_tags_beside_it(tmp_path, tiny_model_dir, monkeypatch,
                                                                   answer_source):
    """A recipe that trains on answers in tags only is still evaluated like the field (a box counts)."""
    import ahazero.evaluate as ev
    from ahazero.config.validate import check_config

    config = validate_dict(base_config(output_root=str(tmp_path), rewards=[
        {"name": "accuracy", "weight": 1.0, "answer_source": answer_source},
        {"name": "think_format", "weight": 0.1, "require_answer_tags": True}]))
    golds = [str(row["answer"]) for row in check_config(config).task.load("test")][:4]
    texts = [f"x</think>\n<answer>{golds[0]}</answer>",      # in tags: right both ways
             f"x</think>\nSo it is \\boxed{{{golds[1]}}}.",    # boxed outside the tags: the field's reading only
             f"x</think>\n<answer>{golds[2]}1</answer>",     # wrong
             "x, and no answer at all"]                       # none
    monkeypatch.setattr(ev, "_generate", lambda model, tok, prompts, settings, **kw: [[(t, 5)] for t in texts])
    result = evaluate(config, model="base", settings=EvalSettings(limit=4, batch_size=4, max_new_tokens=8))
    assert result["pass@1"] == 0.5 and result["pass@1_in_tags"] == 0.25
    assert result["format_rate"] == 0.5 and result["greedy"]["behaviour/accuracy_in_tags"] == 0.25
    out = tmp_path / "t" / "eval"
    samples = [json.loads(line) for line in (out / "base-samples.jsonl").read_text().splitlines()]
    assert [(s["correct"], s["correct_in_tags"]) for s in samples] == [(True, True), (True, False), (False, False),
                                                                       (False, False)]
    assert "| pass@1 | 0.500 |\n| pass@1_in_tags | 0.250 |" in (out / "base.md").read_text()
    assert json.loads((out / "base.json").read_text())["pass@1_in_tags"] == 0.25


def test_a_trained_models_eval_shows_the_base_in_tags_number_beside_it(tmp_path):
    from ahazero.evaluate import reference_numbers

    (tmp_path / "base.json").write_text(json.dumps({"pass@1": 0.12, "pass@1_in_tags": 0.02}))
    ref = reference_numbers(tmp_path / "base.json", None)
    md = render_markdown({"model": "m", "tag": "step-40", "task": "gsm8k", "split": "test", "n": 4,
                          "pass@1": 0.25, "pass@1_in_tags": 0.5, **ref})
    assert "| pass@1 | 0.250 | 0.120 |\n| pass@1_in_tags | 0.500 | 0.020 |" in md
