"""The command line: bad configs exit non-zero within seconds, naming the valid choices."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from helpers import REPO


def ahazero(*args, timeout=120):
    """``python -m ahazero ARGS`` in the test's working folder (``configs/`` is the checkout's; ``runs/`` its own)."""
    env = dict(os.environ, PYTHONPATH=f"{REPO / 'src'}{os.pathsep}{REPO}")
    return subprocess.run([sys.executable, "-m", "ahazero", *args], env=env, capture_output=True,
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

    monkeypatch.setattr(subprocess, "run", fake_run)
    monkeypatch.delenv("LOCAL_RANK", raising=False)
    monkeypatch.delenv("ACCELERATE_LAUNCHED", raising=False)
    assert cli.main(["train", "configs/smoke.yaml", "--gpus", "2", "--preset", "lora", "seed=1"]) == 0
    cmd = seen["cmd"]
    assert cmd[cmd.index("train") + 1:] == ["configs/smoke.yaml", "seed=1", "--preset", "lora"]
    assert cmd[cmd.index("--num_processes") + 1] == "2"


SMOKE = str(REPO / "configs" / "smoke.yaml")


def run_main(capsys, *args) -> tuple[int, str]:
    from ahazero.cli import main

    code = main(list(args))
    return code, capsys.readouterr().err


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("grpo.per_device_train_batch_size=0", "config error: grpo.per_device_train_batch_size: 0 is out of range"),
        ("grpo.per_device_train_batch_size=-8", "config error: grpo.per_device_train_batch_size: -8 is out of range"),
        ("grpo.max_completion_length=-1", "config error: grpo.max_completion_length: -1 is out of range"),
        ("grpo.learning_rate=.nan", "config error: grpo.learning_rate: nan is out of range"),
        ("grpo.learning_rate=.inf", "config error: grpo.learning_rate: inf is out of range"),
        ("grpo.learning_rate=-1", "config error: grpo.learning_rate: -1 is out of range"),
        ("grpo.max_steps=-5", "config error: grpo.max_steps: -5 is out of range"),
        ("grpo.max_steps=0", "config error: grpo.max_steps: 0 is out of range"),
        ("grpo.num_generations=0", "config error: grpo.num_generations: 0 is out of range"),
        ("rewards.0.weight=.nan", "config error: bad value for 'rewards.0.weight' (nan): Input should be a finite"),
        ("rewards.0.weight=.inf", "config error: bad value for 'rewards.0.weight' (inf): Input should be a finite"),
        ("rewards.0.name=os:system", "config error: rewards.0: 'os:system' is a function of Python's standard library"),
        ("seed=[", "config error: override 'seed=[' is not valid YAML: line 1, column 2:"),
        ("name=" + "a" * 300, "config error: bad value for 'name' ('aaa"),
        ("output_root=/etc", "config error: output_root: the run directory /etc/smoke would be inside the system"),
        ("task={name: local, train_path: /dev/zero}", "config error: task.train_path: /dev/zero is a character device"),
    ],
)
def test_check_refuses_each_mistake_on_one_line(capsys, monkeypatch, tmp_path, override, message):
    monkeypatch.chdir(tmp_path)
    code, err = run_main(capsys, "check", SMOKE, "--device", "cpu", override)
    assert code == 2
    lines = [line for line in err.splitlines() if line.startswith("config error")]
    assert len(lines) == 1 and lines[0].startswith(message), err


def test_check_all_weights_zero(capsys, monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    code, err = run_main(capsys, "check", SMOKE, "--device", "cpu", "rewards.0.weight=0", "rewards.1.weight=0",
                         "rewards.2.weight=0")
    assert code == 2 and "config error: rewards: every weight is 0" in err


def test_check_on_a_binary_file_and_an_alias_bomb(capsys, tmp_path):
    binary = tmp_path / "model.yaml"
    binary.write_bytes(bytes(range(256)) * 4)
    code, err = run_main(capsys, "check", str(binary))
    assert code == 2 and f"config error: {binary} is not a YAML text file" in err
    bomb = tmp_path / "bomb.yaml"
    levels = "".join(f"    {c}: &{c} [{', '.join([f'*{p}'] * 9)}]\n" for p, c in zip("abcdefgh", "bcdefghi"))
    bomb.write_text("name: bomb\nmodel: {name_or_path: tiny}\ntask: {name: arithmetic}\nrewards: [{name: accuracy}]\n"
                    "grpo:\n  generation_kwargs:\n    a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + levels)
    code, err = run_main(capsys, "check", str(bomb))
    assert code == 2 and f"config error: {bomb}: its YAML aliases expand to more than 100000 values" in err


def test_check_with_a_reward_module_that_exits(capsys, monkeypatch, tmp_path):
    (tmp_path / "exiting_rewards.py").write_text("import sys\nsys.exit(3)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.chdir(tmp_path)
    code, err = run_main(capsys, "check", SMOKE, "--device", "cpu", "rewards.2.name=exiting_rewards:score")
    assert code == 2
    assert ("config error: rewards.2: loading 'exiting_rewards:score' stopped: module 'exiting_rewards' raised "
            "SystemExit(3)") in err


def test_eval_errors_before_the_model_loads(capsys, monkeypatch, tmp_path):
    import ahazero.models.loading as loading

    def no_load(*args, **kwargs):
        raise AssertionError("the model was loaded")

    monkeypatch.setattr(loading, "load_model_and_tokenizer", no_load)
    monkeypatch.chdir(tmp_path)
    checkpoint = tmp_path / "runs" / "smoke" / "checkpoints" / "checkpoint-2"
    checkpoint.mkdir(parents=True)
    (checkpoint / "trainer_state.json").write_text("{}")
    code, err = run_main(capsys, "eval", SMOKE, "--model", "step-999")
    assert code == 2 and "eval error: --model step-999: no checkpoint for step 999" in err
    assert "this run has: base, latest (step-2), step-2" in err
    code, err = run_main(capsys, "eval", SMOKE, "--model", "step-abc")
    assert code == 2 and "eval error: --model step-abc: a checkpoint is named step-N" in err
    code, err = run_main(capsys, "eval", SMOKE, "--model", "latest", "name=smokey")
    assert code == 2 and "there is no run directory runs/smokey (name=smokey); runs in runs/: smoke;" in err
    for limit in ("0", "-1"):
        code, err = run_main(capsys, "eval", SMOKE, "--model", "base", "--limit", limit)
        assert code == 2 and f"eval error: --limit must be at least 1 (got {limit})" in err
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == ["smoke"]
