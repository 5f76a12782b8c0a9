"""The command line: bad configs exit non-zero within seconds, naming the valid choices."""

from __future__ import annotations

import os
import subprocess
import sys

from helpers import REPO


def ahazero(*args, timeout=120):
    env = dict(os.environ, PYTHONPATH=f"{REPO / 'src'}{os.pathsep}{REPO}")
    return subprocess.run([sys.executable, "-m", "ahazero", *args], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=timeout, check=False)


def test_unknown_reward_name_fails_fast_with_choices():
    result = ahazero("train", "configs/smoke.yaml", "rewards.0.name=acuracy", "output_root=/nonexistent-ok")
    assert result.returncode == 2
    assert "rewards.0.name: unknown reward 'acuracy'" in result.stderr
    assert "accuracy, countdown, format_gate, language_consistency, think_format" in result.stderr


def test_unknown_grpo_key_fails_fast_with_choices():
    result = ahazero("train", "configs/smoke.yaml", "grpo.learning_rat=1e-6")
    assert result.returncode == 2
    assert "unknown key 'grpo.learning_rat' (did you mean 'learning_rate'" in result.stderr
    assert "num_generations" in result.stderr  # the valid keys are listed


def test_check_prints_resolved_config_with_cpu_profile():
    result = ahazero("check", "configs/default.yaml", "--device", "cpu")
    assert result.returncode == 0, result.stderr
    assert "max_steps: 2" in result.stdout  # the CPU profile was applied
    assert "CPU profile" in result.stderr


def test_command_line_overrides_win_over_the_cpu_profile():
    result = ahazero("check", "configs/default.yaml", "--device", "cpu", "grpo.max_steps=5", "name=mine")
    assert result.returncode == 0, result.stderr
    assert "max_steps: 5" in result.stdout and "name: mine" in result.stdout
    assert "max_completion_length: 48" in result.stdout  # the rest of the profile still applies
    assert "cpu_overrides: {}" in result.stdout  # applied once
    # on a GPU the profile is not applied and stays in the config for the record
    gpu = ahazero("check", "configs/default.yaml", "--device", "cuda", "grpo.max_steps=5")
    assert "max_steps: 5" in gpu.stdout and "name: default\n" in gpu.stdout and "default-cpu" in gpu.stdout


def test_listings():
    from ahazero.cli import main

    assert main(["rewards"]) == 0
    assert main(["tasks"]) == 0
    assert main(["models"]) == 0
    assert main(["fetch-model", "nope"]) == 2


def test_missing_config_file(capsys):
    from ahazero.cli import main

    assert main(["train", "no/such.yaml"]) == 2
    assert "config file not found" in capsys.readouterr().err


def test_several_gpus_relaunch_with_the_same_presets_and_overrides(monkeypatch):
    """`--gpus N` re-runs `ahazero train` under accelerate with the presets as flags, not expanded."""
    from ahazero import cli

    seen = {}

    def fake_run(cmd, check):
        seen["cmd"] = cmd
        return subprocess.CompletedProcess(cmd, 0)

    monkeypatch.chdir(REPO)
    monkeypatch.setattr(subprocess, "run", fake_run)
    monkeypatch.delenv("LOCAL_RANK", raising=False)
    monkeypatch.delenv("ACCELERATE_LAUNCHED", raising=False)
    assert cli.main(["train", "configs/smoke.yaml", "--gpus", "2", "--preset", "lora", "seed=1"]) == 0
    cmd = seen["cmd"]
    assert cmd[cmd.index("train") + 1:] == ["configs/smoke.yaml", "seed=1", "--preset", "lora"]
    assert cmd[cmd.index("--num_processes") + 1] == "2"
