"""The sweep's pieces: grid parsing and names, the subprocess runner, the summary's numbers."""

from __future__ import annotations

import json
import sys
import time

import pytest

from ahazero.config.schema import ConfigError
from ahazero.experiments.grid import expand, parse_grid, split_values
from ahazero.experiments.runner import Job, SweepInterrupted, run_jobs
from ahazero.experiments.summary import target, variant_row

PY = sys.executable


def test_values_are_yaml_and_brackets_keep_their_commas():
    axis = parse_grid(["task.operators=[+, -],['*', /]", "grpo.learning_rate=1e-6,5.0e-6",
                       "task.calibration=a/b.jsonl,null"])
    assert axis[0].values == (["+", "-"], ["*", "/"])
    assert axis[1].values == (1e-6, 5e-6)
    assert axis[2].values == ("a/b.jsonl", None)
    assert split_values("{a: 1, b: [2, 3]},x") == ["{a: 1, b: [2, 3]}", "x"]


@pytest.mark.parametrize(("spec", "fragment"), [
    ("grpo.temperature", "must look like KEY=V1,V2"),
    ("grpo.temperature=", "must look like KEY=V1,V2"),
    ("grpo.temperature=1.0,,1.2", "has an empty value"),
    ("grpo.temperature=1.0,1.0", "repeats a value"),
    ("name=a,b", "the sweep sets 'name'"),
    ("task.operators=[*, /]", "not valid YAML.*quote"),
])
def test_malformed_grid_flags_are_named(spec, fragment):
    with pytest.raises(ConfigError, match=fragment):
        parse_grid([spec])
    with pytest.raises(ConfigError, match="given twice"):
        parse_grid(["seed=1", "seed=2"])


def test_variant_names_are_readable_valid_and_distinct():
    axes = parse_grid(["task.calibration=calibration/aha.jsonl,null", "rewards.1.weight=0,0.1",
                       "rewards.2.weight=0.1", "task.operators=[+, -],[+]"])
    names = [v.run_name for v in expand(axes, sweep="aha")]
    assert names[0] == "aha-calibration_aha-rewards.1.weight_0-rewards.2.weight_0.1-operators_v1"
    assert len(set(names)) == len(names) == 8
    long = expand(parse_grid(["grpo.learning_rate=" + ",".join(f"{i}e-6" for i in range(1, 3))]), sweep="x" * 110)
    assert [v.label for v in long] == ["v01", "v02"]
    seeds = expand(parse_grid(["grpo.temperature=1.0"]), sweep="s", seeds=[3])
    assert seeds[0].label == "temperature_1.0" and seeds[0].overrides[-1] == "seed=3"  # one seed: no suffix


def _job(tmp_path, name, code, seconds=0.0):
    script = f"import time, json; time.sleep({seconds}); raise SystemExit({code})"
    return Job(name, [[PY, "-c", f"print('{name} ran')"], [PY, "-c", script]], tmp_path / f"{name}.log")


def test_the_runner_keeps_k_running_and_a_failure_ends_only_its_own_job(tmp_path):
    stamps = tmp_path / "stamps"
    stamps.mkdir()
    code = ("import time, pathlib, sys; p = pathlib.Path(sys.argv[1]); p.write_text(str(time.time())); "
            "time.sleep(0.6); p.with_suffix('.end').write_text(str(time.time()))")
    jobs = [Job(f"j{i}", [[PY, "-c", code, str(stamps / f"j{i}.start")]], tmp_path / f"j{i}.log") for i in range(4)]
    jobs.append(_job(tmp_path, "bad", 3))
    finished = []
    run_jobs(jobs, parallel=2, on_finish=lambda j: finished.append(j.name), poll_seconds=0.05)
    assert [j.exit_code for j in jobs] == [0, 0, 0, 0, 3]
    assert sorted(finished) == ["bad", "j0", "j1", "j2", "j3"]
    spans = [(float((stamps / f"j{i}.start").read_text()), float((stamps / f"j{i}.end").read_text()))
             for i in range(4)]
    for t, _ in spans:  # at no start were more than 2 of them running
        assert sum(1 for a, b in spans if a <= t < b) <= 2
    assert jobs[4].failed_command[0] == PY and "bad ran" in (tmp_path / "bad.log").read_text()
    assert (tmp_path / "bad.log").read_text().count("\n# ") == 2  # a header per command


def test_sigterm_to_the_sweep_stops_its_jobs(tmp_path):
    kill = "import os, signal, time; os.kill(os.getppid(), signal.SIGTERM); time.sleep(30)"
    jobs = [Job("killer", [[PY, "-c", kill]], tmp_path / "k.log"), _job(tmp_path, "later", 0)]
    started = time.monotonic()
    with pytest.raises(SweepInterrupted):
        run_jobs(jobs, parallel=1, grace_seconds=5)
    assert time.monotonic() - started < 20
    assert jobs[0].exit_code == -2 and jobs[1].exit_code is None  # stopped; never started


