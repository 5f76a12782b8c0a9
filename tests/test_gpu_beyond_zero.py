"""scripts/gpu_beyond_zero.sh and scripts/beyond_zero_table.py: valid GPU command lines, a CPU dry run, the tables."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from gpu_script_commands import check_command, load_script, script_workdir
from helpers import REPO

SCRIPT = REPO / "scripts" / "gpu_beyond_zero.sh"
STEPS = ["c1-coldstart-set", "c2-cold-sft", "c3-cold-sft-eval", "c4-cold-grpo", "c5-cold-grpo-eval",
         "c6-teacher-wait", "c7-grpo-alone-eval", "c8-base-eval", "d1-student-base-eval", "d2-student-grpo",
         "d3-student-grpo-eval", "d4-teacher-wait", "d5-teacher-sample", "d6-student-sft", "d7-student-sft-eval",
         "d8-student-sft-grpo", "d9-student-sft-grpo-eval", "table"]


def load_table_module():
    return load_script("beyond_zero_table")


def workdir(tmp_path: Path) -> Path:
    """A copy of the two scripts beside the repository's configs: the script writes runs/ and logs/ there."""
    return script_workdir(tmp_path, "gpu_beyond_zero.sh", "beyond_zero_table.py")


def run_script(work: Path, ahazero: str, *args: str, **env: str) -> subprocess.CompletedProcess:
    full = {**os.environ, "AHAZERO": ahazero, "PYTHON": sys.executable, "POLL": "1",
            "PYTHONPATH": os.pathsep.join([str(REPO / "src"), str(REPO), os.environ.get("PYTHONPATH", "")]), **env}
    return subprocess.run(["bash", str(work / "scripts" / "gpu_beyond_zero.sh"), *args], cwd=work, env=full,
                          capture_output=True, text=True, timeout=900)


def status_of(work: Path) -> dict:
    lines = (work / "logs" / "status.txt").read_text().splitlines()
    return {line.split()[1]: line.split()[2] for line in lines if not line.startswith("===")}


def test_every_gpu_command_line_is_valid_and_the_script_reaches_its_tables(tmp_path, monkeypatch):
    work = workdir(tmp_path)
    (work / "runs" / "big-batch" / "model").mkdir(parents=True)
    (work / "runs" / "big-batch" / "model" / "config.json").write_text("{}")
    (work / "runs" / "big-batch" / "metrics.jsonl").write_text('{"step": 20, "train_runtime": 132.7}\n')
    log = tmp_path / "commands.jsonl"
    done = run_script(work, f"{sys.executable} {REPO / 'tests' / 'beyond_zero_fake.py'}", FAKE_AHAZERO_LOG=str(log))
    assert done.returncode == 0, done.stdout + done.stderr
    status = status_of(work)
    assert sorted(status) == sorted(STEPS) and set(status.values()) == {"ok"}, status

    monkeypatch.chdir(work)
    checked = [check_command(json.loads(line)) for line in log.read_text().splitlines()]
    assert len(checked) == len(STEPS) - 3  # two teacher waits and the table run no command
    default = checked[0][2].__class__  # the config type
    from ahazero.config.schema import load_config

    reference = load_config(REPO / "configs" / "default.yaml")
    trains = {cfg.name: cfg for command, _, cfg in checked if command == "train"}
    assert sorted(trains) == ["bz-cold-grpo", "bz-student-grpo", "bz-student-sft-grpo"]
    for cfg in trains.values():  # the big-batch recipe in micro-batches of 16: 512 completions a step
        g = cfg.grpo
        assert g["per_device_train_batch_size"] * g["gradient_accumulation_steps"] == 512
        assert (g["per_device_train_batch_size"], g["num_generations"], g["learning_rate"], g["save_total_limit"]) == (
            16, 16, 1e-5, 1)
    from ahazero.training.assemble import load_for_device

    teacher = load_for_device(REPO / "configs" / "default.yaml", cuda=True, presets=["big-batch"])  # GRPO alone
    split = ("per_device_train_batch_size", "gradient_accumulation_steps", "save_total_limit", "max_steps")
    for cfg in trains.values():  # the teacher's recipe but for the micro-batch split (and the students' steps)
        assert {k: v for k, v in cfg.grpo.items() if k not in split} == {
            k: v for k, v in teacher.grpo.items() if k not in split}, cfg.name
        assert (cfg.generation, cfg.update, cfg.seed) == (teacher.generation, teacher.update, teacher.seed)
    assert trains["bz-cold-grpo"].grpo["max_steps"] == teacher.grpo["max_steps"] == 20
    assert trains["bz-student-grpo"].grpo["max_steps"] == trains["bz-student-sft-grpo"].grpo["max_steps"] == 15
    assert trains["bz-cold-grpo"].model.name_or_path == "runs/bz-cold-sft/model"
    assert trains["bz-student-grpo"].model.name_or_path == "smollm2-135m-instruct"
    assert trains["bz-student-sft-grpo"].model.name_or_path == "runs/bz-student-sft/model"
    for command, args, cfg in checked:  # every model trains and is judged on the same task, prompt and rewards
        assert isinstance(cfg, default)
        assert (cfg.task, cfg.prompt, cfg.rewards) == (reference.task, reference.prompt, reference.rewards), command
        if command == "eval":
            assert (args.config, args.batch_size, args.max_new_tokens, args.samples, args.split) == (
                "configs/default.yaml", 200, 256, 0, "test")
    evals = sorted(args.model for command, args, _ in checked if command == "eval")
    assert evals == sorted(["qwen2.5-coder-0.5b-instruct", "smollm2-135m-instruct", "runs/bz-cold-sft/model",
                            "runs/bz-cold-grpo/model", "runs/big-batch/model", "runs/bz-student-grpo/model",
                            "runs/bz-student-sft/model", "runs/bz-student-sft-grpo/model"])
    sample = next(args for command, args, _ in checked if command == "sample")
    assert (sample.n, sample.max_per_prompt, sample.prompts, sample.split) == (8, 2, 300, "train")

    tables = (work / "logs" / "beyond_zero.md").read_text()
    assert "| + SFT + GRPO | 50.0% | 100.0% | 20.0 | 19.0 | 0.0% | 0.0% | 200 | 38 + 15 | 68.0 + 45.0 = 113.0 |" in tables
    assert "| GRPO alone (`big-batch`) | 50.0% |" in tables and "| 20 | 132.7 | `big-batch-final` |" in tables

    again = run_script(work, "false")  # a second run finds everything done and runs nothing
    assert again.returncode == 0, again.stdout + again.stderr
    status = status_of(work)
    assert {status[s] for s in STEPS if "wait" not in s and s != "table"} == {"done"}, again.stdout
    assert status["table"] == "ok" and "FAIL" not in again.stdout, again.stdout


