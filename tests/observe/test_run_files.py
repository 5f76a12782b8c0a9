"""The run directory's safety parts without training: the lock, checkpoint checks, repair on resume,
atomic trace writes on a full disk, and readers that skip damaged records and say which."""

from __future__ import annotations

import errno
import io
import json
import os
import signal
import types
from pathlib import Path

import pytest
from helpers import trace_record
from rich.console import Console
from run_dir_fakes import full_disk_os, hold_lock

from ahazero.observe import tracing
from ahazero.observe.checkpoints import checkpoint_problem
from ahazero.observe.records import Problem
from ahazero.observe.run_lock import RunLock, RunLockedError
from ahazero.observe.run_repair import prepare_restart, repair_metrics, repair_traces
from ahazero.observe.rundir import RunDir, RunDirError, RunWriteError, read_metrics
from ahazero.observe.trace_store import load_traces, reflection_counts, step_metrics
from ahazero.observe.tracing import TraceWriter, trace_steps


def fake_checkpoint(folder: Path, step: int, *, max_steps: int = 4) -> Path:
    """A checkpoint with every file a resume reads, written the way transformers writes them."""
    import torch
    from safetensors.torch import save_file

    folder.mkdir(parents=True)
    (folder / "trainer_state.json").write_text(json.dumps({"global_step": step, "max_steps": max_steps}))
    (folder / "config.json").write_text("{}")
    save_file({"w": torch.ones(4, 4)}, str(folder / "model.safetensors"))
    torch.save({"state": {0: {"exp_avg": torch.zeros(4, 4)}}, "param_groups": []}, folder / "optimizer.pt")
    torch.save({"last_epoch": step}, folder / "scheduler.pt")
    torch.save({"cpu": torch.random.get_rng_state()}, folder / "rng_state.pth")
    return folder


def truncate(path: Path, keep: float = 0.5) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])


# --- one writer -------------------------------------------------------------------------------


def test_a_second_writer_is_refused_naming_the_run_and_the_pid(tmp_path):
    root = tmp_path / "runs" / "x"
    child = hold_lock(root)
    try:
        with pytest.raises(RunLockedError, match=rf"run 'x' .* is being written by another process \(pid {child.pid} on "):
            RunLock(root).acquire()
    finally:
        child.kill()
        child.wait(10)


def test_kill_9_never_leaves_the_lock_stuck(tmp_path):
    root = tmp_path / "run"
    child = hold_lock(root)
    os.kill(child.pid, signal.SIGKILL)
    child.wait(10)
    with RunLock(root) as lock:  # the kernel dropped the dead holder's lock
        assert lock.held and json.loads((root / ".lock").read_text())["pid"] == os.getpid()
    assert not lock.held and (root / ".lock").read_text() == ""
    RunLock(root).acquire().release()  # and it can be taken again


# --- checkpoints ------------------------------------------------------------------------------


def test_a_complete_checkpoint_passes(tmp_path):
    assert checkpoint_problem(fake_checkpoint(tmp_path / "checkpoint-2", 2)) is None


@pytest.mark.parametrize("name", ["model.safetensors", "optimizer.pt", "rng_state.pth", "scheduler.pt",
                                  "trainer_state.json"])
def test_a_truncated_file_makes_the_newest_checkpoint_fall_back(tmp_path, name):
    run = RunDir(tmp_path / "r")
    fake_checkpoint(run.checkpoints / "checkpoint-2", 2)
    truncate(fake_checkpoint(run.checkpoints / "checkpoint-4", 4) / name)
    point = run.resume_point(resume=True, max_steps=4)
    assert point.step == 2 and not point.finished
    assert point.passed_over[0][0] == 4 and point.passed_over[0][1].startswith(f"{name}: ")


