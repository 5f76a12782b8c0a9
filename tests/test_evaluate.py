"""`ahazero eval` on the tiny model: files written, metrics present, greedy reproducible."""

from __future__ import annotations

import json

import pytest
from helpers import base_config

from ahazero.config.schema import validate_dict
from ahazero.evaluate import EvalSettings, evaluate, majority_answer, render_markdown, resolve_eval_model


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


def test_model_resolution(tmp_path):
    config = cfg(tmp_path)
    assert resolve_eval_model(config, None) == ("tiny", "base")
    with pytest.raises(FileNotFoundError, match="no final model"):
        resolve_eval_model(config, "final")
    with pytest.raises(FileNotFoundError, match="no checkpoints"):
        resolve_eval_model(config, "latest")
    assert resolve_eval_model(config, "some/hub-model") == ("some/hub-model", "hub-model")


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
