"""`ahazero sweep` with a stand-in for the train and eval subprocesses: scheduling, skipping, resuming, summary.

The real commands run in test_sweep_tiny.py; here each subprocess is tests/experiments/fake_ahazero.py,
which writes a run directory the way `ahazero train` / `ahazero eval` do, in a second.
"""

from __future__ import annotations

import io
import json
import sys
from pathlib import Path

import pytest
from helpers import REPO
from rich.console import Console

from ahazero.cli import build_parser
from ahazero.config.schema import ConfigError
from ahazero.experiments.sweep import run_sweep_command

FAKE = Path(__file__).with_name("fake_ahazero.py")
SMOKE = REPO / "configs" / "smoke.yaml"
GRID = ["--grid", "grpo.learning_rate=1e-4,1e-3", "--grid", "task.max_terms=2"]
RUNS = ("smoke-learning_rate_1e-4-max_terms_2", "smoke-learning_rate_1e-3-max_terms_2")


@pytest.fixture
def sweep(tmp_path, monkeypatch):
    """Run `ahazero sweep configs/smoke.yaml output_root=runs ... ARGS` in tmp_path; return (exit code, output)."""
    monkeypatch.chdir(tmp_path)
    calls = tmp_path / "calls.jsonl"
    monkeypatch.setenv("FAKE_AHAZERO_CALLS", str(calls))
    monkeypatch.setenv("PYTHONPATH", f"{REPO / 'src'}:{REPO}")

    def run(*args: str, behaviour: dict | None = None) -> tuple[int, str]:
        monkeypatch.setenv("FAKE_AHAZERO", json.dumps(behaviour or {}))
        calls.write_text("")
        parsed = build_parser().parse_args(["sweep", str(SMOKE), "output_root=runs", *args])
        out = io.StringIO()
        code = run_sweep_command(parsed, console=Console(file=out, width=300, soft_wrap=True),
                                 prefix=[sys.executable, str(FAKE)])
        return code, out.getvalue()

    run.calls = lambda: [json.loads(line) for line in calls.read_text().splitlines()]  # type: ignore[attr-defined]
    return run


def summary(tmp_path: Path) -> dict:
    return json.loads((tmp_path / "sweeps" / "smoke" / "summary.json").read_text())


def test_a_2x1_grid_trains_evaluates_and_summarises_every_variant(sweep, tmp_path):
    code, out = sweep(*GRID, "--eval", "--parallel", "2")
    assert code == 0, out
    commands = [(c[0], next((c[i + 1] for i, a in enumerate(c) if a == "--model"), None)) for c in sweep.calls()]
    assert sorted(commands) == [("eval", "base"), ("eval", "final"), ("eval", "final"), ("train", None),
                                ("train", None)]  # the base model once: both variants share model, task, prompt
    for call in sweep.calls():  # what the sweep runs is what the real command line accepts
        assert build_parser().parse_known_args(call)[0].command == call[0]
    assert out.count("finished after") == 2 and "pass@1 20.0% → 50.0%" in out
    rows = summary(tmp_path)["variants"]
    assert [r["run_dir"] for r in rows] == [f"runs/{name}" for name in RUNS]
    row = rows[0]
    assert row["values"] == {"grpo.learning_rate": 1e-4, "task.max_terms": 2}
    assert (row["status"], row["steps"], row["train_seconds"]) == ("finished", 3, 123.0)
    assert (row["pass1_base"], row["pass1_final"]) == (0.2, 0.5)
    # format first reached 90% at step 2 (20 closed-think tokens); the last step has 40: growth 2x
    assert (row["format90_step"], row["think_closed_fmt90"], row["think_closed_end"]) == (2, 20.0, 40.0)
    assert row["think_closed_growth"] == 2.0
    assert row["reflection_r1"]["first_step"] == 0.25 and row["reflection_r1"]["end"] == 0.0
    assert row["reflection_drgrpo"]["eval_base"] == 0.1 and row["reflection_drgrpo"]["end"] == 0.125
    assert row["reflection_r1"]["final_eval_split"] == {"accuracy_reflective": 0.5, "accuracy_non_reflective": 0.25,
                                                        "reflective": 2, "non_reflective": 8}
    assert row["target"] == {"gain": True, "growth": True, "above_base": True, "time": True, "met": True}
    md = (tmp_path / "sweeps" / "smoke" / "summary.md").read_text()
    assert "| learning_rate_1e-4-max_terms_2 | finished | 3 | 123 | 20.0% → 50.0% |" in md
    assert "--grid grpo.learning_rate=1e-4,1e-3" in md
    assert (tmp_path / "sweeps" / "smoke" / "report" / "report.html").is_file()
    # the shared base eval is copied into each run, so `ahazero report` of one run shows it too
    assert json.loads((tmp_path / "runs" / RUNS[1] / "eval" / "base.json").read_text())["pass@1"] == 0.2
    assert "# " in (tmp_path / "runs" / RUNS[0] / "sweep.log").read_text()  # per-variant log with the commands

    code, out = sweep(*GRID, "--eval", "--parallel", "2", "--no-report")  # again: everything is done
    assert code == 0 and sweep.calls() == []
    assert out.count("finished earlier, skipped") == 2
    assert [r["status"] for r in summary(tmp_path)["variants"]] == ["finished", "finished"]


