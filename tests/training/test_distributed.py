"""Two CPU processes (gloo) train the tiny model and leave one consistent run directory.

The test starts the two local processes with torchrun, which is what ``ahazero train --gpus 2``
runs through ``accelerate launch`` (``test_multinode.py`` goes through that whole path):
rank-aware run-directory writes and traces gathered from every process.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import yaml
from helpers import REPO
from run_dir_fakes import hold_lock

from ahazero.observe.rundir import read_metrics
from ahazero.training.launch import STRATEGIES, plan_launch


def test_two_processes_write_one_consistent_run_directory(tmp_path, tiny_model_dir):
    config = yaml.safe_load((REPO / "configs" / "smoke.yaml").read_text())
    config.update(output_root=str(tmp_path / "runs"), logging={"report_to": []})
    config["grpo"].update(max_steps=2, save_steps=1, max_completion_length=12)
    path = tmp_path / "dist.yaml"
    path.write_text(yaml.safe_dump(config))
    env = dict(os.environ, PYTHONPATH=f"{REPO / 'src'}{os.pathsep}{REPO}", OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29533",
           "-m", "ahazero", "train", str(path)]
    result = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600, check=False)
    assert result.returncode == 0, result.stderr[-3000:]

    run = tmp_path / "runs" / "smoke"
    info = json.loads((run / "run.json").read_text())
    assert info["num_processes"] == 2
    assert [r["step"] for r in read_metrics(run / "metrics.jsonl") if "reward" in r] == [1, 2]
    per_device, generations = config["grpo"]["per_device_train_batch_size"], config["grpo"]["num_generations"]
    for step in (1, 2):
        records = [json.loads(x) for x in (run / "traces" / f"step-{step:06d}.jsonl").read_text().splitlines()]
        assert len(records) == 2 * per_device  # both processes' completions, each once
        assert set(Counter(r["prompt_id"] for r in records).values()) == {generations}
        for r in records:  # rewards line up with the completion they score
            full = r["prefill"] + r["completion"]
            assert r["rewards"]["think_format"] == (1.0 if r["formatted"] else 0.0)
            assert (full.count("</think>") == 1 and full.lstrip().startswith("<think>")) or not r["formatted"]
    assert sorted(p.name for p in (run / "checkpoints").glob("checkpoint-*")) == ["checkpoint-1", "checkpoint-2"]
    assert (run / "model" / "config.json").is_file()

    # resume the two-process run in one process, for one more step
    more = [sys.executable, "-m", "ahazero", "train", str(path), "grpo.max_steps=3", "--resume"]
    result = subprocess.run(more, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    assert [r["step"] for r in read_metrics(run / "metrics.jsonl") if "reward" in r] == [1, 2, 3]
    assert len((run / "traces" / "step-000003.jsonl").read_text().splitlines()) == per_device


def test_a_locked_run_ends_every_process_with_the_error_instead_of_waiting(tmp_path, tiny_model_dir):
    config = yaml.safe_load((REPO / "configs" / "smoke.yaml").read_text())
    config.update(output_root=str(tmp_path / "runs"), logging={"report_to": []})
    path = tmp_path / "dist.yaml"
    path.write_text(yaml.safe_dump(config))
    holder = hold_lock(tmp_path / "runs" / "smoke")  # another `ahazero train` writing this run
    env = dict(os.environ, PYTHONPATH=f"{REPO / 'src'}{os.pathsep}{REPO}", OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port", "29534",
           "-m", "ahazero", "train", str(path)]
    try:
        result = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300, check=False)
    finally:
        holder.kill()
        holder.wait(10)
    assert result.returncode != 0
    refusals = result.stderr.count(f"is being written by another process (pid {holder.pid} on")
    assert refusals == 2, result.stderr[-3000:]  # the main process and the other one, each with the error
    assert not (tmp_path / "runs" / "smoke" / "run.json").exists()


def test_shipped_strategy_configs_leave_processes_and_machines_to_the_command_line(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # found from any working directory in a source checkout
    real = importlib.util.find_spec
    monkeypatch.setattr("importlib.util.find_spec",  # as if deepspeed were installed
                        lambda name, *args: object() if name == "deepspeed" else real(name, *args))
    for strategy in STRATEGIES:
        plan = plan_launch(gpus=2, strategy=strategy)
        data = yaml.safe_load(Path(plan.accelerate_config).read_text())
        assert "num_processes" not in data and data["num_machines"] == 1 and data["machine_rank"] == 0
        assert plan.num_processes == 2 and plan.warnings == ()  # each saves a final model `ahazero eval` loads
