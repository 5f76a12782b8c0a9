"""End to end on the tiny model: a run leaves a complete run directory; resume keeps steps exactly once."""

from __future__ import annotations

import json
import shutil

import pytest
from helpers import base_config

from ahazero.config.schema import validate_dict
from ahazero.observe.rundir import RunDirError, read_metrics
from ahazero.observe.tracing import trace_steps
from ahazero.training.assemble import train

TRACE_FIELDS = {
    "step", "prompt_id", "prompt", "completion", "thinking", "extracted_answer", "gold", "rewards", "reward",
    "advantage", "thinking_tokens", "answer_tokens", "completion_tokens", "truncated", "reflections",
    "language_consistency", "correct", "formatted",
}


def smoke_cfg(tmp_path, **grpo):
    settings = {"num_generations": 4, "per_device_train_batch_size": 8, "max_steps": 4, "save_steps": 2,
                "max_completion_length": 16, "learning_rate": 1e-4, "gradient_checkpointing": False}
    settings.update(grpo)
    return validate_dict(base_config(
        output_root=str(tmp_path),
        rewards=[{"name": "accuracy"}, {"name": "think_format", "weight": 0.5},
                 {"name": "language_consistency", "weight": 0.1}],
        logging={"report_to": ["tensorboard"]},
        grpo=settings,
    ))


def steps_logged(run_dir):
    return [r["step"] for r in read_metrics(run_dir / "metrics.jsonl") if "reward" in r]


def test_smoke_run_writes_a_complete_run_directory(tmp_path, tiny_model_dir):
    run_dir = train(smoke_cfg(tmp_path))
    assert (run_dir / "config.yaml").read_text().startswith("name: t")
    info = json.loads((run_dir / "run.json").read_text())
    assert info["seed"] == 0 and info["versions"]["trl"].startswith("1.16")
    assert steps_logged(run_dir) == [1, 2, 3, 4]
    row = read_metrics(run_dir / "metrics.jsonl")[0]
    for key in ("rewards/accuracy/mean", "rewards/think_format/mean", "behaviour/think_tokens_mean",
                "behaviour/think_tokens_p90", "behaviour/reflection_rate", "behaviour/format_rate",
                "behaviour/truncation_rate", "behaviour/accuracy", "behaviour/language_consistency"):
        assert key in row, key
    assert trace_steps(run_dir / "traces") == [1, 2, 3, 4]
    records = [json.loads(line) for line in (run_dir / "traces" / "step-000001.jsonl").read_text().splitlines()]
    assert len(records) == 8 and TRACE_FIELDS <= set(records[0])
    assert all(r["prompt"].endswith("<think>\n") and r["prefill"] == "<think>\n" for r in records)
    assert sorted(p.name for p in (run_dir / "checkpoints").glob("checkpoint-*")) == ["checkpoint-2", "checkpoint-4"]
    assert (run_dir / "model" / "config.json").is_file()
    assert list((run_dir / "tensorboard").glob("events.out.tfevents.*"))

    with pytest.raises(RunDirError, match="--resume"):
        train(smoke_cfg(tmp_path))


def test_resume_continues_from_the_last_checkpoint_without_duplicates(tmp_path, tiny_model_dir):
    # A run that logged step 3 but was killed before checkpointing it: the checkpoint
    # transformers writes at the end of training is removed to recreate that state.
    run_dir = train(smoke_cfg(tmp_path, max_steps=3))
    assert steps_logged(run_dir) == [1, 2, 3]
    assert trace_steps(run_dir / "traces") == [1, 2, 3]
    shutil.rmtree(run_dir / "checkpoints" / "checkpoint-3")
    shutil.rmtree(run_dir / "model")
    step2 = (run_dir / "traces" / "step-000002.jsonl").read_text()

    run_dir = train(smoke_cfg(tmp_path, max_steps=5), resume=True)
    assert steps_logged(run_dir) == [1, 2, 3, 4, 5]
    assert trace_steps(run_dir / "traces") == [1, 2, 3, 4, 5]
    assert (run_dir / "traces" / "step-000002.jsonl").read_text() == step2  # before the checkpoint: kept
    info = json.loads((run_dir / "run.json").read_text())
    assert info["resumed_from_step"] == 2 and len(info["history"]) == 2


