"""`ahazero sweep` for real on the tiny model: `ahazero train` and `ahazero eval` subprocesses, two at once."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from helpers import REPO

from ahazero.cli import main
from ahazero.observe.rundir import read_metrics

SMOKE = str(REPO / "configs" / "smoke.yaml")
COMMON = ["output_root=runs", "task.num_test=4", "grpo.max_completion_length=12", "logging.report_to=[]"]
GRID = ["--grid", "grpo.learning_rate=1e-4,1e-3", "--grid", "task.max_terms=2"]


def test_a_2x1_grid_of_one_step_runs_trains_two_variants_at_once(tmp_path, monkeypatch, tiny_model_dir):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PYTHONPATH", f"{REPO / 'src'}:{REPO}")
    args = ["sweep", SMOKE, *COMMON, "grpo.max_steps=1", *GRID, "--parallel", "2", "--no-report"]
    assert main(args) == 0
    data = json.loads((tmp_path / "sweeps" / "smoke" / "summary.json").read_text())
    assert [r["status"] for r in data["variants"]] == ["finished", "finished"]
    for row in data["variants"]:
        run = tmp_path / row["run_dir"]
        assert [r["step"] for r in read_metrics(run / "metrics.jsonl") if "reward" in r] == [1]
        assert (run / "model" / "config.json").is_file() and "run finished" in (run / "sweep.log").read_text()
        assert row["steps"] == 1 and row["train_seconds"] > 0
        assert row["reflection_r1"]["first_step"] is not None and row["reflection_drgrpo"]["end"] is not None
    # the second variant really trained with its own learning rate
    assert "learning_rate: 0.001" in (tmp_path / data["variants"][1]["run_dir"] / "config.yaml").read_text()
    logs = [(tmp_path / r["run_dir"] / "sweep.log").read_text() for r in data["variants"]]
    assert main(args) == 0  # everything finished: nothing is started again
    assert [(tmp_path / r["run_dir"] / "sweep.log").read_text() for r in data["variants"]] == logs


@pytest.mark.slow
def test_the_same_grid_with_eval_scores_the_base_model_once_and_each_variant(tmp_path, monkeypatch, tiny_model_dir):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("PYTHONPATH", f"{REPO / 'src'}:{REPO}")
    assert main(["sweep", SMOKE, *COMMON, "grpo.max_steps=1", *GRID, "--eval", "--parallel", "2"]) == 0
    data = json.loads((tmp_path / "sweeps" / "smoke" / "summary.json").read_text())
    assert len(data["base_evals"]) == 1 and data["base_evals"][0]["eval"]["n"] == 4
    for row in data["variants"]:
        assert row["pass1_base"] is not None and row["pass1_final"] is not None
        assert json.loads((tmp_path / row["run_dir"] / "eval" / "final.json").read_text())["base"]["pass@1"] == \
            row["pass1_base"]
    assert (tmp_path / "sweeps" / "smoke" / "report" / "report.html").is_file()


@pytest.mark.slow
def test_a_sweep_killed_mid_training_continues_with_resume(tmp_path, tiny_model_dir):
    env = {**os.environ, "PYTHONPATH": f"{REPO / 'src'}:{REPO}"}
    command = [sys.executable, "-m", "ahazero", "sweep", SMOKE, *COMMON, "grpo.max_steps=6", "grpo.save_steps=1",
               "--grid", "grpo.learning_rate=1e-4,1e-3", "--parallel", "2", "--no-report"]
    sweep = subprocess.Popen(command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             text=True)
    runs = [tmp_path / "runs" / f"smoke-learning_rate_{v}" for v in ("1e-4", "1e-3")]
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and not all(
            len([r for r in read_metrics(run / "metrics.jsonl") if "reward" in r]) >= 2 for run in runs):
        time.sleep(0.5)
    sweep.send_signal(signal.SIGINT)
    output = sweep.communicate(timeout=120)[0]
    assert sweep.returncode == 130, output
    assert "interrupted" in output and "--resume" in output
    summary = json.loads((tmp_path / "sweeps" / "smoke" / "summary.json").read_text())
    assert [r["status"] for r in summary["variants"]] == ["interrupted", "interrupted"]

    resumed = subprocess.run([*command, "--resume"], cwd=tmp_path, env=env, capture_output=True, text=True,
                             timeout=600)
    assert resumed.returncode == 0, resumed.stdout + resumed.stderr
    for run in runs:
        assert sorted({r["step"] for r in read_metrics(run / "metrics.jsonl") if "reward" in r}) == [1, 2, 3, 4, 5, 6]
        assert json.loads((run / "run.json").read_text())["resumed_from_step"] >= 1
