"""The run directory under a careless user, on the tiny model: two writers at once, resuming a finished
run, a damaged newest checkpoint, damaged metrics and traces, and a full disk."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from helpers import REPO, base_config
from run_dir_fakes import full_disk_os, hold_lock

from ahazero.cli import main
from ahazero.observe import tracing
from ahazero.observe.run_lock import RunLockedError
from ahazero.observe.rundir import read_metrics
from ahazero.observe.tracing import trace_steps
from ahazero.training import assemble

BATCH = 4
GRPO = {"num_generations": 4, "per_device_train_batch_size": BATCH, "max_steps": 4, "save_steps": 2,
        "max_completion_length": 8, "learning_rate": 1e-4, "gradient_checkpointing": False}


def write_config(root: Path, name: str = "t", **grpo) -> Path:
    """A config file for a 4-step tiny-model run into ``root/runs/<name>`` (checkpoints at 2 and 4)."""
    data = base_config(name=name, output_root=str(root / "runs"), logging={"report_to": []},
                       grpo={**GRPO, **grpo})
    path = root / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def train_cli(config: Path, *args: str) -> int:
    return main(["train", str(config), *args])


def logged_steps(run: Path) -> list[int]:
    return [r["step"] for r in read_metrics(run / "metrics.jsonl") if "reward" in r]


def fingerprint(run: Path) -> dict[str, str]:
    """Every file of a run (but the lock) and a hash of its bytes."""
    return {str(p.relative_to(run)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(run.rglob("*")) if p.is_file() and p.name != ".lock"}


def assert_every_step_once(run: Path, steps: int = 4) -> None:
    assert logged_steps(run) == list(range(1, steps + 1))
    assert trace_steps(run / "traces") == list(range(1, steps + 1))
    for step in range(1, steps + 1):
        lines = (run / "traces" / f"step-{step:06d}.jsonl").read_text().splitlines()
        assert [json.loads(x)["step"] for x in lines] == [step] * BATCH
    assert not list((run / "traces").glob(".step-*.tmp"))


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory, tiny_model_dir) -> Path:
    """A finished 4-step run (checkpoints 2 and 4, model/), trained once; tests copy it."""
    root = tmp_path_factory.mktemp("finished")
    config = write_config(root)
    assert train_cli(config) == 0
    return root


@pytest.fixture
def run_copy(finished_run, tmp_path) -> tuple[Path, Path]:
    """(config, run folder) of a private copy of the finished run."""
    shutil.copytree(finished_run / "runs", tmp_path / "runs")
    return write_config(tmp_path), tmp_path / "runs" / "t"


# --- one writer -------------------------------------------------------------------------------


def test_a_run_being_written_is_refused_before_any_model_loads(tmp_path, tiny_model_dir, monkeypatch):
    config = write_config(tmp_path)
    run = tmp_path / "runs" / "t"
    child = hold_lock(run)
    monkeypatch.setattr(assemble, "build_trainer", lambda *a, **k: pytest.fail("the model must not load"))
    try:
        with pytest.raises(RunLockedError, match=rf"run 't' .*another process \(pid {child.pid} on "):
            assemble.train(assemble.load_for_device(config, cuda=False))
        assert sorted(p.name for p in run.iterdir()) == [".lock"]  # nothing written
    finally:
        child.kill()
        child.wait(10)


def test_two_train_commands_started_together_one_runs_one_is_refused(tmp_path, tiny_model_dir):
    config = write_config(tmp_path, "together")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO / "src"), str(REPO)]), OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "ahazero", "train", str(config)]
    procs = [subprocess.Popen(cmd, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    results = [(p.wait(300), *p.communicate()) for p in procs]
    codes = sorted(code for code, _, _ in results)
    assert codes == [0, 2], [err[-2000:] for _, _, err in results]
    refused = next(err for code, _, err in results if code == 2)
    winner = next(p for p, (code, _, _) in zip(procs, results) if code == 0)
    assert "run 'together'" in refused and f"pid {winner.pid}" in refused and "Traceback" not in refused
    assert_every_step_once(tmp_path / "runs" / "together")
    assert sorted(p.name for p in (tmp_path / "runs" / "together" / "checkpoints").glob("checkpoint-*")) == [
        "checkpoint-2", "checkpoint-4"]


# --- resuming a finished run ------------------------------------------------------------------


def test_resume_of_a_finished_run_says_so_and_changes_nothing(run_copy, caplog):
    config, run = run_copy
    before = fingerprint(run)
    assert train_cli(config, "--resume") == 0
    assert "run 't' has already finished: checkpoint-4 is at grpo.max_steps=4" in caplog.text
    assert "resume with a larger grpo.max_steps" in caplog.text
    assert fingerprint(run) == before  # no checkpoint-5, model/ and run.json untouched


def test_resume_with_a_larger_max_steps_continues_the_run(run_copy):
    config, run = run_copy
    model_before = (run / "model").stat().st_ino
    assert train_cli(config, "--resume", "grpo.max_steps=6") == 0
    assert_every_step_once(run, steps=6)
    assert (run / "checkpoints" / "checkpoint-6").is_dir()
    assert (run / "model").stat().st_ino != model_before  # the model of step 6 replaced it whole
    assert not (run / ".model.tmp").exists() and not (run / ".model.old").exists()
    assert json.loads((run / "run.json").read_text())["resumed_from_step"] == 4
    # the (linear) schedule: step 5 keeps the rate the old one ended at, step 6 follows the new max_steps
    rates = {r["step"]: r["learning_rate"] for r in read_metrics(run / "metrics.jsonl") if "reward" in r}
    assert rates[5] == 0.0 and rates[6] == pytest.approx(1e-4 * (1 - 5 / 6))


def test_a_finished_run_missing_its_model_gets_it_from_the_final_checkpoint(run_copy, caplog):
    config, run = run_copy
    before = fingerprint(run / "model")
    shutil.rmtree(run / "model")  # killed after the last checkpoint, before the final save
    metrics = (run / "metrics.jsonl").read_text()
    assert train_cli(config, "--resume") == 0
    assert fingerprint(run / "model") == before
    assert (run / "metrics.jsonl").read_text() == metrics  # nothing trained
    assert "model/ was rebuilt from checkpoint-4" in caplog.text


def test_a_model_older_than_the_final_checkpoint_is_rebuilt_from_it(run_copy, caplog):
    # finished at step 4, resumed to 6, stopped after checkpoint-6 but before the final save:
    # model/ still holds step 4's model
    config, run = run_copy
    assert train_cli(config, "--resume", "grpo.max_steps=6") == 0
    fresh = fingerprint(run / "model")
    for path in (run / "model").iterdir():
        os.utime(path, (1_000_000_000, 1_000_000_000))
    caplog.clear()
    assert train_cli(config, "--resume", "grpo.max_steps=6") == 0
    assert "older than checkpoint-6" in caplog.text and "model/ was rebuilt from checkpoint-6" in caplog.text
    assert fingerprint(run / "model") == fresh


# --- a damaged newest checkpoint --------------------------------------------------------------


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


DAMAGE = ["model.safetensors", "optimizer.pt", "rng_state.pth", "scheduler.pt", "trainer_state.json",
          "no optimizer.pt"]


def _damage(checkpoint: Path, damage: str) -> str:
    name = damage.removeprefix("no ")
    if damage.startswith("no "):
        (checkpoint / name).unlink()
    else:
        _truncate(checkpoint / name)
    return name


@pytest.mark.parametrize("damage", DAMAGE)
def test_each_damaged_file_of_a_real_checkpoint_is_caught(run_copy, damage):
    from ahazero.observe.rundir import RunDir

    _, run = run_copy
    name = _damage(run / "checkpoints" / "checkpoint-4", damage)
    point = RunDir(run).resume_point(resume=True, max_steps=4)
    assert point.step == 2 and not point.finished
    assert [(step, why.split(":")[0]) for step, why in point.passed_over] == [(4, name)]


@pytest.mark.parametrize("damage", ["optimizer.pt", "trainer_state.json"])
def test_a_damaged_newest_checkpoint_falls_back_to_the_previous_one(run_copy, caplog, damage):
    from ahazero.observe.checkpoints import checkpoint_problem

    config, run = run_copy
    newest = run / "checkpoints" / "checkpoint-4"
    name = _damage(newest, damage)
    assert train_cli(config, "--resume") == 0
    warning = next(r.getMessage() for r in caplog.records if r.getMessage().startswith("checkpoint-4 "))
    assert f"{name}: " in warning and "from checkpoint-2" in warning and "steps 3-4 trained again" in warning
    assert json.loads((run / "run.json").read_text())["resumed_from_step"] == 2
    assert_every_step_once(run)
    assert checkpoint_problem(newest) is None  # saved again, whole
    aside = run / "checkpoints" / "damaged" / "checkpoint-4"
    assert aside.is_dir() == (name != "trainer_state.json")  # a torn save is removed, damage is kept


# --- damaged metrics and traces ---------------------------------------------------------------


def test_damaged_metrics_and_traces_are_reported_set_aside_and_regenerated(run_copy, caplog):
    config, run = run_copy
    shutil.rmtree(run / "checkpoints" / "checkpoint-4")  # the run was killed during step 4: resume at 2
    shutil.rmtree(run / "model")
    lines = (run / "metrics.jsonl").read_text().splitlines()
    by_step = {json.loads(x)["step"]: i for i, x in enumerate(lines) if "reward" in json.loads(x)}
    lines[by_step[1]] = lines[by_step[1]][:40]  # a torn line before the checkpoint: that step is lost...
    lines[by_step[3]] = lines[by_step[3]][:40]  # ...and one after it: regenerated
    lines.insert(by_step[3], '{"step": null}')
    (run / "metrics.jsonl").write_text("\n".join(lines) + "\n")
    traces = run / "traces"
    step1 = (traces / "step-000001.jsonl").read_bytes()
    (traces / "step-000001.jsonl").write_bytes(step1 + b"\x00\x01garbage\n")  # before the checkpoint
    _truncate(traces / "step-000003.jsonl")  # after it

    assert train_cli(config, "--resume") == 0
    metrics = run / "metrics.jsonl"
    assert f"{metrics} line {by_step[1] + 1}: not JSON" in caplog.text
    assert f"{metrics} line {by_step[3] + 1}: 'step' is null, not an integer" in caplog.text
    assert f"{metrics} line {by_step[3] + 2}: not JSON" in caplog.text
    aside = [json.loads(x) for x in (run / "metrics.jsonl.damaged").read_text().splitlines()]
    assert [a["text"] for a in aside] == [lines[by_step[1]], '{"step": null}', lines[by_step[3] + 1]]
    assert logged_steps(run) == [2, 3, 4]  # step 1's line was torn before the checkpoint: kept aside, not retrained
    assert trace_steps(traces) == [1, 2, 3, 4]
    assert len((traces / "step-000003.jsonl").read_text().splitlines()) == BATCH  # traced again, whole
    assert (traces / "step-000001.jsonl").read_bytes() == step1  # its readable records stay
    assert (traces / "damaged" / "step-000001.jsonl").read_bytes() == step1 + b"\x00\x01garbage\n"
    assert (traces / "damaged" / "step-000003.jsonl").is_file()
    assert "step-000001.jsonl: 1 damaged lines" in caplog.text and "cannot be traced again" in caplog.text


# --- a full disk ------------------------------------------------------------------------------


def test_a_full_disk_while_writing_traces_ends_with_a_clear_error(tmp_path, tiny_model_dir, monkeypatch, capsys):
    config = write_config(tmp_path, max_steps=2)
    monkeypatch.setattr(tracing, "os", full_disk_os(after_bytes=0))
    assert train_cli(config) == 2
    err = capsys.readouterr().err
    assert "run directory error: cannot write" in err and "step-000001.jsonl: No space left on device" in err
    assert "Traceback" not in err
    traces = tmp_path / "runs" / "t" / "traces"
    assert not traces.exists() or list(traces.iterdir()) == []  # no .step-*.tmp left behind
    monkeypatch.undo()
    assert train_cli(config, "--resume") == 0  # space freed: the run starts over (no checkpoint yet)
    assert_every_step_once(tmp_path / "runs" / "t", steps=2)


def test_any_error_while_the_disk_is_full_is_reported_as_a_full_disk(tmp_path, tiny_model_dir, monkeypatch, capsys):
    import collections

    from ahazero.training.trainer import AhaGRPOTrainer

    def failing_save(self, *args, **kwargs):  # what torch.save raises on a full disk
        raise RuntimeError("[enforce fail at inline_container.cc:626] . unexpected pos 4416 vs 4310")

    monkeypatch.setattr(AhaGRPOTrainer, "_save_checkpoint", failing_save)
    usage = collections.namedtuple("usage", "total used free")
    monkeypatch.setattr(assemble.shutil, "disk_usage", lambda path: usage(10**9, 10**9, 0))
    assert train_cli(write_config(tmp_path, max_steps=2, save_steps=1)) == 2
    err = capsys.readouterr().err
    assert "run directory error: the disk holding" in err and "is full (" in err and "--resume" in err


def test_a_full_disk_while_the_final_model_is_saved_is_one_line(tmp_path, tiny_model_dir, monkeypatch, capsys):
    """safetensors reports a full disk as its own error type, with the OS error only in its text."""
    from ahazero.training.trainer import AhaGRPOTrainer

    class SafetensorError(Exception):  # safetensors' exception is no OSError
        pass

    def failing_save(self, *args, **kwargs):  # what save_pretrained raised on a GPU machine with a full disk
        raise SafetensorError("Error while serializing: I/O error: No space left on device (os error 28)")

    monkeypatch.setattr(AhaGRPOTrainer, "save_model", failing_save)
    assert train_cli(write_config(tmp_path, max_steps=1, save_steps=10)) == 2
    err = capsys.readouterr().err
    assert "run directory error: the disk holding" in err and "No space left on device" in err and "--resume" in err
    assert "Traceback" not in err
