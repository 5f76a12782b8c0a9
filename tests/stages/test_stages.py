"""Stages in one YAML: checked before any runs, chained models, end to end, resumable stage by stage."""

from __future__ import annotations

import json

import pytest
from beyond_zero_oracle import oracle  # the first completion of each prompt right, the rest wrong
from helpers import REPO, base_config

import ahazero.stages.generate as generate
import ahazero.stages.sft as sft_module
from ahazero.config.schema import ConfigError, load_config, validate_dict
from ahazero.observe.rundir import RunDirError, read_metrics
from ahazero.stages.plan import plan_stages
from ahazero.stages.runner import run_stages
from ahazero.stages.samples import SamplesError, read_samples
from ahazero.training.assemble import resolve_for_device

GRPO = {"num_generations": 2, "per_device_train_batch_size": 4, "max_steps": 1, "max_completion_length": 8,
        "learning_rate": 1e-4, "save_steps": 1, "gradient_checkpointing": False}
SFT = {"max_steps": 1, "per_device_train_batch_size": 2, "learning_rate": 1e-4, "gradient_checkpointing": False}


def pipeline(tmp_path, stages, **changes):
    return validate_dict(base_config(name="r1", output_root=str(tmp_path), logging={"report_to": []},
                                     task={"name": "arithmetic", "num_train": 8, "num_test": 2, "max_terms": 2},
                                     grpo=GRPO, sft=SFT, stages=stages, **changes))


def test_models_and_samples_chain_from_stage_to_stage(tmp_path):
    cfg = pipeline(tmp_path, [{"name": "rl", "kind": "grpo"}, {"name": "pick", "kind": "sample", "n": 4},
                              {"name": "tune", "kind": "sft", "model": "base"},
                              {"name": "rl2", "kind": "grpo", "overrides": {"grpo.max_steps": 3}},
                              {"name": "again", "kind": "sample", "model": "rl", "split": "test"}])
    plan = plan_stages(cfg, cuda=False)
    root = tmp_path / "r1"
    assert [(s.model, s.data) for s in plan] == [
        ("tiny", None), (str(root / "rl" / "model"), None), ("tiny", str(root / "pick" / "samples.jsonl")),
        (str(root / "tune" / "model"), None), (str(root / "rl" / "model"), None)]
    assert [s.run_dir for s in plan] == [root / n for n in ("rl", "pick", "tune", "rl2", "again")]
    assert plan[3].config.grpo["max_steps"] == 3 and plan[0].config.grpo["max_steps"] == 1
    assert plan[2].config.sft.data == str(root / "pick" / "samples.jsonl") and not plan[2].config.stages


@pytest.mark.parametrize(("stages", "message"), [
    ([{"name": "a", "kind": "grpo", "n": 3}], "'n' does not apply to a grpo stage (only to: sample, coldstart)"),
    ([{"name": "a", "kind": "grpo"}, {"name": "a", "kind": "sft"}], "stage names must be unique; repeated: a"),
    ([{"name": "a", "kind": "train"}], "stages.0.kind"),
    ([{"name": "base", "kind": "grpo"}], "'base' is taken"),
    ([{"name": "a", "kind": "grpo", "overrides": {"model.name_or_path": "x"}}], "use the stage's 'model'"),
    ([{"name": "a", "kind": "grpo", "model": "b"}, {"name": "b", "kind": "grpo"}], "'b' does not run before"),
    ([{"name": "c", "kind": "coldstart", "n": 4}, {"name": "a", "kind": "grpo", "model": "c"}],
     "stage 'c' is a coldstart stage and writes no model"),
    ([{"name": "a", "kind": "sft"}], "stages.0.data: missing; no sample or coldstart stage runs before 'a'"),
    ([{"name": "a", "kind": "sample", "model": "runs/nowhere/model"}], "'runs/nowhere/model' is no earlier stage"),
    ([{"name": "a", "kind": "grpo"}, {"name": "b", "kind": "grpo", "overrides": {"grpo.learning_rat": 1}}],
     "stages.1 (b): unknown key 'grpo.learning_rat'"),
    ([{"name": "a", "kind": "grpo"}, {"name": "b", "kind": "sample", "n": 2, "split": "dev"}], "stages.1.split"),
    ([{"name": "a", "kind": "coldstart", "n": 100}], "stages.0 (a): coldstart: n must be between 1 and the 8"),
])
def test_a_mistake_in_any_stage_fails_before_the_first_one_runs(tmp_path, stages, message):
    with pytest.raises(ConfigError) as err:
        run_stages(pipeline(tmp_path, stages), cuda=False)
    assert message in str(err.value)
    assert not (tmp_path / "r1").exists()


