"""`ahazero calibrate` on the tiny model, and training on the problems of a pass-rate band."""

from __future__ import annotations

import json

import pytest
from helpers import REPO, base_config

from ahazero.cli import main
from ahazero.config.schema import ConfigError, validate_dict
from ahazero.experiments.calibrate import CalibrationSettings, calibrate
from ahazero.tasks import get_task
from ahazero.training.assemble import train

GRPO = {"num_generations": 4, "per_device_train_batch_size": 8, "max_steps": 1, "max_completion_length": 8,
        "learning_rate": 1e-4, "gradient_checkpointing": False, "temperature": 1.3}


def tiny(tmp_path, **task):
    return validate_dict(base_config(output_root=str(tmp_path / "runs"), logging={"report_to": []}, grpo=GRPO,
                                     task={"name": "arithmetic", "num_train": 32, "num_test": 4, **task}))


@pytest.mark.parametrize("backend", ["hf", "graph"])
def test_calibration_samples_k_completions_per_train_problem_and_writes_the_rates(tmp_path, tiny_model_dir, backend):
    cfg = tiny(tmp_path)
    out = tmp_path / "cal" / "t.jsonl"
    summary = calibrate(cfg, CalibrationSettings(k=3, limit=5, band=(0.0, 0.5), batch_size=6, backend=backend),
                        out=out)
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    train_ids = get_task("arithmetic", num_train=32, num_test=4).load("train")["id"][:5]
    assert [r["id"] for r in lines] == train_ids  # the config's own train problems, in order
    assert all(r["k"] == 3 and 0 <= r["correct"] <= 3 and r["pass_rate"] == r["correct"] / 3 for r in lines)
    assert summary["n"] == 5 and summary["kept"] + summary["below"] + summary["above"] == 5
    assert summary["backend"] == backend and summary["sampling"]["temperature"] == 1.3  # the config's rollouts
    assert summary["sampling"]["max_new_tokens"] == 8 and sum(summary["histogram"].values()) == 5
    assert summary["use"] == f"task.calibration={out.as_posix()} task.pass_rate_band=[0,0.5]"
    assert json.loads(out.with_suffix(".summary.json").read_text())["k"] == 3
    assert "| [0, 0.5] |" in out.with_suffix(".summary.md").read_text()
    with pytest.raises(ConfigError, match="exists; pass --overwrite"):
        calibrate(cfg, CalibrationSettings(k=1, limit=1), out=out)


def test_training_on_a_band_keeps_those_problems_and_records_the_counts(tmp_path, tiny_model_dir, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = tmp_path / "tiny.yaml"
    config.write_text(json.dumps(base_config(output_root="runs", logging={"report_to": []}, grpo=GRPO,
                                             task={"name": "arithmetic", "num_train": 32, "num_test": 4})))
    assert main(["calibrate", str(config), "--k", "2", "--limit", "8", "--band", "0,1", "--batch-size", "8"]) == 0
    path = tmp_path / "calibration" / "t.jsonl"  # calibration/<name>.jsonl
    rates = [json.loads(line)["pass_rate"] for line in path.read_text().splitlines()]
    assert len(rates) == 8
    band = [0.0, max(rates)]
    run = train(tiny(tmp_path, calibration=str(path), pass_rate_band=band))
    record = json.loads((run / "run.json").read_text())["calibration"]
    assert record == {"file": str(path), "band": band, "total": 32, "kept": 8, "below": 0, "above": 0,
                      "missing": 24}
    traced = {json.loads(line)["prompt_id"] for line in (run / "traces" / "step-000001.jsonl").read_text().splitlines()}
    assert traced <= {json.loads(line)["id"] for line in path.read_text().splitlines()}


def test_careless_calibration_calls_fail_at_once_with_one_line(tmp_path, capsys):
    smoke = str(REPO / "configs" / "smoke.yaml")
    assert main(["calibrate", smoke, "--band", "0.7,0.1"]) == 2
    assert "--band must be LOW,HIGH with 0 <= LOW <= HIGH <= 1" in capsys.readouterr().err
    assert main(["calibrate", smoke, "--k", "0"]) == 2
    assert "--k must be at least 1" in capsys.readouterr().err
    assert main(["calibrate", smoke, "--out", str(tmp_path / "c.txt")]) == 2
    assert "--out must be a .jsonl file" in capsys.readouterr().err
    assert main(["calibrate", smoke, "rewards=[{name: think_format}]", "--out", str(tmp_path / "c.jsonl")]) == 2
    assert "calibration needs a correctness reward" in capsys.readouterr().err
    assert not (tmp_path / "c.jsonl").exists()


def test_a_time_limit_writes_the_problems_calibrated_before_it(tmp_path, tiny_model_dir):
    cfg = tiny(tmp_path)
    out = tmp_path / "cal" / "t.jsonl"
    # a deadline already past when the first batch ends: that batch (2 problems x k=2) and nothing more
    summary = calibrate(cfg, CalibrationSettings(k=2, limit=6, band=(0.0, 1.0), batch_size=4, max_seconds=1e-6),
                        out=out)
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    train_ids = get_task("arithmetic", num_train=32, num_test=4).load("train")["id"]
    assert [r["id"] for r in lines] == train_ids[:2]
    assert (summary["n"], summary["requested"], summary["kept"]) == (2, 6, 2)
    assert "ended sampling after the first 2 of 6 train problems" in out.with_suffix(".summary.md").read_text()
    with pytest.raises(ConfigError, match="--max-seconds must be above 0"):
        CalibrationSettings(max_seconds=0).check()