@pytest.mark.parametrize("name", ["optimizer.pt", "scheduler.pt", "rng_state.pth", "model.safetensors"])
def test_a_missing_state_file_is_not_a_complete_checkpoint(tmp_path, name):
    folder = fake_checkpoint(tmp_path / "checkpoint-4", 4)
    (folder / name).unlink()
    assert name.split(".")[0] in checkpoint_problem(folder)


def test_garbage_in_the_middle_of_a_torch_file_fails_its_crc(tmp_path):
    import torch

    path = fake_checkpoint(tmp_path / "checkpoint-1", 1) / "optimizer.pt"
    torch.save({"state": {0: {"exp_avg": torch.ones(64, 64)}}}, path)  # 16 KiB of tensor data mid-file
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle:middle + 32] = b"\xab" * 32  # a garbled block, the size of the file unchanged
    path.write_bytes(bytes(data))
    assert checkpoint_problem(path.parent).startswith("optimizer.pt: ")


def test_lora_adapters_and_sharded_weights_are_checked_too(tmp_path):
    import torch
    from safetensors.torch import save_file

    from ahazero.observe.checkpoints import weights_problem

    lora = tmp_path / "lora"
    lora.mkdir()
    save_file({"a": torch.ones(8)}, str(lora / "adapter_model.safetensors"))
    assert weights_problem(lora) is None
    truncate(lora / "adapter_model.safetensors", keep=0.9)
    assert weights_problem(lora).startswith("adapter_model.safetensors: truncated")
    sharded = tmp_path / "sharded"
    sharded.mkdir()
    for i in (1, 2):
        save_file({f"w{i}": torch.ones(8)}, str(sharded / f"model-0000{i}-of-00002.safetensors"))
    (sharded / "model.safetensors.index.json").write_text(json.dumps(
        {"weight_map": {"w1": "model-00001-of-00002.safetensors", "w2": "model-00002-of-00002.safetensors"}}))
    assert weights_problem(sharded) is None
    (sharded / "model-00002-of-00002.safetensors").unlink()
    assert weights_problem(sharded) == "model-00002-of-00002.safetensors: missing"


def test_no_complete_checkpoint_at_all_is_refused_with_the_reasons(tmp_path):
    run = RunDir(tmp_path / "r")
    (fake_checkpoint(run.checkpoints / "checkpoint-2", 2) / "optimizer.pt").unlink()
    run.metrics.write_text('{"step": 1}\n')
    with pytest.raises(RunDirError, match=r"no complete checkpoint .*checkpoint-2: optimizer.pt: missing"):
        run.resume_point(resume=True)


def test_a_finished_run_and_a_larger_max_steps(tmp_path):
    run = RunDir(tmp_path / "r")
    fake_checkpoint(run.checkpoints / "checkpoint-4", 4)
    assert run.resume_point(resume=True, max_steps=4).finished
    assert run.resume_point(resume=True, max_steps=None).finished  # the checkpoint's own max_steps
    assert not run.resume_point(resume=True, max_steps=8).finished


def test_damaged_checkpoints_are_set_aside_and_torn_ones_removed(tmp_path, caplog):
    run = RunDir(tmp_path / "r")
    fake_checkpoint(run.checkpoints / "checkpoint-2", 2)
    (fake_checkpoint(run.checkpoints / "checkpoint-4", 4) / "optimizer.pt").unlink()
    (fake_checkpoint(run.checkpoints / "checkpoint-6", 6) / "trainer_state.json").unlink()  # killed while saving
    point = run.resume_point(resume=True, max_steps=8)
    assert point.step == 2 and [s for s, _ in point.passed_over] == [6, 4]
    prepare_restart(run, point)
    assert run.checkpoint_folders() == [2]
    assert (run.checkpoints / "damaged" / "checkpoint-4" / "model.safetensors").is_file()
    assert "checkpoint-4 cannot be resumed from: optimizer.pt: missing" in caplog.text
    assert "checkpoint-6 was cut short while saving" in caplog.text


# --- metrics and traces on resume -------------------------------------------------------------