def test_grpo_then_sample_then_sft_end_to_end(tmp_path, tiny_model_dir, monkeypatch):
    monkeypatch.setattr(generate, "sample_completions", oracle)
    cfg = pipeline(tmp_path, [{"name": "rl", "kind": "grpo"},
                              {"name": "pick", "kind": "sample", "n": 3, "prompts": 4},
                              {"name": "tune", "kind": "sft"}])
    root = run_stages(cfg, cuda=False)
    assert root == tmp_path / "r1" and (root / "config.yaml").is_file()
    status = {name: json.loads((root / name / "stage.json").read_text()) for name in ("rl", "pick", "tune")}
    assert all(s["status"] == "done" for s in status.values())
    assert status["rl"]["steps"] == 1 and status["tune"]["steps"] == 1
    assert status["pick"]["input_model"] == str(root / "rl" / "model")
    assert (status["pick"]["sampled"], status["pick"]["kept"], status["pick"]["rejected"]) == (12, 4, {"wrong": 8})
    assert status["tune"]["input_model"] == str(root / "rl" / "model")
    assert len(read_samples(root / "pick" / "samples.jsonl")) == 4
    assert (root / "rl" / "traces").is_dir() and (root / "rl" / "eval" / "base.json").is_file()
    assert sorted(p.name for p in (root / "tune" / "eval").glob("*.json")) == ["final.json"]
    assert read_metrics(root / "tune" / "metrics.jsonl")[0]["loss"] > 0
    report = (root / "report.md").read_text()
    assert "| | base (`tiny`) | rl | tune |" in report and "| pass@1 |" in report
    assert "kept 4 of 12 completions" in report
    assert (root / "report" / "report.html").is_file()
    assert load_config(root / "tune" / "config.yaml").run_dir == root / "tune"  # `ahazero eval` on a stage


def test_a_warm_up_on_another_task_is_evaluated_on_both_tasks(tmp_path, tiny_model_dir):
    warm = {"task": {"name": "linear_equation", "num_train": 8, "num_test": 3}}
    cfg = pipeline(tmp_path, [{"name": "warm", "kind": "grpo", "overrides": warm}, {"name": "main", "kind": "grpo"}])
    root = run_stages(cfg, cuda=False)
    warm_evals = json.loads((root / "warm" / "stage.json").read_text())["evals"]
    main_evals = json.loads((root / "main" / "stage.json").read_text())["evals"]
    assert sorted(warm_evals) == ["base", "final"] and {e["task"] for e in warm_evals.values()} == {"linear_equation"}
    assert sorted(main_evals) == ["base", "final", "start"]
    assert {e["task"] for e in main_evals.values()} == {"arithmetic"}
    assert main_evals["base"]["model"] == "tiny" and main_evals["start"]["model"] == str(root / "warm" / "model")
    assert (warm_evals["final"]["n"], main_evals["final"]["n"]) == (3, 2)
    assert sorted(p.name for p in (root / "main" / "eval").glob("*.json")) == ["final.json", "tiny.json", "warm-final.json"]
    report = (root / "report.md").read_text()
    assert "### `linear_equation`" in report and "### `arithmetic`" in report
    assert "| | base (`tiny`) | warm |" in report and "| | base (`tiny`) | main: start | main |" in report


def test_a_sample_stage_that_keeps_nothing_stops_the_run(tmp_path, tiny_model_dir):
    cfg = pipeline(tmp_path, [{"name": "pick", "kind": "sample", "n": 1, "prompts": 1},
                              {"name": "tune", "kind": "sft"}])
    with pytest.raises(SamplesError, match="stage pick kept none of its 1 completions"):
        run_stages(cfg, cuda=False)
    assert not (tmp_path / "r1" / "pick" / "stage.json").exists() and not (tmp_path / "r1" / "tune").exists()


def test_resume_runs_only_the_unfinished_stages(tmp_path, tiny_model_dir, monkeypatch):
    samples = tmp_path / "given.jsonl"
    samples.write_text(json.dumps({"id": "a", "problem": "Compute: 1 + 2", "prefill": "<think>\n",
                                   "completion": "1 + 2 = 3\n</think>\n<answer>3</answer>"}) + "\n")
    cfg = pipeline(tmp_path, [{"name": "rl", "kind": "grpo", "eval": False},
                              {"name": "tune", "kind": "sft", "data": str(samples), "eval": False}])
    root = run_stages(cfg, cuda=False, stop_after="rl")
    assert (root / "rl" / "stage.json").is_file() and not (root / "tune").exists()
    rl_metrics = (root / "rl" / "metrics.jsonl").read_text()

    with pytest.raises(RunDirError, match="pass --resume"):
        run_stages(cfg, cuda=False)

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(sft_module, "train_sft", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run_stages(cfg, cuda=False, resume=True)
    monkeypatch.undo()

    import ahazero.training.assemble as assemble

    def must_not_train(*args, **kwargs):
        raise AssertionError("a finished grpo stage was trained again")

    monkeypatch.setattr(assemble, "train", must_not_train)
    run_stages(cfg, cuda=False, resume=True)
    assert json.loads((root / "tune" / "stage.json").read_text())["steps"] == 1
    assert not (root / "rl" / "eval").exists() and not (root / "tune" / "eval").exists()  # eval: false
    assert (root / "rl" / "metrics.jsonl").read_text() == rl_metrics
    assert "| rl | grpo |" in (root / "report.md").read_text()


@pytest.mark.parametrize("name", ["coldstart.yaml", "distill-grpo.yaml", "distill-sft.yaml", "gsm8k-warm.yaml"])
@pytest.mark.parametrize("cuda", [True, False], ids=["gpu-profile", "cpu-profile"])
def test_shipped_stage_configs_check_every_stage(name, cuda, tmp_path):
    cfg = resolve_for_device(load_config(REPO / "configs" / name, [f"output_root={tmp_path}"]), cuda=cuda)
    plan = plan_stages(cfg, cuda=False, require_inputs=False)
    assert [s.kind for s in plan][-1] == "grpo"
    if name == "distill-sft.yaml":  # the teacher must be trained first, and says so
        with pytest.raises(ConfigError, match="runs/default(-cpu)?/model' is no earlier stage"):
            plan_stages(cfg, cuda=False)
