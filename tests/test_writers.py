"""One writer per run directory, sweep folder and output file, on the tiny model: a second writer is refused in
one line naming the first (pid, host, command, start time), and nothing the first writes is removed, renamed or
overwritten.

The races run real processes: either two commands started together, or a lock held by a child process (as
tests/training/test_run_dir_safety.py does).
"""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from helpers import REPO, base_config
from run_dir_fakes import hold_lock

from ahazero.cli import build_parser, main
from ahazero.models import loading
from ahazero.observe.run_lock import RunLock, RunLockedError, claim_output, lock_holder
from ahazero.observe.run_repair import repair_traces
from ahazero.observe.rundir import read_metrics

FAKE = REPO / "tests" / "experiments" / "fake_ahazero.py"
GRPO = {"num_generations": 2, "per_device_train_batch_size": 2, "max_steps": 2, "save_steps": 1,
        "max_completion_length": 4, "gradient_checkpointing": False}
FILE_LOCKER = """
import sys, time
from ahazero.observe.run_lock import RunLock
RunLock.for_file(sys.argv[1]).acquire()
print("locked", flush=True)
time.sleep(120)
"""


def env() -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO / "src"), str(REPO)]), OMP_NUM_THREADS="1")


def hold_file_lock(path: Path) -> subprocess.Popen:
    """Another process writing the output file ``path`` (it holds its lock until killed)."""
    child = subprocess.Popen([sys.executable, "-c", FILE_LOCKER, str(path)], stdout=subprocess.PIPE, text=True,
                             env=env())
    assert child.stdout.readline().strip() == "locked"
    return child


@pytest.fixture
def holders():
    """Processes a test starts to hold locks; killed at the end."""
    started: list[subprocess.Popen] = []
    yield started
    for child in started:
        child.kill()
        child.wait(10)


def write_config(tmp_path: Path, name: str = "t", **changes) -> str:
    data = base_config(name=name, output_root=str(tmp_path / "runs"), logging={"report_to": []}, grpo=dict(GRPO))
    data.update(changes)
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data))
    return str(path)


def fingerprint(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file() and p.name != ".lock"}


def refusal(capsys, pid: int) -> str:
    err = capsys.readouterr().err
    assert "Traceback" not in err
    line = [x for x in err.splitlines() if x.strip()][-1]
    assert f"is being written by another process (pid {pid} on {socket.gethostname()}, since " in line, err
    assert "running `" in line
    return line


@pytest.fixture
def no_model_loads(monkeypatch):
    monkeypatch.setattr(loading, "load_model_and_tokenizer", lambda *a, **k: pytest.fail("a model loaded"))


# --- the lock itself --------------------------------------------------------------------------


def test_the_refusal_names_pid_host_start_time_and_command(tmp_path, holders):
    holders.append(hold_lock(tmp_path / "run"))
    with pytest.raises(RunLockedError) as err:
        RunLock(tmp_path / "run").acquire()
    message = str(err.value)
    assert message.startswith(f"run 'run' ({tmp_path / 'run'}) is being written by another process (pid "
                              f"{holders[0].pid} on {socket.gethostname()}, since ")
    assert "running `python -c" in message and message.endswith("or choose another name (name=<new>)")
    assert RunLock(tmp_path / "run").holder().startswith(f"pid {holders[0].pid} ")
    with pytest.raises(RunLockedError):
        RunLock(tmp_path / "run").check_free()
    assert lock_holder(json.dumps({"pid": 1, "host": "h", "started_at": "t",
                                   "command": ["/x/ahazero/__main__.py", "sweep", "a b.yaml"]})) == \
        "pid 1 on h, since t, running `ahazero sweep 'a b.yaml'`"


def test_the_lock_is_reentrant_within_a_process_and_freed_by_the_last_holder(tmp_path):
    outer = RunLock(tmp_path).acquire()
    inner = RunLock(tmp_path).acquire()
    inner.release()
    assert json.loads((tmp_path / ".lock").read_text())["pid"] == os.getpid()  # still held by outer
    code = "import sys; from ahazero.observe.run_lock import RunLock; RunLock(sys.argv[1]).acquire()"
    busy = subprocess.run([sys.executable, "-c", code, str(tmp_path)], env=env(), capture_output=True, text=True)
    assert busy.returncode == 1 and "RunLockedError" in busy.stderr
    outer.release()
    assert (tmp_path / ".lock").read_text() == ""
    free = subprocess.run([sys.executable, "-c", code, str(tmp_path)], env=env(), capture_output=True, text=True)
    assert free.returncode == 0, free.stderr


