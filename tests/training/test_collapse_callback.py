"""on_collapse: the alarm during training warns once per kind, or stops the run cleanly with a checkpoint."""

from __future__ import annotations

import json
import logging
from types import SimpleNamespace

from helpers import base_config

from ahazero.config.schema import CollapseSettings, validate_dict
from ahazero.observe.collapse import CollapseAlarm
from ahazero.observe.rundir import read_metrics
from ahazero.training.collapse import CollapseAlarmCallback

SMALL = CollapseSettings(baseline_steps=2, window=3)


def collapsing_logs(step):
    early = step <= 2
    return {"reward": 0.5, "behaviour/format_rate": 0.2 if early else 1.0,
            "behaviour/accuracy": (0.30 if early else 0.05) + 0.01 * (step % 2),
            "behaviour/think_tokens_closed_mean": 80.0 if early else 10.0,
            "behaviour/answer_tokens_closed_mean": 8.0}


def feed(cb, steps, control=None):
    control = control or SimpleNamespace(should_training_stop=False, should_save=False)
    for step in steps:
        state = SimpleNamespace(is_world_process_zero=True, global_step=step)
        cb.on_log(None, state, control, logs=collapsing_logs(step))
    return control


def test_warn_logs_one_line_per_kind_and_never_stops(caplog):
    cb = CollapseAlarmCallback(SMALL, "warn")
    with caplog.at_level(logging.WARNING, logger="ahazero.training.assemble"):
        control = feed(cb, range(1, 9))
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2
    assert lines[0].startswith("format collapse at step 5: format rate 0.20 -> 1.00") and "(on_collapse: warn)" in lines[0]
    assert lines[1].startswith("thinking collapse at step 5")
    assert not control.should_training_stop and cb.stopped_by is None
    assert [a.kind for a in cb.alarms] == ["format", "thinking"]


def test_stop_asks_for_a_checkpoint_and_the_end_of_training():
    cb = CollapseAlarmCallback(SMALL, "stop")
    control = feed(cb, range(1, 5))
    assert not control.should_training_stop
    control = feed(cb, [5], control)
    assert control.should_training_stop and control.should_save
    assert cb.stopped_by.kind == "format" and cb.stopped_by.step == 5


def write_metrics(path, steps):
    path.write_text("".join(json.dumps({"step": s, **collapsing_logs(s)}) + "\n" for s in steps))
    return path


def test_a_resumed_run_keeps_its_early_level(tmp_path):
    metrics = write_metrics(tmp_path / "metrics.jsonl", range(1, 7))
    cb = CollapseAlarmCallback(SMALL, "stop", metrics_path=metrics)
    cb.on_train_begin(None, SimpleNamespace(is_world_process_zero=True, global_step=4), None)
    assert [r["step"] for r in cb.rows] == [1, 2, 3, 4]  # lines after the checkpoint are not kept
    control = feed(cb, [5])
    assert [a.step for a in cb.alarms] == [5, 5] and control.should_training_stop


def test_a_run_resumed_after_a_stop_goes_on(tmp_path, caplog):
    metrics = write_metrics(tmp_path / "metrics.jsonl", range(1, 6))
    cb = CollapseAlarmCallback(SMALL, "stop", metrics_path=metrics)
    with caplog.at_level(logging.WARNING, logger="ahazero.training.assemble"):
        cb.on_train_begin(None, SimpleNamespace(is_world_process_zero=True, global_step=5), None)
    assert "before this resume: format collapse at step 5" in caplog.text
    control = feed(cb, [6, 7])
    assert not control.should_training_stop and cb.stopped_by is None


def test_stop_ends_a_real_run_with_a_checkpoint_and_the_model(tmp_path, tiny_model_dir, monkeypatch, caplog):
    import ahazero.training.collapse as collapse

    def fires_at_step_2(rows, settings):
        step = rows[-1]["step"]
        return [CollapseAlarm("format", step, f"format collapse at step {step}: test")] if step >= 2 else []

    monkeypatch.setattr(collapse, "check_collapse", fires_at_step_2)
    cfg = validate_dict(base_config(
        output_root=str(tmp_path), on_collapse="stop", logging={"report_to": []},
        grpo={"num_generations": 4, "per_device_train_batch_size": 8, "max_steps": 4, "save_steps": 10,
              "max_completion_length": 8},
    ))
    from ahazero.training.assemble import train

    with caplog.at_level(logging.WARNING, logger="ahazero.training.assemble"):
        run_dir = train(cfg)
    assert [r["step"] for r in read_metrics(run_dir / "metrics.jsonl") if "reward" in r] == [1, 2]
    assert sorted(p.name for p in (run_dir / "checkpoints").glob("checkpoint-*")) == ["checkpoint-2"]
    assert (run_dir / "model" / "config.json").is_file()
    assert "format collapse at step 2: test (on_collapse: stop)" in caplog.text
    assert "stopped at step 2 by on_collapse: stop (format collapse)" in caplog.text


def test_off_leaves_the_callback_out(tmp_path, tiny_model_dir):
    from ahazero.training.assemble import build_trainer

    cfg = validate_dict(base_config(output_root=str(tmp_path), on_collapse="off", logging={"report_to": []}))
    trainer = build_trainer(cfg)
    assert not any(isinstance(cb, CollapseAlarmCallback) for cb in trainer.callback_handler.callbacks)
    cfg = validate_dict(base_config(output_root=str(tmp_path), logging={"report_to": []}))
    assert any(isinstance(cb, CollapseAlarmCallback) and cb.mode == "warn"
               for cb in build_trainer(cfg).callback_handler.callbacks)