def test_step_null_and_torn_lines_are_reported_set_aside_and_later_steps_dropped(tmp_path, caplog):
    path = tmp_path / "metrics.jsonl"
    path.write_text('{"step": 1, "reward": 0.1}\n{"step": null}\n{"step": 2, "rew\n{"step": 3, "reward": 0.3}\n'
                    '{"step": 4, "reward": 0.4}\n{"step": 5, "rew')
    report = repair_metrics(path, keep_through=3)
    assert report.dropped == 1 and [p.line for p in report.damaged] == [2, 3, 6]
    assert path.read_text() == '{"step": 1, "reward": 0.1}\n{"step": 3, "reward": 0.3}\n'
    aside = [json.loads(x) for x in (tmp_path / "metrics.jsonl.damaged").read_text().splitlines()]
    assert [(a["line"], a["text"]) for a in aside] == [(2, '{"step": null}'), (3, '{"step": 2, "rew'),
                                                       (6, '{"step": 5, "rew')]
    assert (f"{path} line 2: 'step' is null, not an integer (after step 1; step 2 is not after the checkpoint "
            "(step 3), so it is not logged again)") in caplog.text
    assert f"{path} line 6: not JSON (a torn or garbled line) (after step 4; steps after 3 are logged again)" \
        in caplog.text
    assert repair_metrics(path, keep_through=3).damaged == []  # nothing left to do