def test_an_output_lock_leaves_nothing_behind_and_locks_again(tmp_path, holders):
    out = tmp_path / "new" / "deeper" / "s.jsonl"
    with RunLock.for_file(out) as lock:
        assert lock.path == out.parent / ".s.jsonl.lock" and lock.path.is_file()
    assert not (tmp_path / "new").exists()  # the folders made for the lock went with it
    holders.append(hold_file_lock(out))
    with pytest.raises(RunLockedError, match=rf"{out} is being written by another process \(pid {holders[0].pid} "
                                             r".*or give another --out"):
        claim_output([out])
    holders.pop().kill()
    with claim_output([out]):  # its holder ended: free again
        out.write_text("{}\n")
    assert sorted(p.name for p in out.parent.iterdir()) == ["s.jsonl"]


def test_empty_root_keeps_the_lock_file_it_holds(tmp_path):
    (tmp_path / "metrics.jsonl").write_text('{"step": 1}\n')
    (tmp_path / "traces").mkdir()
    with pytest.raises(RuntimeError, match="needs the lock"):
        RunLock(tmp_path).empty_root()
    with RunLock(tmp_path) as lock:
        lock.empty_root()
        assert sorted(p.name for p in tmp_path.iterdir()) == [".lock"]


# --- stages -----------------------------------------------------------------------------------


def stages_config(tmp_path: Path, name: str = "st", **grpo) -> str:
    return write_config(tmp_path, name, grpo={**GRPO, **grpo}, stages=[{"name": "rl", "kind": "grpo", "eval": False}])


def started_stage(tmp_path: Path) -> Path:
    """A stages run stopped in its grpo stage before the first checkpoint (metrics logged, no checkpoint)."""
    root = tmp_path / "runs" / "st"
    stage = root / "rl"
    stage.mkdir(parents=True)
    (root / "config.yaml").write_text("name: st\n")
    (stage / "metrics.jsonl").write_text('{"step": 1, "reward": 0.5}\n')
    (stage / "config.yaml").write_text("name: rl\n")
    return stage


def test_stages_resume_while_the_pipeline_runs_is_refused_and_removes_nothing(tmp_path, capsys, holders,
                                                                             no_model_loads):
    config = stages_config(tmp_path)
    started_stage(tmp_path)
    before = fingerprint(tmp_path / "runs")
    holders.append(hold_lock(tmp_path / "runs" / "st"))  # the pipeline, training its grpo stage
    assert main(["stages", config, "--resume"]) == 2
    line = refusal(capsys, holders[0].pid)
    assert line.startswith(f"run directory error: stages run 'st' ({tmp_path / 'runs' / 'st'}) is being written")
    assert fingerprint(tmp_path / "runs") == before
    assert main(["stages", config, "--report"]) == 2  # the running pipeline writes its own report
    refusal(capsys, holders[0].pid)
    assert not (tmp_path / "runs" / "st" / "report.md").exists()


def test_stages_resume_while_a_stage_is_trained_by_another_command_leaves_the_stage_alone(tmp_path, capsys, holders,
                                                                                         no_model_loads):
    config = stages_config(tmp_path)
    stage = started_stage(tmp_path)
    before = fingerprint(stage)
    holders.append(hold_lock(stage))  # `ahazero train` of the stage's own config
    assert main(["stages", config, "--resume"]) == 2
    assert refusal(capsys, holders[0].pid).startswith(f"run directory error: run 'rl' ({stage}) is being written")
    assert fingerprint(stage) == before


def test_a_resumed_stage_without_a_checkpoint_starts_again_in_its_locked_folder(tmp_path, tiny_model_dir, caplog):
    config = stages_config(tmp_path)
    stage = started_stage(tmp_path)
    assert main(["stages", config, "--resume"]) == 0
    assert "stage rl: no checkpoint to resume from; emptying" in caplog.text
    assert [r["step"] for r in read_metrics(stage / "metrics.jsonl") if "reward" in r] == [1, 2]
    assert (stage / ".lock").is_file() and (stage / "stage.json").is_file()