def test_a_missing_teacher_skips_only_what_needs_it(tmp_path):
    work = workdir(tmp_path)
    log = tmp_path / "commands.jsonl"
    done = run_script(work, f"{sys.executable} {REPO / 'tests' / 'beyond_zero_fake.py'}", "runs/nowhere/model",
                      FAKE_AHAZERO_LOG=str(log), TEACHER_WAIT="2", PARALLEL="0")
    assert done.returncode == 0, done.stdout + done.stderr
    status = status_of(work)
    assert status["d4-teacher-wait"] == status["c6-teacher-wait"] == "TIMEOUT"
    assert status["d5-teacher-sample"] == "skip" and "d6-student-sft" not in status
    assert status["c5-cold-grpo-eval"] == status["d3-student-grpo-eval"] == status["c8-base-eval"] == "ok"
    assert "no eval in runs/nowhere/eval" in (work / "logs" / "beyond_zero.md").read_text()


def test_past_the_deadline_nothing_trains_but_the_evals_run(tmp_path):
    work = workdir(tmp_path)
    (work / "runs" / "big-batch" / "model").mkdir(parents=True)
    (work / "runs" / "big-batch" / "model" / "config.json").write_text("{}")
    done = run_script(work, f"{sys.executable} {REPO / 'tests' / 'beyond_zero_fake.py'}",
                      FAKE_AHAZERO_LOG=str(tmp_path / "commands.jsonl"), DEADLINE="60", EVAL_RESERVE="45")
    assert done.returncode == 0, done.stdout + done.stderr
    status = status_of(work)
    assert [s for s in STEPS if status.get(s) == "skip"] == [
        "c2-cold-sft", "d2-student-grpo", "d3-student-grpo-eval", "d5-teacher-sample"], status
    assert "past the deadline" in (work / "logs" / "status.txt").read_text()
    assert status["d1-student-base-eval"] == status["c7-grpo-alone-eval"] == status["c8-base-eval"] == "ok"