def test_a_failing_variant_does_not_stop_the_others_and_resume_retries_it(sweep, tmp_path):
    code, out = sweep(*GRID, "--eval", "--parallel", "1", "--no-report", behaviour={"fail": [RUNS[0]]})
    assert code == 1
    assert "failed (exit 1)" in out and "fake failure at step 1" in out  # the log's last lines
    statuses = [r["status"] for r in summary(tmp_path)["variants"]]
    assert statuses == ["failed (exit 1)", "finished"]
    assert [c[0] for c in sweep.calls()].count("eval") == 2  # base + the variant that trained; not the failed one

    with pytest.raises(ConfigError, match=f"runs/{RUNS[0]} holds a run that did not finish; pass --resume"):
        sweep(*GRID, "--eval")
    code, out = sweep(*GRID, "--eval", "--resume", "--no-report")
    assert code == 0, out
    calls = sweep.calls()
    assert [c[0] for c in calls] == ["train", "eval"] and "--resume" in calls[0]
    assert f"name={RUNS[0]}" in calls[0]
    assert [r["status"] for r in summary(tmp_path)["variants"]] == ["finished", "finished"]
    steps = [json.loads(line).get("step") for line in (tmp_path / "runs" / RUNS[0] / "metrics.jsonl").open()]
    assert steps == [1, 2, 3, 3]  # continued from the checkpoint of step 1


def test_an_interrupted_sweep_stops_its_runs_and_continues_with_resume(sweep, tmp_path):
    code, out = sweep(*GRID, "--no-report", behaviour={"interrupt": [RUNS[1]]})
    assert code == 130
    assert "interrupted" in out and "--resume" in out
    rows = summary(tmp_path)["variants"]  # the summary is written also when interrupted
    assert [r["status"] for r in rows] == ["finished", "interrupted"]
    code, out = sweep(*GRID, "--resume", "--no-report")
    assert code == 0, out
    assert [c[0] for c in sweep.calls()] == ["train"] and "--resume" in sweep.calls()[0]
    assert "finished earlier, skipped" in out
    assert [r["status"] for r in summary(tmp_path)["variants"]] == ["finished", "finished"]


def test_a_run_stopped_before_its_first_checkpoint_starts_again_and_keeps_the_old_folder(sweep, tmp_path):
    code, _ = sweep(*GRID, "--no-report", behaviour={"no_checkpoint": [RUNS[0]]})
    assert code == 1
    code, out = sweep(*GRID, "--resume", "--no-report")
    assert code == 0, out
    assert "stopped before its first checkpoint; starting it again" in out
    assert [c[0] for c in sweep.calls()] == ["train"] and "--resume" not in sweep.calls()[0]
    kept = list((tmp_path / "runs").glob(f"{RUNS[0]}.stopped-*"))
    assert len(kept) == 1 and (kept[0] / "metrics.jsonl").is_file()


def test_the_whole_grid_is_validated_before_anything_runs(sweep, tmp_path):
    with pytest.raises(ConfigError, match="variant smoke-max_terms_3-num_generations_3: grpo: .*divisible by "
                                          "num_generations"):
        sweep("--grid", "task.max_terms=3", "--grid", "grpo.num_generations=4,3")
    with pytest.raises(ConfigError, match="variant smoke-max_termz_3: task: .*unknown option 'max_termz'"):
        sweep("--grid", "task.max_termz=3")
    with pytest.raises(ConfigError, match="name=... is set by the sweep"):
        sweep("name=mine", *GRID)
    with pytest.raises(ConfigError, match="--seeds and --grid seed"):
        sweep("--grid", "seed=1,2", "--seeds", "2")
    assert sweep.calls() == [] and not (tmp_path / "runs").exists() and not (tmp_path / "sweeps").exists()