def test_resume_without_checkpoint_of_a_started_run_is_refused(tmp_path, tiny_model_dir):
    run_dir = train(smoke_cfg(tmp_path, max_steps=1, save_steps=10))
    shutil.rmtree(run_dir / "checkpoints")  # as if killed before the first checkpoint
    with pytest.raises(RunDirError, match="no complete checkpoint"):
        train(smoke_cfg(tmp_path, max_steps=2), resume=True)
    assert steps_logged(run_dir) == [1]  # nothing was lost


def test_lora_run_saves_an_adapter_that_eval_loads(tmp_path, tiny_model_dir):
    from ahazero.config.schema import apply_overrides
    from ahazero.evaluate import EvalSettings, evaluate

    cfg = apply_overrides(smoke_cfg(tmp_path, max_steps=2), {"model.lora": {"r": 4, "alpha": 8}})
    run_dir = train(cfg)
    assert (run_dir / "model" / "adapter_config.json").is_file()
    results = evaluate(cfg, settings=EvalSettings(limit=4, max_new_tokens=8))
    assert results["tag"] == "final" and results["n"] == 4


def test_trace_sampling_is_the_same_after_a_resume(tmp_path):
    from ahazero.observe.tracing import TraceWriter

    def sampled(writer, step):
        rows = [{"id": str(i), "prompt": "p", "answer": "1", "prefill": ""} for i in range(64)]
        writer.observe(step=step, rows=rows, completions=[f"<think>{i}</think>1" for i in range(64)],
                       rewards={"accuracy": [1.0] * 64}, weights=[1.0], advantages=[0.0] * 64,
                       completion_tokens=[3] * 64, truncated=[False] * 64)
        return [json.loads(x)["completion"] for x in writer.path_for(step).read_text().splitlines()]

    first = TraceWriter(tmp_path / "a", sample_rate=0.25, seed=1)
    uninterrupted = [sampled(first, s) for s in (1, 2, 3)]
    resumed = TraceWriter(tmp_path / "b", sample_rate=0.25, seed=1)  # a new writer, as after a restart
    assert sampled(resumed, 3) == uninterrupted[2]
    assert 0 < len(uninterrupted[2]) < 64


def _poison_step(monkeypatch, bad_step: int) -> None:
    """Make the loss (hence every gradient) NaN on optimizer step ``bad_step``."""
    from ahazero.training.trainer import AhaGRPOTrainer

    compute_loss = AhaGRPOTrainer.compute_loss

    def poisoned(self, *args, **kwargs):
        loss = compute_loss(self, *args, **kwargs)
        return loss * float("nan") if self.state.global_step + 1 == bad_step else loss

    monkeypatch.setattr(AhaGRPOTrainer, "compute_loss", poisoned)


def test_a_non_finite_gradient_is_skipped_marked_and_summarized(tmp_path, tiny_model_dir, monkeypatch, caplog):
    import torch
    from safetensors.torch import load_file

    _poison_step(monkeypatch, 2)
    with caplog.at_level("WARNING", logger="ahazero.training.assemble"):
        run_dir = train(smoke_cfg(tmp_path, max_steps=3, save_steps=1))
    rows = [r for r in read_metrics(run_dir / "metrics.jsonl") if "reward" in r]
    assert [r["updates_skipped"] for r in rows] == [0, 1, 0]
    assert "step 2: non-finite gradient; update skipped" in caplog.text
    assert "1 of 3 updates in this session were skipped for a non-finite gradient (steps 2)" in caplog.text
    # the skipped update left the weights as they were after step 1
    ckpt = run_dir / "checkpoints"
    before, after = (load_file(ckpt / f"checkpoint-{n}" / "model.safetensors") for n in (1, 2))
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert all(torch.isfinite(t).all() for t in after.values())


def test_on_nonfinite_stop_ends_the_run_with_a_clear_error(tmp_path, tiny_model_dir, monkeypatch):
    from ahazero.training.assemble import NonFiniteError

    _poison_step(monkeypatch, 1)
    cfg = validate_dict({**smoke_cfg(tmp_path).model_dump(mode="python"), "on_nonfinite": "stop"})
    with pytest.raises(NonFiniteError, match="stopped at step 1: non-finite gradient"):
        train(cfg)
