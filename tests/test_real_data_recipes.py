"""configs/gsm8k.yaml and configs/math500.yaml offline: the full test split, transfer evaluation, bad data."""

from __future__ import annotations

import json
import shutil

import pytest
from helpers import REPO

from ahazero.cli import main
from ahazero.config.validate import check_config
from ahazero.training.assemble import load_for_device


def recipe(name, *overrides, cuda=False):
    return load_for_device(REPO / "configs" / name, cuda=cuda, overrides=list(overrides))


def test_gsm8k_recipe_has_the_cures_on_and_its_full_test_split_offline(tmp_path):
    cfg = recipe("gsm8k.yaml", cuda=True)
    assert cfg.groups.zero_variance == "drop" and cfg.groups.reward == "accuracy"
    weights = {r.name: r.weight for r in cfg.rewards}
    assert weights == {"accuracy": 1.0, "think_format": 0.1, "language_consistency": 0.0}
    assert cfg.grpo["max_completion_length"] == 512 and cfg.on_collapse == "warn"
    assert (cfg.grpo["loss_type"], cfg.grpo["scale_rewards"]) == ("dr_grpo", "none")
    assert cfg.grpo["per_device_train_batch_size"] * cfg.grpo["gradient_accumulation_steps"] == 128
    checked = check_config(cfg, cuda=True)
    accuracy, fmt = checked.reward_funcs[0], checked.reward_funcs[1]
    assert accuracy.answer_source == "tags" and fmt.require_answer_tags
    boxed = r"Step 2: 16 - 3 - 4 = 9 eggs, 9 x 2 = 18. Therefore, Janet makes \boxed{18} dollars."
    tagged = "16 - 3 - 4 = 9 eggs, 9 x 2 = 18.\n</think>\n<answer>18</answer>"
    assert accuracy(completions=[boxed, tagged], answer=["18", "18"], prefill=["<think>"] * 2) == [0.0, 1.0]
    assert checked.task.num_test is None
    test = checked.task.load("test")  # the hub is off in tests: the bundled copy
    assert len(test) == 1319 and test[0]["id"] == "gsm8k-test-00000"


def test_math500_recipe_evaluates_all_500_and_refuses_to_train(tmp_path):
    checked = check_config(recipe("math500.yaml", cuda=True), cuda=True)
    assert len(checked.task.load("test")) == 500
    with pytest.raises(Exception, match="nothing to train on"):
        checked.task.load("train")


def trained_run(tmp_path, tiny_model_dir, name="default"):
    """A run directory as training leaves it, holding the tiny model as its final model."""
    run = tmp_path / name
    shutil.copytree(tiny_model_dir, run / "model")
    return run


@pytest.mark.parametrize(("config", "task"), [("gsm8k.yaml", "gsm8k"), ("math500.yaml", "math500")])
def test_another_runs_model_is_evaluated_on_real_data_with_overrides(tmp_path, tiny_model_dir, config, task, capsys):
    run = trained_run(tmp_path, tiny_model_dir)
    code = main(["eval", f"configs/{config}", "--model", str(run / "model"), f"name=default-on-{task}",
                 f"output_root={tmp_path}", "--limit", "2", "--max-new-tokens", "8"])
    assert code == 0, capsys.readouterr().err
    result = json.loads((tmp_path / f"default-on-{task}" / "eval" / "default-final.json").read_text())
    assert result["task"] == task and result["n"] == 2 and result["tag"] == "default-final"
    assert result["model"] == str(run / "model")


def test_base_model_eval_of_the_gsm8k_recipe(tmp_path, tiny_model_dir, capsys):
    code = main(["eval", "configs/gsm8k.yaml", "--model", "base", "model.name_or_path=tiny",
                 f"output_root={tmp_path}", "--limit", "3", "--batch-size", "3"])
    assert code == 0, capsys.readouterr().err
    result = json.loads((tmp_path / "gsm8k-cpu" / "eval" / "base.json").read_text())
    assert result["n"] == 3 and result["max_new_tokens"] == 48  # the CPU profile's length
    assert 0.0 <= result["pass@1_in_tags"] <= result["pass@1"]  # field grading, and the strict one beside it
    samples = [json.loads(line) for line in (tmp_path / "gsm8k-cpu" / "eval" / "base-samples.jsonl").open()]
    assert all(s["id"].startswith("gsm8k-test-") and s["gold"].isdigit() for s in samples)  # real problems


@pytest.mark.parametrize(("content", "message"), [
    (b"", "is empty"),
    (b"\x89PNG\r\n\x1a\n\x00\x00", "is not UTF-8 text"),
    (b'{"question": "1+1?"}\n', "missing column 'answer'"),
])
def test_a_bad_test_file_is_one_clear_line_from_the_cli(tmp_path, tiny_model_dir, capsys, content, message):
    bad = tmp_path / "test.jsonl"
    bad.write_bytes(content)
    code = main(["eval", "configs/gsm8k.yaml", "--model", "base", "model.name_or_path=tiny",
                 f"output_root={tmp_path}", f"task.test_file={bad}"])
    err = capsys.readouterr().err
    assert code == 2
    line = next(line for line in err.splitlines() if line.startswith("data error:"))
    assert message in line and str(bad) in line and "Traceback" not in err


README_VARIANTS = [
    ["name=gsm8k-any", "rewards.0.answer_source=any"],
    ["name=gsm8k-fmt0", "rewards.1.weight=0.0"],
    ["name=gsm8k-group", "grpo.scale_rewards=group", "grpo.loss_type=dapo"],
    ["name=gsm8k-keep", "groups.zero_variance=keep"],
]


@pytest.mark.parametrize("overrides", README_VARIANTS, ids=lambda o: o[0])
def test_the_readme_variants_are_valid_configs(overrides):
    checked = check_config(recipe("gsm8k.yaml", *overrides, cuda=True), cuda=True)
    assert checked.config.name == overrides[0].split("=")[1]
    if "rewards.0.answer_source=any" in overrides:  # the previous reading: tags, else the last box
        assert checked.reward_funcs[0].answer_source == "any"
    if "rewards.1.weight=0.0" in overrides:  # no format credit: accuracy in tags alone
        assert [(r.name, r.weight) for r in checked.config.rewards[:2]] == [("accuracy", 1.0), ("think_format", 0.0)]


def test_the_gsm8k_cpu_profile_trains_end_to_end(tmp_path, tiny_model_dir, capsys, monkeypatch):
    """The recipe's own loss (dr_grpo, no std scaling, groups dropped by in-tags accuracy) runs on CPU."""
    monkeypatch.setenv("TENSORBOARD_LOGGING_DIR", str(tmp_path / "tensorboard"))  # a user's folder wins
    code = main(["train", "configs/gsm8k.yaml", "model.name_or_path=tiny", f"output_root={tmp_path}"])
    assert code == 0, capsys.readouterr().err
    run = tmp_path / "gsm8k-cpu"
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert any("rewards/accuracy/mean" in r and "behaviour/format_rate" in r for r in rows)
    assert (run / "model").is_dir() and [p.name for p in (run / "checkpoints").glob("checkpoint-*")] == ["checkpoint-2"]
