"""Several machines: launch options, their errors, and two "machines" training one run on this CPU.

The two machines are two ``ahazero train`` commands, each with one process and its own
``--machine-rank``, meeting over gloo at 127.0.0.1 exactly as two hosts would meet at the
rank-0 host's address.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections import Counter
from statistics import fmean

import pytest
import yaml
from helpers import REPO

from ahazero.config.schema import ConfigError
from ahazero.observe.rundir import RunDir, RunDirError, read_metrics
from ahazero.training.launch import launch_command, plan_launch
from ahazero.training.processes import agreed_resume_step, machine_count


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run_machines(commands: list[list[str]], *, cwd, env, timeout: int = 300) -> list[subprocess.CompletedProcess]:
    """Start every machine's command at once; if one fails, stop the others instead of waiting on them.

    Output goes to files: a full pipe would block one machine while the other waits for it.
    """
    logs = [(cwd / f"machine-{i}.out", cwd / f"machine-{i}.err") for i in range(len(commands))]
    procs = []
    for cmd, (out, err) in zip(commands, logs):
        with out.open("w") as stdout, err.open("w") as stderr:  # the child keeps its own copies
            procs.append(subprocess.Popen(cmd, cwd=cwd, env=env, stdout=stdout, stderr=stderr))
    results = []
    try:
        for proc, cmd, (out, err) in zip(procs, commands, logs):
            proc.wait(timeout=timeout)
            results.append(subprocess.CompletedProcess(cmd, proc.returncode, out.read_text(), err.read_text()))
            if proc.returncode != 0:
                break
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    return results


def _traces(run, step: int) -> list[dict]:
    return [json.loads(x) for x in (run / "traces" / f"step-{step:06d}.jsonl").read_text().splitlines()]


@pytest.fixture
def smoke(tmp_path, tiny_model_dir):
    """A 12-token smoke config writing under tmp_path, the environment and the plain train command."""
    config = yaml.safe_load((REPO / "configs" / "smoke.yaml").read_text())
    config.update(output_root=str(tmp_path / "runs"), logging={"report_to": []})
    config["grpo"].update(max_steps=2, save_steps=1, max_completion_length=12)
    path = tmp_path / "multi.yaml"
    path.write_text(yaml.safe_dump(config))
    env = dict(os.environ, PYTHONPATH=f"{REPO / 'src'}{os.pathsep}{REPO}", OMP_NUM_THREADS="1",
               CUDA_VISIBLE_DEVICES="")
    return config, env, [sys.executable, "-m", "ahazero", "train", str(path)]


def _two_machines(train: list[str], *extra: str, cwd, env) -> None:
    """``train`` on two machines of one process each (ranks 0 and 1), meeting at 127.0.0.1."""
    port = str(_free_port())
    machines = [[*train, *extra, "--gpus", "1", "--num-machines", "2", "--machine-rank", rank,
                 "--main-process-ip", "127.0.0.1", "--main-process-port", port] for rank in ("0", "1")]
    results = _run_machines(machines, cwd=cwd, env=env)
    for result in results:
        assert result.returncode == 0, result.stderr[-3000:]
    assert f"--num_machines 2 --machine_rank 1 --main_process_ip 127.0.0.1 --main_process_port {port}" in (
        results[1].stderr)


def _check_steps(run, config: dict, processes_per_step: dict[int, int]) -> None:
    """Each step's traces hold every process's completions once, and its metrics describe exactly them."""
    rows = {r["step"]: r for r in read_metrics(run / "metrics.jsonl") if "reward" in r}
    assert sorted(rows) == sorted(processes_per_step)  # every step once, none from the non-main machine
    per_device, generations = config["grpo"]["per_device_train_batch_size"], config["grpo"]["num_generations"]
    for step, processes in processes_per_step.items():
        records = _traces(run, step)
        assert len(records) == processes * per_device
        prompts = Counter(r["prompt_id"] for r in records)
        assert len(prompts) == processes * per_device // generations and set(prompts.values()) == {generations}
        # TRL's reward is the mean over all processes; the behaviour metrics come from the gathered traces
        assert rows[step]["reward"] == pytest.approx(fmean(r["reward"] for r in records), abs=1e-5)
        assert rows[step]["behaviour/think_tokens_mean"] == pytest.approx(
            fmean(r["thinking_tokens"] for r in records))


def test_two_machines_train_one_run_with_every_completion_once(tmp_path, smoke):
    config, env, train = smoke
    _two_machines(train, cwd=tmp_path, env=env)
    run = tmp_path / "runs" / "smoke"
    info = json.loads((run / "run.json").read_text())
    assert (info["num_processes"], info["num_machines"], len(info["history"])) == (2, 2, 1)
    _check_steps(run, config, {1: 2, 2: 2})
    assert sorted(p.name for p in (run / "checkpoints").glob("checkpoint-*")) == ["checkpoint-1", "checkpoint-2"]
    assert (run / "model" / "config.json").is_file()


@pytest.mark.slow
def test_two_machines_resume_a_one_process_run(tmp_path, smoke):
    """A checkpoint written by one process resumes on two machines (another world size)."""
    config, env, train = smoke
    first = subprocess.run([*train, "grpo.max_steps=1"], cwd=tmp_path, env=env, capture_output=True, text=True,
                           timeout=300, check=False)
    assert first.returncode == 0, first.stderr[-3000:]
    _two_machines(train, "grpo.max_steps=3", "--resume", cwd=tmp_path, env=env)
    run = tmp_path / "runs" / "smoke"
    info = json.loads((run / "run.json").read_text())
    assert (info["num_machines"], info["resumed_from_step"], len(info["history"])) == (2, 1, 2)
    _check_steps(run, config, {1: 1, 2: 2, 3: 2})


def test_launch_options_go_through_to_accelerate():
    plan = plan_launch(gpus=4, num_machines=2, machine_rank=1, main_process_ip="10.1.2.3", main_process_port=29555,
                       strategy="fsdp")
    cmd = launch_command(["configs/default.yaml", "seed=3"], plan, resume=True)
    flags = dict(zip(cmd[3:15:2], cmd[4:16:2]))
    assert flags == {"--config_file": plan.accelerate_config, "--num_processes": "8", "--num_machines": "2",
                     "--machine_rank": "1", "--main_process_ip": "10.1.2.3", "--main_process_port": "29555"}
    assert plan.accelerate_config.endswith("fsdp.yaml") and not plan.warnings
    assert cmd[-5:] == ["ahazero", "train", "configs/default.yaml", "seed=3", "--resume"]
    # one machine, several GPUs: no address needed, and accelerate picks its default port
    single = launch_command(["c.yaml"], plan_launch(gpus=2), resume=False)
    assert single[single.index("--num_processes") + 1] == "2" and single[single.index("--num_machines") + 1] == "1"
    assert "--main_process_ip" not in single and "--main_process_port" not in single
    assert plan_launch() is None and plan_launch(gpus=1, num_machines=1, machine_rank=0) is None


@pytest.mark.parametrize(("options", "message"), [
    ({"num_machines": 2}, "2 machines need --main-process-ip"),
    ({"num_machines": 2, "machine_rank": 2, "main_process_ip": "h"}, "--machine-rank is 2, out of range for 2 "
                                                                      "machines: valid machine ranks are 0-1"),
    ({"machine_rank": 1}, "--machine-rank is 1, out of range for 1 machine: valid machine rank is 0"),
    ({"num_machines": 2, "machine_rank": -1, "main_process_ip": "h"}, "--machine-rank is -1"),
    ({"main_process_ip": "10.0.0.1"}, "--main-process-ip is set but the job has one machine"),
    ({"main_process_port": 29500}, "--main-process-port applies only to a launch through accelerate"),
    ({"num_machines": 2, "main_process_ip": "node 1"}, "--main-process-ip 'node 1' is not a host name"),
    ({"num_machines": 2, "main_process_ip": "h", "main_process_port": 70000}, "--main-process-port must be a port"),
    ({"num_machines": 0}, "--num-machines must be 1 or more"),
    ({"gpus": 0}, "--gpus must be 1 or more"),
    ({"gpus": 4, "visible_gpus": 2}, "--gpus asks for 4 processes on this machine, which has 2 GPUs"),
    ({"gpus": 2, "strategy": "horovod"}, "unknown strategy 'horovod'; valid choices: ddp, fsdp, zero2, zero3"),
    ({"gpus": 2, "accelerate_config": "missing.yaml"}, "--accelerate-config: file not found: missing.yaml"),
])
def test_bad_launch_options_are_clear_errors(options, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        plan_launch(**options)


def test_an_accelerate_config_file_may_hold_the_machine_settings(tmp_path):
    cluster = tmp_path / "cluster.yaml"
    cluster.write_text(yaml.safe_dump({"distributed_type": "MULTI_GPU", "num_machines": 2, "machine_rank": 0,
                                       "main_process_ip": "10.0.0.7", "main_process_port": 29600,
                                       "num_processes": 16}))
    plan = plan_launch(accelerate_config=str(cluster), machine_rank=1)  # the flag wins over the file
    assert (plan.gpus, plan.num_machines, plan.machine_rank, plan.main_process_ip, plan.main_process_port) == (
        8, 2, 1, "10.0.0.7", 29600)
    assert plan_launch(accelerate_config=str(cluster), gpus=4).num_processes == 8
    cluster.write_text(yaml.safe_dump({"distributed_type": "MULTI_GPU", "num_machines": 2, "machine_rank": 3,
                                       "main_process_ip": "10.0.0.7"}))
    with pytest.raises(ConfigError, match=f"machine_rank in {cluster} is 3, out of range for 2 machines"):
        plan_launch(accelerate_config=str(cluster))
    cluster.write_text(yaml.safe_dump({"distributed_type": "MULTI_GPU", "num_machines": 2, "num_processes": 3,
                                       "main_process_ip": "h"}))
    with pytest.raises(ConfigError, match="num_processes 3 in .* does not divide over 2 machines"):
        plan_launch(accelerate_config=str(cluster))
    cluster.write_text("- not a mapping\n")
    with pytest.raises(ConfigError, match="is not a mapping of accelerate settings"):
        plan_launch(accelerate_config=str(cluster), gpus=2)


def test_a_config_that_would_lose_the_final_model_warns_and_missing_deepspeed_stops(tmp_path, monkeypatch):
    sharded = tmp_path / "sharded.yaml"
    sharded.write_text(yaml.safe_dump({"distributed_type": "FSDP",
                                       "fsdp_config": {"fsdp_state_dict_type": "SHARDED_STATE_DICT"}}))
    (warning,) = plan_launch(accelerate_config=str(sharded), gpus=2).warnings
    assert "SHARDED_STATE_DICT" in warning and "use FULL_STATE_DICT" in warning
    monkeypatch.setattr("importlib.util.find_spec", lambda name: None if name == "deepspeed" else object())
    with pytest.raises(ConfigError, match=r"uses DeepSpeed, which is not installed here \(pip install deepspeed"):
        plan_launch(gpus=2, strategy="zero3")


def test_the_cli_stops_before_launching_or_loading_a_model(monkeypatch, capsys):
    from ahazero import cli

    def no_launch(*args, **kwargs):
        raise AssertionError("nothing may launch")

    monkeypatch.setattr(subprocess, "run", no_launch)
    monkeypatch.setattr("ahazero.training.assemble.train", no_launch)
    monkeypatch.delenv("LOCAL_RANK", raising=False)
    monkeypatch.delenv("ACCELERATE_LAUNCHED", raising=False)
    assert cli.main(["train", "configs/smoke.yaml", "--gpus", "2", "--num-machines", "2"]) == 2
    assert "2 machines need --main-process-ip" in capsys.readouterr().err
    assert cli.main(["train", "configs/smoke.yaml", "--num-machines", "2", "--machine-rank", "5",
                     "--main-process-ip", "10.0.0.1"]) == 2
    assert "valid machine ranks are 0-1" in capsys.readouterr().err


def test_processes_that_see_different_run_directories_stop_together(tmp_path):
    run_dir = RunDir(tmp_path / "run")
    # machine 1 sees a checkpoint, machine 0 (this one) sees a fresh folder: not one shared filesystem
    with pytest.raises(RunDirError, match="process 0 sees a fresh start, process 1 sees checkpoint-10; on several "
                                          "machines the run directory must lie on a filesystem every machine"):
        agreed_resume_step(run_dir, resume=True, gather=lambda items: items + [("step", 10)])
    # the same error everywhere is that error, raised on every process
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "metrics.jsonl").write_text('{"step": 1}\n')
    with pytest.raises(RunDirError, match="already holds a run"):
        agreed_resume_step(run_dir, resume=False, gather=lambda items: items * 2)
    assert machine_count(2, {"LOCAL_WORLD_SIZE": "1"}) == 2 and machine_count(4, {"LOCAL_WORLD_SIZE": "4"}) == 1

