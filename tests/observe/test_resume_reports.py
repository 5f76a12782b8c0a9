"""A resume says what it cannot restore: a deleted metrics.jsonl is reported, with the steps it held."""

from __future__ import annotations

import logging

from ahazero.observe.run_repair import prepare_restart, repair_metrics
from ahazero.observe.rundir import ResumePoint, RunDir


def test_a_missing_metrics_file_is_reported_on_resume(tmp_path, caplog):
    run = RunDir(tmp_path / "r")
    run.root.mkdir()
    with caplog.at_level(logging.WARNING, logger="ahazero.observe.run_repair"):
        prepare_restart(run, ResumePoint(step=40, target=60))
    assert (f"{run.metrics} is missing: the metrics of steps 1-40 are lost (the checkpoint and traces/ keep what "
            "they hold); training logs from step 41 on into a new file") in caplog.text
    assert not run.metrics.exists()


def test_nothing_is_said_for_a_fresh_start_or_a_file_that_is_there(tmp_path, caplog):
    path = tmp_path / "metrics.jsonl"
    with caplog.at_level(logging.WARNING, logger="ahazero.observe.run_repair"):
        repair_metrics(path, keep_through=0)  # a new run: no file yet, nothing lost
        path.write_text('{"step": 1}\n{"step": 2}\n')
        assert repair_metrics(path, keep_through=2).dropped == 0
    assert caplog.text == ""


def test_a_real_resume_after_metrics_jsonl_was_deleted(tmp_path, tiny_model_dir, caplog):
    from helpers import base_config

    from ahazero.config.schema import validate_dict
    from ahazero.observe.rundir import read_metrics
    from ahazero.training.assemble import train

    def cfg(steps):
        return validate_dict(base_config(
            output_root=str(tmp_path), logging={"report_to": [], "traces": False},
            grpo={"num_generations": 2, "per_device_train_batch_size": 2, "max_steps": steps, "save_steps": 1,
                  "max_completion_length": 4, "gradient_checkpointing": False}))

    run_dir = train(cfg(2))
    (run_dir / "metrics.jsonl").unlink()
    with caplog.at_level(logging.WARNING, logger="ahazero.observe.run_repair"):
        train(cfg(3), resume=True)
    assert "metrics.jsonl is missing: the metrics of steps 1-2 are lost" in caplog.text
    assert [r["step"] for r in read_metrics(run_dir / "metrics.jsonl") if "reward" in r] == [3]
