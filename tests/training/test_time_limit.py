"""max_train_seconds: a run ends cleanly before a step would end past its training time budget, as a finished run."""

from __future__ import annotations

import json
import logging

import pytest
from helpers import base_config

from ahazero.config.schema import ConfigError, validate_dict
from ahazero.experiments.plan import is_finished
from ahazero.observe.rundir import RunDir, read_metrics


def test_a_run_past_its_budget_stops_at_that_step_with_the_final_model(tmp_path, tiny_model_dir, caplog):
    from ahazero.training.assemble import train

    cfg = validate_dict(base_config(
        output_root=str(tmp_path), max_train_seconds=1e-3, logging={"report_to": []},
        grpo={"num_generations": 4, "per_device_train_batch_size": 8, "max_steps": 5, "save_steps": 10,
              "max_completion_length": 8},
    ))
    with caplog.at_level(logging.WARNING, logger="ahazero.training.assemble"):
        run_dir = train(cfg)
    rows = read_metrics(run_dir / "metrics.jsonl")
    assert [r["step"] for r in rows if "reward" in r] == [1]
    assert any("train_runtime" in r for r in rows)
    assert (run_dir / "model" / "config.json").is_file()
    assert not list((run_dir / "checkpoints").glob("checkpoint-*"))  # no extra checkpoint
    assert is_finished(RunDir(run_dir))  # a sweep counts it as finished
    assert "stopped at step 1 of 5 after" in caplog.text and "max_train_seconds: 0.001" in caplog.text
    assert json.loads((run_dir / "run.json").read_text())  # the run record is intact


def test_the_budget_must_be_a_positive_finite_number():
    for bad in (0, -5, float("inf")):
        with pytest.raises(ConfigError):
            validate_dict(base_config(max_train_seconds=bad))
    assert validate_dict(base_config(max_train_seconds=540)).max_train_seconds == 540.0


def test_the_next_step_is_predicted_from_the_last_one(monkeypatch):
    from types import SimpleNamespace

    import ahazero.training.callbacks as callbacks

    clock = iter([0.0, 30.0, 60.0, 85.0])  # train begins; steps end at 30, 60, 85 s
    monkeypatch.setattr(callbacks.time, "monotonic", lambda: next(clock))
    cb = callbacks.TimeLimitCallback(100.0)
    control = SimpleNamespace(should_training_stop=False)
    cb.on_train_begin(None, SimpleNamespace(global_step=0), control)
    for step in (1, 2):
        cb.on_step_end(None, SimpleNamespace(global_step=step), control)
        assert not control.should_training_stop  # 30 + 30 and 60 + 30 end before 100 s
    cb.on_step_end(None, SimpleNamespace(global_step=3), control)  # 85 + 25 would end past it
    assert control.should_training_stop and (cb.stopped_at, cb.elapsed) == (3, 85.0)