def test_tables_read_eval_jsons_and_training_time(tmp_path):
    table = load_table_module()
    runs = tmp_path / "runs"

    def run(name, pass1, tag, runtime=None, steps=None):
        (runs / name / "eval").mkdir(parents=True)
        (runs / name / "eval" / f"{tag}.json").write_text(json.dumps(
            {"tag": tag, "n": 200, "pass@1": pass1, "format_rate": 0.25, "think_tokens_mean": 105.3,
             "think_tokens_closed_mean": None, "reflection_rate": 0.185, "truncation_rate": 0.085}))
        if runtime is not None:
            (runs / name / "metrics.jsonl").write_text(
                json.dumps({"step": 1, "loss": 1.0}) + "\n" + json.dumps({"step": steps, "train_runtime": runtime})
                + "\n{torn")

    run("bz-student-base", 0.0, "smollm2-135m-instruct")
    run("bz-student-grpo", 0.05, "bz-student-grpo-final", 31.0, 15)
    run("bz-student-sft", 0.2, "bz-student-sft-final", 28.5, 70)
    run("big-batch", 0.645, "big-batch-final", 132.7, 20)
    run("bz-cold-grpo", 0.7, "bz-cold-grpo-step-10", 90.0, 10)  # cut short: its checkpoint was evaluated
    (runs / "bz-data").mkdir()
    (runs / "bz-data" / "teacher.summary.json").write_text(json.dumps(
        {"sampled": 2400, "kept": 560, "prompts": 300, "prompts_kept": 285, "correct_rate": 0.61,
         "generation_seconds": 40.2}))
    out = tmp_path / "t.md"
    assert table.main(["--runs", str(runs), "--teacher-run", str(runs / "big-batch"), "--out", str(out)]) == 0
    text = out.read_text()
    assert "| base | 0.0% | 25.0% | 105.3 | n/a | 18.5% | 8.5% | 200 | - | - | `smollm2-135m-instruct` |" in text
    assert "| + GRPO | 5.0% | 25.0% | 105.3 | n/a | 18.5% | 8.5% | 200 | 15 | 31.0 | `bz-student-grpo-final` |" in text
    assert f"| + SFT + GRPO | {' | '.join(['n/a'] * 7)} | 70 + n/a | 28.5 + n/a | no eval in {runs}/bz-student-sft-grpo/eval |" in text
    assert "| + cold-start SFT + GRPO | 70.0% |" in text and "`bz-cold-grpo-step-10` |" in text
    assert "| GRPO alone (`big-batch`) | 64.5% |" in text
    assert "kept 560 of 2400 completions (285 of 300 prompts; correct 61.0%; generation 40 s)" in text
    assert "student GRPO 31.0 s vs student SFT 28.5 s;" in text


@pytest.mark.slow
def test_the_whole_script_runs_on_a_cpu_with_the_tiny_model(tmp_path, tiny_model_dir):
    """SMOKE=1: every real command at toy size; the teacher's samples come from an oracle (a random model's are wrong)."""
    work = workdir(tmp_path)
    shutil.copytree(tiny_model_dir, work / "runs" / "big-batch" / "model")
    done = run_script(work, f"{sys.executable} {REPO / 'tests' / 'beyond_zero_oracle.py'}", SMOKE="1")
    assert done.returncode == 0, done.stdout + done.stderr
    status = status_of(work)
    assert sorted(status) == sorted(STEPS) and set(status.values()) == {"ok"}, status
    tables = (work / "logs" / "beyond_zero.md").read_text()
    for tag in ("bz-student-grpo-final", "bz-student-sft-final", "bz-student-sft-grpo-final", "bz-cold-sft-final",
                "bz-cold-grpo-final", "big-batch-final"):
        assert f"`{tag}` |" in tables


def test_table_docstring_examples(tmp_path, monkeypatch):
    import doctest

    monkeypatch.chdir(tmp_path)
    result = doctest.testmod(load_table_module(), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0 and result.attempted > 0


def test_parts_picks_one_comparison_and_refuses_an_unknown_one(tmp_path):
    work = workdir(tmp_path)
    (work / "runs" / "big-batch" / "model").mkdir(parents=True)
    (work / "runs" / "big-batch" / "model" / "config.json").write_text("{}")
    fake = f"{sys.executable} {REPO / 'tests' / 'beyond_zero_fake.py'}"
    done = run_script(work, fake, FAKE_AHAZERO_LOG=str(tmp_path / "commands.jsonl"), PARTS="distill")
    assert done.returncode == 0, done.stdout + done.stderr
    ran = set(status_of(work))
    assert {s for s in STEPS if s.startswith("d")} <= ran and not any(s.startswith("c") for s in ran)
    wrong = run_script(work, fake, FAKE_AHAZERO_LOG=str(tmp_path / "commands.jsonl"), PARTS="distil")
    assert wrong.returncode == 2 and "unknown part 'distil' (choose from: distill coldstart)" in wrong.stderr