def test_a_run_of_another_config_is_never_reused(sweep, tmp_path):
    assert sweep(*GRID, "--no-report")[0] == 0
    with pytest.raises(ConfigError, match="holds a run of another config .*max_steps: 4 -> 5.*choose another --name"):
        sweep("grpo.max_steps=5", *GRID)
    code, _ = sweep("grpo.max_steps=5", *GRID, "--name", "longer", "--no-report")
    assert code == 0 and (tmp_path / "runs" / "longer-learning_rate_1e-4-max_terms_2").is_dir()


def test_seeds_give_one_run_per_seed_on_the_same_problems(sweep, tmp_path):
    code, out = sweep("--grid", "task.max_terms=2", "--seeds", "2", "--dry-run")
    assert code == 0
    assert "smoke-max_terms_2-s0: new" in out and "smoke-max_terms_2-s1: new" in out
    assert "task.seed=0" in out and "seed=1 " in out + " "
    assert "note: --seeds vary the training seed only" in out
    assert sweep.calls() == [] and not (tmp_path / "sweeps").exists()


def test_named_variants_run_beside_the_grid_one_with_another_config_and_preset(sweep, tmp_path):
    default = str(REPO / "configs" / "default.yaml")
    code, out = sweep("--grid", "grpo.learning_rate=1e-4,1e-3", "--variant", "ref", f"config={default}",
                      "preset=big-batch", "grpo.max_steps=3", "--eval", "--parallel", "3", "--no-report")
    assert code == 0, out
    calls = sweep.calls()
    for call in calls:  # what the sweep runs is what the real command line accepts
        assert build_parser().parse_known_args(call)[0].command == call[0]
    ref = [c for c in calls if "name=smoke-ref" in c and "base" not in c]
    assert sorted(c[0] for c in ref) == ["eval", "train"] and all(c[1] == default for c in ref)
    train = next(c for c in ref if c[0] == "train")
    assert train[train.index("--preset") + 1] == "big-batch" and "grpo.max_steps=3" in train
    assert not any("--preset" in c for c in calls if "name=smoke-ref" not in c)
    bases = [c for c in calls if "base" in c]  # smoke's held-out split and default's differ: two base evals
    assert sorted(c[1] for c in bases) == sorted([str(SMOKE), default])
    data = summary(tmp_path)
    assert [r["variant"] for r in data["variants"]] == ["learning_rate_1e-4", "learning_rate_1e-3", "ref"]
    assert [r["status"] for r in data["variants"]] == ["finished"] * 3
    assert data["variants"][2]["values"] == {"grpo.max_steps": 3} and len(data["base_evals"]) == 2
    assert data["variants"][2]["pass1_base"] == 0.2  # its own base eval (default.yaml's task)
    assert data["variants"][2]["run_dir"] == "runs/smoke-ref"
    assert json.loads((tmp_path / "sweeps" / "smoke" / "plan.json").read_text())[
        "variants"][2]["config"] == default
    md = (tmp_path / "sweeps" / "smoke" / "summary.md").read_text()
    assert f"- variant `ref`: config `{default}`, preset `big-batch`, `grpo.max_steps=3`" in md
    assert f"--variant ref config={default} preset=big-batch grpo.max_steps=3" in md
    assert "| learning_rate_1e-4, learning_rate_1e-3 | 10 | 20.0% |" in md and "| ref | 10 | 20.0% |" in md


def test_named_variants_alone_and_their_mistakes(sweep, tmp_path):
    code, out = sweep("--variant", "a", "grpo.learning_rate=1e-4", "--variant", "b", "task.max_terms=3", "--dry-run")
    assert code == 0, out
    assert "smoke-a: new" in out and "smoke-b: new" in out and "smoke-base" not in out
    assert "2 variant(s) valid" in out
    with pytest.raises(ConfigError, match="give a label first"):
        sweep("--variant", "seed=1")
    with pytest.raises(ConfigError, match="two variants share a run directory"):
        sweep("--variant", "a", "seed=1", "--variant", "a", "seed=2")
    with pytest.raises(ConfigError, match="variant smoke-x: config file not found"):
        sweep("--variant", "x", f"config={tmp_path / 'missing.yaml'}")
    with pytest.raises(ConfigError, match="--variant x: the sweep sets 'name'"):
        sweep("--variant", "x", "name=y")
    with pytest.raises(ConfigError, match="variant smoke-x: task: .*unknown option 'max_termz'"):
        sweep("--variant", "x", "task.max_termz=3")
    with pytest.raises(ConfigError, match="--seeds and --grid seed"):
        sweep("--variant", "x", "seed=3", "--seeds", "2")
    assert sweep.calls() == [] and not (tmp_path / "runs").exists() and not (tmp_path / "sweeps").exists()