def test_two_stages_commands_started_together_one_runs_one_is_refused(tmp_path, tiny_model_dir):
    config = stages_config(tmp_path, "race", max_steps=12, save_steps=4)
    procs = [subprocess.Popen([sys.executable, "-m", "ahazero", "stages", config, *extra], cwd=tmp_path, env=env(),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for extra in ([], ["--resume"])]
    results = [(p.wait(300), *p.communicate()) for p in procs]
    assert sorted(code for code, _, _ in results) == [0, 2], [err[-1500:] for _, _, err in results]
    winner = next(p for p, (code, _, _) in zip(procs, results) if code == 0)
    refused = next(err for code, _, err in results if code == 2)
    assert "Traceback" not in refused and f"is being written by another process (pid {winner.pid} " in refused
    stage = tmp_path / "runs" / "race" / "rl"
    assert [r["step"] for r in read_metrics(stage / "metrics.jsonl") if "reward" in r] == list(range(1, 13))


# --- sweeps -----------------------------------------------------------------------------------

SLOW_FAKE = """
import runpy, sys, time
time.sleep(3)  # long enough for a second sweep to meet this one's lock
sys.argv = [sys.argv[1], *sys.argv[2:]]
runpy.run_path(sys.argv[0], run_name="__main__")
"""
SWEEP = """
import sys
from ahazero.cli import build_parser
from ahazero.experiments.sweep import run_sweep_command
prefix = [sys.executable, sys.argv[1], sys.argv[2]]
sys.exit(run_sweep_command(build_parser().parse_args(["sweep", *sys.argv[3:]]), prefix=prefix))
"""


def sweep_args(tmp_path: Path, *extra: str) -> list[str]:
    return [str(REPO / "configs" / "smoke.yaml"), f"output_root={tmp_path / 'runs'}", "--grid", "seed=1,2", *extra]


@pytest.fixture
def fake_sweep(tmp_path, monkeypatch):
    """Run sweeps whose train/eval subprocesses are tests/experiments/fake_ahazero.py."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("FAKE_AHAZERO_CALLS", str(tmp_path / "calls.jsonl"))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(REPO / "src"), str(REPO)]))
    monkeypatch.setenv("FAKE_AHAZERO", "{}")
    (tmp_path / "calls.jsonl").write_text("")
    return tmp_path


def calls(tmp_path: Path) -> list[list[str]]:
    return [json.loads(line) for line in (tmp_path / "calls.jsonl").read_text().splitlines()]


def test_two_sweeps_of_one_name_started_together_one_runs_one_is_refused(fake_sweep):
    tmp_path = fake_sweep
    (tmp_path / "slow_fake.py").write_text(SLOW_FAKE)
    procs = [subprocess.Popen([sys.executable, "-c", SWEEP, str(tmp_path / "slow_fake.py"), str(FAKE),
                               *sweep_args(tmp_path, *extra)], cwd=tmp_path, env=env(), stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
             for extra in ([], ["--resume"])]
    results = [(p.wait(300), *p.communicate()) for p in procs]
    assert sorted(code for code, _, _ in results) == [0, 1], [(out[-800:], err[-800:]) for _, out, err in results]
    winner = next(p for p, (code, _, _) in zip(procs, results) if code == 0)
    _, out, err = next(r for r in results if r[0] == 1)
    assert f"sweep 'smoke' (sweeps/smoke) is being written by another process (pid {winner.pid} " in err
    assert "wrote " not in out  # the refused sweep wrote no summary
    assert sorted(c[0] for c in calls(tmp_path)) == ["train", "train"]  # each variant trained once
    assert len(json.loads((tmp_path / "sweeps" / "smoke" / "summary.json").read_text())["variants"]) == 2


def test_sweep_resume_while_the_sweep_runs_is_refused_before_it_touches_a_variant(fake_sweep, capsys, holders):
    tmp_path = fake_sweep
    variant = tmp_path / "runs" / "smoke-seed_1"
    variant.mkdir(parents=True)
    (variant / "metrics.jsonl").write_text('{"step": 1, "reward": 0.5}\n')  # stopped before its first checkpoint
    holders.append(hold_lock(tmp_path / "sweeps" / "smoke"))  # the sweep itself
    for extra in (["--resume"], ["--resume", "--dry-run"]):
        assert main(["sweep", *sweep_args(tmp_path, *extra)]) == 2
        assert refusal(capsys, holders[0].pid).startswith("run directory error: sweep 'smoke' (sweeps/smoke) is being")
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == ["smoke-seed_1"]  # not renamed aside
    assert calls(tmp_path) == [] and not (tmp_path / "sweeps" / "smoke" / "summary.json").exists()


def test_a_variant_another_process_trains_is_never_renamed_or_trained_beside_it(fake_sweep, capsys, holders):
    from ahazero.experiments.plan import build_plan
    from ahazero.experiments.sweep import run_sweep

    tmp_path = fake_sweep
    variant = tmp_path / "runs" / "smoke-seed_1"
    variant.mkdir(parents=True)
    (variant / "metrics.jsonl").write_text('{"step": 1, "reward": 0.5}\n')
    holders.append(hold_lock(variant))  # `ahazero train` of that variant, started by hand
    assert main(["sweep", *sweep_args(tmp_path, "--resume")]) == 2
    line = refusal(capsys, holders[0].pid)
    assert f"{Path('runs') / 'smoke-seed_1'}" in line or str(variant) in line
    # planned while it was free, locked before the sweep renames it: the rename is refused
    holders.pop().kill()
    plan = build_plan(str(REPO / "configs" / "smoke.yaml"), grid=["seed=1,2"],
                      overrides=[f"output_root={tmp_path / 'runs'}"], resume=True, cuda=False)
    assert [vp.state for vp in plan.variants] == ["restart", "new"]
    holders.append(hold_lock(variant))
    with pytest.raises(RunLockedError, match=rf"run 'smoke-seed_1' .* \(pid {holders[0].pid} "):
        run_sweep(plan, prefix=[sys.executable, str(FAKE)], overlay=False)
    assert variant.is_dir() and not list((tmp_path / "runs").glob("*.stopped-*"))
    assert calls(tmp_path) == []


def test_a_sweep_with_a_config_mistake_or_a_dry_run_writes_nothing(fake_sweep, capsys):
    tmp_path = fake_sweep
    assert main(["sweep", *sweep_args(tmp_path), "grpo.learning_rat=1"]) == 2  # a config mistake
    assert not (tmp_path / "sweeps").exists()
    args = build_parser().parse_args(["sweep", *sweep_args(tmp_path, "--dry-run")])
    assert args.func(args) == 0 and not (tmp_path / "sweeps").exists()  # a dry run writes nothing


# --- sample, coldstart, calibrate, sft outputs ------------------------------------------------


def test_coldstart_never_replaces_a_file_without_overwrite(tmp_path, capsys):
    config = write_config(tmp_path)
    out = tmp_path / "README.md"
    out.write_text("# my readme\n")
    assert main(["coldstart", config, "--n", "3", "--out", str(out)]) == 2
    assert "the file exists; pass --overwrite" in capsys.readouterr().err
    assert out.read_text() == "# my readme\n"
    data = tmp_path / "cs.jsonl"
    assert main(["coldstart", config, "--n", "3", "--out", str(data)]) == 0
    first = data.read_bytes()
    assert main(["coldstart", config, "--n", "4", "--out", str(data)]) == 2  # its own earlier output too
    assert data.read_bytes() == first
    assert main(["coldstart", config, "--n", "4", "--out", str(data), "--overwrite"]) == 0
    assert len(data.read_text().splitlines()) == 4
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []  # no lock or temp file left


def test_sample_never_replaces_a_file_without_overwrite(tmp_path, capsys, no_model_loads):
    config = write_config(tmp_path)
    out = tmp_path / "README.md"
    out.write_text("# my readme\n")
    assert main(["sample", config, "--model", "base", "--n", "2", "--out", str(out)]) == 2
    assert "path error: --out" in capsys.readouterr().err
    rejected = tmp_path / "s.rejected.jsonl"  # a file written beside the samples is as safe
    rejected.write_text("mine\n")
    assert main(["sample", config, "--model", "base", "--n", "2", "--out", str(tmp_path / "s.jsonl")]) == 2
    assert f"--out {rejected}: the file exists" in capsys.readouterr().err
    assert out.read_text() == "# my readme\n" and rejected.read_text() == "mine\n"


@pytest.mark.parametrize("command", [
    ["sample", "{cfg}", "--model", "base", "--n", "2", "--out", "{out}"],
    ["sample", "{cfg}", "--from-traces", "{run}", "--out", "{out}"],
    ["coldstart", "{cfg}", "--n", "2", "--out", "{out}"],
    ["calibrate", "{cfg}", "--k", "2", "--out", "{out}"],
], ids=["sample", "sample-from-traces", "coldstart", "calibrate"])
def test_an_output_another_process_writes_is_refused_before_any_work(tmp_path, capsys, holders, no_model_loads,
                                                                     command):
    from helpers import trace_record

    from ahazero.observe.tracing import TraceWriter

    config = write_config(tmp_path)
    run = tmp_path / "runs" / "t"
    TraceWriter(run / "traces").write(1, [trace_record(1, "arithmetic-003a7aff1938", "1</think><answer>1</answer>",
                                                      correct=False, reward=0.0)])
    out = tmp_path / "shared" / "s.jsonl"
    holders.append(hold_file_lock(out))
    argv = [a.replace("{cfg}", config).replace("{out}", str(out)).replace("{run}", str(run)) for a in command]
    assert main(argv) == 2
    line = refusal(capsys, holders[0].pid)
    assert line.startswith(f"run directory error: {out} is being written by another process")
    assert sorted(p.name for p in out.parent.iterdir()) == [".s.jsonl.lock"]  # only the holder's lock


def test_sft_into_a_run_directory_another_process_writes_is_refused(tmp_path, capsys, holders, no_model_loads):
    samples = tmp_path / "cs.jsonl"
    config = write_config(tmp_path)
    assert main(["coldstart", config, "--n", "3", "--out", str(samples)]) == 0
    sft = write_config(tmp_path, "tune", sft={"data": str(samples), "max_steps": 1})
    holders.append(hold_lock(tmp_path / "runs" / "tune"))
    capsys.readouterr()
    assert main(["sft", sft]) == 2
    assert refusal(capsys, holders[0].pid).startswith("run directory error: run 'tune' ")
    assert sorted(p.name for p in (tmp_path / "runs" / "tune").iterdir()) == [".lock"]


# --- a trace file replaced by a folder --------------------------------------------------------


def test_a_trace_file_that_is_a_folder_is_set_aside_on_resume(tmp_path, caplog):
    traces = tmp_path / "traces"
    traces.mkdir()
    for step in (1, 2):
        (traces / f"step-{step:06d}.jsonl").write_text(json.dumps({"step": step}) + "\n")
    for step in (3, 5):  # one before the checkpoint at 4 (cannot be traced again), one after it
        (traces / f"step-{step:06d}.jsonl").mkdir()
        (traces / f"step-{step:06d}.jsonl" / "x").write_text("?")
    (traces / "step-000002.jsonl").unlink()
    (traces / "step-000002.jsonl").mkdir()
    report = repair_traces(traces, keep_through=4)
    assert sorted(p.name for p in (traces / "damaged").iterdir()) == [
        "step-000002.jsonl", "step-000003.jsonl", "step-000005.jsonl"]
    assert sorted(p.name for p in traces.iterdir()) == ["damaged", "step-000001.jsonl"]
    assert [p.reason for p in report.damaged] == ["not a file"] * 3
    assert "step 2 is before the checkpoint and cannot be traced again" in caplog.text
    assert "step-000005.jsonl is not a file" in caplog.text and "the step is traced again" in caplog.text


def test_a_resumed_run_with_a_trace_folder_trains_on_and_traces_every_step_once(tmp_path, tiny_model_dir):
    config = write_config(tmp_path, grpo={**GRPO, "max_steps": 2, "save_steps": 2})
    assert main(["train", config]) == 0
    run = tmp_path / "runs" / "t"
    (run / "traces" / "step-000003.jsonl").mkdir()  # where the resumed run writes its next step
    assert main(["train", config, "--resume", "grpo.max_steps=3"]) == 0
    assert [r["step"] for r in read_metrics(run / "metrics.jsonl") if "reward" in r] == [1, 2, 3]
    assert (run / "traces" / "step-000003.jsonl").is_file()
    assert (run / "traces" / "damaged" / "step-000003.jsonl").is_dir()