def _run(tmp_path, rows, runtime=300.0, final=None):
    run = tmp_path / "run"
    (run / "model").mkdir(parents=True)
    (run / "model" / "config.json").write_text("{}")
    lines = [json.dumps({"step": s, **{f"behaviour/{k}": v for k, v in r.items()}}) for s, r in enumerate(rows, 1)]
    lines.append(json.dumps({"step": len(rows), "train_runtime": runtime}))
    (run / "metrics.jsonl").write_text("\n".join(lines) + "\n")
    if final:
        (run / "eval").mkdir()
        (run / "eval" / "final.json").write_text(json.dumps(final))
    return run


def test_format_90_step_growth_and_target(tmp_path):
    rows = [{"format_rate": 0.3, "think_tokens_closed_mean": 50.0}, {"format_rate": 0.92, "think_tokens_closed_mean": 18.0},
            {"format_rate": 0.85, "think_tokens_closed_mean": 20.0}, {"format_rate": 1.0, "think_tokens_closed_mean": 30.0}]
    base = {"pass@1": 0.3, "think_tokens_closed_mean": 29.6}
    final = {"pass@1": 0.49, "think_tokens_closed_mean": 31.0, "n": 200}
    row = variant_row(_run(tmp_path, rows, final=final), label="v", values={}, seed=None, base=base)
    assert (row["format90_step"], row["think_closed_fmt90"], row["think_closed_end"]) == (2, 18.0, 30.0)
    assert row["think_closed_growth"] == pytest.approx(30 / 18)
    assert row["target"] == {"gain": False, "growth": True, "above_base": True, "time": True, "met": False}
    assert target({**row, "pass1_final": 0.5})["met"] is True  # 20 points exactly is enough
    assert target({**row, "think_closed_eval_final": 29.6})["above_base"] is False
    assert target({**row, "train_seconds": 901.0})["time"] is False


def test_a_run_that_never_formats_has_no_growth_number_rather_than_a_made_up_one(tmp_path):
    row = variant_row(_run(tmp_path, [{"format_rate": 0.2, "think_tokens_closed_mean": 10.0}]), label="v",
                      values={}, seed=None, base=None)
    assert row["format90_step"] is None and row["think_closed_growth"] is None
    assert row["target"]["growth"] is None and row["target"]["met"] is None
    failed = variant_row(tmp_path / "nothing", label="w", values={}, seed=None, base=None, exit_code=1)
    assert failed["status"] == "failed (exit 1)" and failed["steps"] is None


def _alive(pid: int) -> bool:
    try:
        state = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the parent-death signal is Linux's")
def test_a_killed_sweep_leaves_no_job_running(tmp_path):
    import os
    import signal
    import subprocess

    pid_file = tmp_path / "child.pid"
    child = f"import os, time; open({str(pid_file)!r}, 'w').write(str(os.getpid())); time.sleep(60)"
    parent = ("import sys; from pathlib import Path; from ahazero.experiments.runner import Job, run_jobs; "
              f"run_jobs([Job('c', [[sys.executable, '-c', {child!r}]], Path({str(tmp_path / 'c.log')!r}))], "
              "parallel=1)")
    sweep = subprocess.Popen([PY, "-c", parent])
    deadline = time.monotonic() + 60
    while not pid_file.exists() or not pid_file.read_text():
        assert time.monotonic() < deadline and sweep.poll() is None
        time.sleep(0.1)
    pid = int(pid_file.read_text())
    assert _alive(pid)
    os.kill(sweep.pid, signal.SIGKILL)  # no chance to clean up
    sweep.wait()
    deadline = time.monotonic() + 10
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(pid)


def test_a_resumed_run_counts_the_time_of_its_steps_not_only_its_last_session(tmp_path):
    rows = [{"format_rate": 1.0, "think_tokens_closed_mean": 10.0}] * 3
    run = _run(tmp_path, rows, runtime=5.0)
    lines = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    for line, seconds in zip(lines, (2.0, 3.0, 4.0)):
        line["step_time"] = seconds
    (run / "metrics.jsonl").write_text("\n".join(map(json.dumps, lines)) + "\n")
    assert variant_row(run, label="v", values={}, seed=None, base=None)["train_seconds"] == 5.0
    (run / "run.json").write_text(json.dumps({"history": [{"command": ["a"]}, {"command": ["a", "--resume"]}]}))
    row = variant_row(run, label="v", values={}, seed=None, base=None)
    assert (row["train_seconds"], row["train_seconds_source"]) == (9.0, "step_time")
