"""Cold start: chains of thought written from the problem's structure are correct, formatted and readable."""

from __future__ import annotations

import pytest
from helpers import REPO, base_config

from ahazero.cli import main
from ahazero.config.schema import ConfigError, validate_dict
from ahazero.stages.coldstart import chain_of_thought, coldstart, parse_expression
from ahazero.stages.samples import read_samples
from ahazero.tasks import get_task
from ahazero.tasks._expr import render

RECIPE_REWARDS = [{"name": "accuracy"}, {"name": "think_format", "weight": 0.5, "require_answer_tags": True},
                  {"name": "language_consistency", "weight": 0.1}]


def test_parse_expression_reads_back_every_generated_problem():
    task = get_task("arithmetic", num_train=300, num_test=0, max_terms=6, operators=["+", "-", "*", "/"], seed=3)
    for row in task.load("train"):
        expression = row["problem"].removeprefix("Compute: ")
        assert render(parse_expression(expression)) == expression
    for bad in ("1 +", "(1 + 2", "1 + 2)", "2 ^ 3", ""):
        with pytest.raises(ValueError, match="cannot parse"):
            parse_expression(bad)


def test_a_chain_shows_every_step_a_check_and_the_answer():
    text = chain_of_thought({"problem": "Compute: 37 * 84 - (50 - 8)"}, task="arithmetic")
    lines = text.splitlines()
    assert lines[1] == "Step 1: 37 * 84 = 37 * 80 + 37 * 4 = 2960 + 148 = 3108"
    assert lines[2:4] == ["Step 2: 50 - 8 = 42", "Step 3: 3108 - 42 = 3066"]
    assert lines[4].startswith("Let me check by undoing each step: 3066 + 42 = 3108, 42 + 8 = 50, 3108 / 84 = 37")
    assert lines[-3:] == ["So the answer is 3066.", "</think>", "<answer>3066</answer>"]


def test_the_readme_example():
    assert chain_of_thought({"problem": "Compute: 92 * (12 + 44)"}, task="arithmetic") == (
        "Compute 92 * (12 + 44) step by step.\n"
        "Step 1: 12 + 44 = 56\n"
        "Step 2: 92 * 56 = 92 * 50 + 92 * 6 = 4600 + 552 = 5152\n"
        "Let me check by undoing each step: 5152 / 56 = 92, 56 - 44 = 12. Every step checks out.\n"
        "So the answer is 5152.\n</think>\n<answer>5152</answer>")


def test_an_example_the_rewards_reject_is_an_error_not_a_silent_drop(tmp_path, monkeypatch):
    import ahazero.stages.coldstart as module

    monkeypatch.setitem(module.WRITERS, "arithmetic", lambda row: (["Guess."], "0"))
    cfg = validate_dict(base_config(rewards=RECIPE_REWARDS, output_root=str(tmp_path)))
    with pytest.raises(RuntimeError, match="coldstart wrote an example the config's rewards reject \\(wrong"):
        coldstart(cfg, n=3)
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("task", [
    {"name": "arithmetic"},
    {"name": "arithmetic", "max_terms": 5, "max_value": 999},
    {"name": "arithmetic", "operators": ["+", "-", "*", "/"], "fractions": True, "max_terms": 4},
    {"name": "linear_equation"},
    {"name": "linear_equation", "integer_solutions": False},
], ids=lambda t: "-".join(f"{k}={v}" for k, v in t.items() if k != "name") or t["name"])
def test_every_example_passes_the_recipes_rewards(task, tmp_path):
    cfg = validate_dict(base_config(task={**task, "num_train": 150, "num_test": 2}, rewards=RECIPE_REWARDS,
                                    output_root=str(tmp_path)))
    summary = coldstart(cfg, n=150)  # raises if the rewards reject any example
    records = read_samples(summary["files"][0])
    assert summary["kept"] == len(records) == 150
    assert all(r["correct"] and r["formatted"] and r["language_consistency"] == 1.0 for r in records)
    assert all("let me check" in r["reflections"] for r in records)
    assert all(r["completion"].endswith(f"<answer>{r['answer']}</answer>") for r in records)


def test_coldstart_picks_a_seeded_subset_and_writes_without_a_prefill_when_the_prompt_has_none(tmp_path):
    cfg = validate_dict(base_config(task={"name": "arithmetic", "num_train": 40, "num_test": 2},
                                    prompt={"prefill_think": False}, rewards=RECIPE_REWARDS, output_root=str(tmp_path)))
    first = read_samples(coldstart(cfg, n=10, out=tmp_path / "a.jsonl")["files"][0])
    again = read_samples(coldstart(cfg, n=10, out=tmp_path / "b.jsonl")["files"][0])
    assert [r["id"] for r in first] == [r["id"] for r in again]
    assert all(r["prefill"] == "" and r["completion"].startswith("<think>\n") for r in first)
    other = read_samples(coldstart(cfg.model_copy(update={"seed": 1}), n=10, out=tmp_path / "c.jsonl")["files"][0])
    assert [r["id"] for r in other] != [r["id"] for r in first]


def test_unsupported_task_and_too_many_examples_fail_before_writing(tmp_path):
    countdown = validate_dict(base_config(task={"name": "countdown", "num_train": 8, "num_test": 2},
                                          rewards=[{"name": "countdown"}], output_root=str(tmp_path)))
    with pytest.raises(ConfigError, match="coldstart writes chains of thought for arithmetic, chain, linear_equation"):
        coldstart(countdown, n=4)
    small = validate_dict(base_config(rewards=RECIPE_REWARDS, output_root=str(tmp_path)))
    with pytest.raises(ConfigError, match="n must be between 1 and the 32 train problems"):
        coldstart(small, n=33)
    assert not list(tmp_path.iterdir())


def test_the_command_writes_the_set_of_the_shipped_recipe_without_a_model(tmp_path, capsys):
    out = tmp_path / "cold.jsonl"
    assert main(["coldstart", str(REPO / "configs" / "coldstart.yaml"), "--n", "5", "--out", str(out)]) == 0
    assert "kept 5 of 5 completions" in capsys.readouterr().out
    records = read_samples(out)
    assert len(records) == 5 and all(r["source"] == "coldstart" for r in records)
