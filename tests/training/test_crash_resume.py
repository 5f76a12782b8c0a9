"""Kill ``ahazero train`` with SIGKILL mid-run, resume it, and check that every step is recorded exactly once.

Runs the real CLI in a subprocess on the tiny model: train to a checkpoint, SIGKILL while
training goes on (no cleanup runs), ``--resume`` to the end, then check ``metrics.jsonl``,
``traces/``, ``run.json`` and that nothing of the killed run (e.g. reward verifier workers)
is left running.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ahazero.observe.rundir import read_metrics

REPO = Path(__file__).resolve().parents[2]
MAX_STEPS = 8
SAVE_STEPS = 2
BATCH = 8  # completions per step: per_device_train_batch_size (one process, no accumulation)
KILL_AFTER_CHECKPOINT = 4
KILL_AFTER_STEP = 5
RUN_TIMEOUT = 300

CONFIG = f"""\
name: crash
output_root: {{root}}
seed: 0
model: {{{{name_or_path: tiny, dtype: float32}}}}
task: {{{{name: arithmetic, num_train: 64, num_test: 8, max_terms: 2}}}}
prompt: {{{{template: chat, prefill_think: true}}}}
rewards:
  - {{{{name: accuracy, weight: 1.0}}}}
  - {{{{name: think_format, weight: 0.5}}}}
  - {{{{name: "reward_tests.crash_probe:verifier_probe", weight: 0.0}}}}
logging: {{{{report_to: []}}}}
grpo:
  max_steps: {MAX_STEPS}
  save_steps: {SAVE_STEPS}
  learning_rate: 1.0e-4
  num_generations: 4
  per_device_train_batch_size: {BATCH}
  max_completion_length: 48
  gradient_checkpointing: false
"""

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="uses SIGKILL and /proc")


def _env(marker: str) -> dict[str, str]:
    env = dict(os.environ)  # AHAZERO_CACHE and the offline switches come from conftest
    # src and the repo root as asked; tests/ for the verifier probe reward (reward_tests.crash_probe)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO / "src"), str(REPO), str(REPO / "tests")])
    env["AHAZERO_CRASH_TEST"] = marker  # finds this run's processes (and their children) in /proc
    env.setdefault("TOKENIZERS_PARALLELISM", "false")
    return env


def _processes_with(marker: str) -> list[int]:
    """Live processes whose environment carries ``AHAZERO_CRASH_TEST=marker``."""
    needle = f"AHAZERO_CRASH_TEST={marker}".encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
            if state != "Z" and needle in (entry / "environ").read_bytes().split(b"\0"):
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def _no_processes_left(marker: str, grace: float = 10.0) -> bool:
    """True once no process carries ``marker`` (helpers such as the forkserver exit just after their parent)."""
    end = time.monotonic() + grace
    while _processes_with(marker):
        if time.monotonic() >= end:
            return False
        time.sleep(0.1)
    return True


def _complete_checkpoints(run: Path) -> list[int]:
    steps = []
    for child in (run / "checkpoints").glob("checkpoint-*"):
        suffix = child.name.removeprefix("checkpoint-")
        if suffix.isdigit() and (child / "trainer_state.json").is_file():
            steps.append(int(suffix))
    return sorted(steps)


def _logged_steps(run: Path) -> list[int]:
    return [int(r["step"]) for r in read_metrics(run / "metrics.jsonl") if "reward" in r]


def _tail(path: Path, n: int = 3000) -> str:
    return path.read_text(errors="replace")[-n:] if path.is_file() else ""


def test_sigkill_mid_training_then_resume_records_every_step_once(tmp_path, tiny_model_dir):
    config = tmp_path / "crash.yaml"
    config.write_text(CONFIG.format(root=tmp_path / "runs"))
    run = tmp_path / "runs" / "crash"
    marker = str(tmp_path)
    env = _env(marker)
    command = [sys.executable, "-m", "ahazero", "train", str(config)]

    # 1. train, and SIGKILL it once checkpoint-4 is complete and step 5 is logged
    log1 = tmp_path / "first.log"
    with log1.open("w") as out:
        first = subprocess.Popen(command, cwd=tmp_path, env=env, stdout=out, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + RUN_TIMEOUT
        try:
            while time.monotonic() < deadline and first.poll() is None:
                steps = _logged_steps(run)
                if KILL_AFTER_CHECKPOINT in _complete_checkpoints(run) and steps and max(steps) >= KILL_AFTER_STEP:
                    break
                time.sleep(0.05)
            assert first.poll() is None, f"the first run ended before it could be killed:\n{_tail(log1)}"
            # besides the trainer: the verifier forkserver, its workers, multiprocessing's resource tracker
            assert len(_processes_with(marker)) >= 3, "the verifier pool should be running"
            os.kill(first.pid, signal.SIGKILL)
            assert first.wait(30) == -signal.SIGKILL
        finally:
            if first.poll() is None:
                first.kill()
                first.wait(30)
    killed_at = max(_logged_steps(run))
    assert KILL_AFTER_STEP <= killed_at < MAX_STEPS, "the kill must land mid-training"
    # nothing of the killed run survives it (the reward verifier workers die with it)
    assert _no_processes_left(marker), "processes of the killed run are still alive"

    # 2. resume to the end
    log2 = tmp_path / "resume.log"
    with log2.open("w") as out:
        resumed = subprocess.run([*command, "--resume"], cwd=tmp_path, env=env, stdout=out,
                                 stderr=subprocess.STDOUT, timeout=RUN_TIMEOUT)
    assert resumed.returncode == 0, _tail(log2)

    # 3. every step exactly once, in metrics and in traces
    assert _logged_steps(run) == list(range(1, MAX_STEPS + 1)), _tail(log2)
    traces = run / "traces"
    files = sorted(p.name for p in traces.iterdir())
    assert files == [f"step-{s:06d}.jsonl" for s in range(1, MAX_STEPS + 1)]  # and no .step-*.tmp leftovers
    for step in range(1, MAX_STEPS + 1):
        lines = (traces / f"step-{step:06d}.jsonl").read_text(encoding="utf-8").splitlines()
        records = [json.loads(line) for line in lines]
        assert len(records) == BATCH, f"step {step}: {len(records)} records"
        assert {r["step"] for r in records} == {step}
    info = json.loads((run / "run.json").read_text())
    assert info["resumed_from_step"] >= KILL_AFTER_CHECKPOINT
    assert info["resumed_from_step"] in _complete_checkpoints(run)
    assert len(info["history"]) == 2
    assert (run / "model" / "config.json").is_file()
    assert _no_processes_left(marker), "processes of the resumed run outlived it"