def test_a_last_line_without_its_newline_is_completed(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text('{"step": 1}\n{"step": 2}')
    repair_metrics(path, keep_through=2)
    assert path.read_text() == '{"step": 1}\n{"step": 2}\n'  # the next append starts on its own line


def test_damaged_trace_files_before_and_after_the_checkpoint(tmp_path, caplog):
    folder = tmp_path / "traces"
    writer = TraceWriter(folder)
    for step in (1, 2, 3, 4):
        writer.write(step, [trace_record(step, f"p{i}", "4</think><answer>4</answer>", correct=True, reward=1.0)
                            for i in range(3)])
    original = (folder / "step-000001.jsonl").read_text()
    (folder / "step-000001.jsonl").write_text(original + '{"step": 1, "thinking_tokens": "abc"}\n[1]\n')
    (folder / "step-000003.jsonl").write_bytes(os.urandom(300))  # garbage, after the checkpoint
    truncate(folder / "step-000004.jsonl")  # after the checkpoint
    report = repair_traces(folder, keep_through=2)
    assert report.dropped == [3, 4] and trace_steps(folder) == [1, 2]
    assert (folder / "step-000001.jsonl").read_text() == original  # the readable records stay
    assert sorted(p.name for p in (folder / "damaged").iterdir()) == [
        "step-000001.jsonl", "step-000003.jsonl", "step-000004.jsonl"]
    assert "step-000001.jsonl: 2 damaged lines (first: line 4, 'thinking_tokens' is 'abc'" in caplog.text
    assert "cannot be traced again" in caplog.text


# --- a full disk ------------------------------------------------------------------------------


def test_a_full_disk_leaves_no_temp_file_and_a_clear_error(tmp_path, monkeypatch):
    writer = TraceWriter(tmp_path / "traces")
    writer.write(1, [{"step": 1, "completion": "kept"}])
    monkeypatch.setattr(tracing, "os", full_disk_os())
    records = [{"step": 1, "completion": "x" * 500}] * 4
    with pytest.raises(RunWriteError, match=r"cannot write .*step-000001.jsonl: No space left on device; free space"):
        writer.write(1, records)
    with pytest.raises(RunWriteError):
        writer.write(2, records)
    assert sorted(p.name for p in (tmp_path / "traces").iterdir()) == ["step-000001.jsonl"]
    assert load_traces(tmp_path) == [{"step": 1, "completion": "kept"}]  # the old file is untouched


class _FullDiskFile(io.StringIO):
    def write(self, text):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


def test_a_full_disk_while_appending_a_metrics_line_is_a_clear_error(tmp_path, monkeypatch):
    from ahazero.training.callbacks import MetricsJsonlCallback

    callback = MetricsJsonlCallback(tmp_path / "metrics.jsonl")
    monkeypatch.setattr(Path, "open", lambda self, *a, **k: _FullDiskFile())
    state = types.SimpleNamespace(is_world_process_zero=True, global_step=3)
    with pytest.raises(RunWriteError, match=r"cannot write .*metrics.jsonl: No space left on device; free space"):
        callback.on_log(None, state, None, logs={"reward": 0.5})


# --- readers skip and report ------------------------------------------------------------------


BAD_RECORDS = ['{"step": "x", "completion": "a"}', '{"step": 2, "thinking_tokens": "abc"}', '["a", "list"]']


@pytest.fixture
def damaged_run(tmp_path: Path) -> Path:
    run = tmp_path / "run"
    writer = TraceWriter(run / "traces")
    for step in (1, 2):
        writer.write(step, [trace_record(step, f"p{i}", "wait, 4</think><answer>4</answer>", correct=True,
                                         reward=1.0) for i in range(2)])
    with (run / "traces" / "step-000002.jsonl").open("a") as fh:
        fh.write("\n".join(BAD_RECORDS) + "\n")
    (run / "metrics.jsonl").write_text('{"step": 1, "reward": 1.0}\n{"step": "x", "reward": 0.5}\n'
                                       '{"step": 2, "reward": "abc"}\n')
    (run / "traces" / "damaged").mkdir()
    (run / "traces" / "damaged" / "step-000003.jsonl").write_text('{"step": 3, "rew')  # set aside by a resume
    return run


def test_readers_skip_records_of_the_wrong_type_and_say_which(damaged_run):
    problems: list[Problem] = []
    assert len(load_traces(damaged_run, problems=problems)) == 4
    assert [(Path(p.path).name, p.line) for p in problems] == [("step-000002.jsonl", n) for n in (3, 4, 5)]
    assert [r["n"] for r in step_metrics(damaged_run)] == [2, 2]
    assert [c.n for c in reflection_counts(damaged_run)] == [2, 2]
    metrics_problems: list[Problem] = []
    assert read_metrics(damaged_run / "metrics.jsonl", metrics_problems) == [{"step": 1, "reward": 1.0}]
    assert [p.reason for p in metrics_problems] == ["'step' is 'x', not an integer", "'reward' is 'abc', not a number"]


@pytest.mark.parametrize("argv", [[], ["--step", "2"], ["--steps", "1:2", "--sort", "thinking"], ["--json"],
                                  ["--compare-first-last"]])
def test_traces_command_reports_skipped_records(damaged_run, argv, capsys):
    import argparse

    from ahazero.observe.traces_cli import add_parser, run_traces

    parser = argparse.ArgumentParser()
    add_parser(parser.add_subparsers())
    console = Console(record=True, width=200, file=io.StringIO())
    assert run_traces(parser.parse_args(["traces", str(damaged_run), *argv]), console=console) == 0
    said = console.export_text() + capsys.readouterr().err
    assert "3 damaged lines skipped" in said and "step-000002.jsonl line 4 ('thinking_tokens' is 'abc'" in said
    assert "1 damaged trace file was set aside by a resume" in said


def test_report_skips_damaged_records_and_says_so(damaged_run, capsys):
    pytest.importorskip("matplotlib")
    from ahazero.cli import main

    assert main(["report", str(damaged_run)]) == 0
    out = capsys.readouterr().out
    assert "5 damaged lines skipped" in out and "metrics.jsonl line 2 ('step' is 'x', not an integer)" in out
    assert "1 damaged trace file was set aside by a resume" in out
    html = (damaged_run / "report" / "report.html").read_text()
    assert "5 damaged lines skipped" in html and "set aside by a resume" in html
