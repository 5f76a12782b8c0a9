"""configs/aha-reflect.yaml and its control: they resolve, check, differ only where they say, and hold out unseen problems."""

from __future__ import annotations

import pytest
from helpers import REPO

from ahazero.cli import main
from ahazero.config.schema import apply_overrides, dump_config, load_config
from ahazero.stages.coldstart import check_coldstart, coldstart_request
from ahazero.stages.plan import plan_stages
from ahazero.tasks import get_task
from ahazero.training.assemble import load_for_device, resolve_for_device

RECIPE = REPO / "configs" / "aha-reflect.yaml"
CONTROL = REPO / "configs" / "aha-reflect-control.yaml"
ZERO = "stages=[{name: grpo, kind: grpo}]"  # variant (a): the same GRPO from the base model
HARD = ["task.max_terms=5", "task.max_value=999"]  # the harder held-out set


@pytest.mark.parametrize("config", [RECIPE, CONTROL], ids=["recipe", "control"])
@pytest.mark.parametrize("device", ["cuda", "cpu"])
def test_the_configs_resolve_plan_and_pass_ahazero_check(config, device, tmp_path, capsys):
    assert main(["check", str(config), "--device", device, f"output_root={tmp_path}"]) == 0
    assert "# config OK" in capsys.readouterr().err
    cfg = resolve_for_device(load_config(config, [f"output_root={tmp_path}"]), cuda=device == "cuda")
    plan = plan_stages(cfg, cuda=False)
    assert [(s.name, s.kind) for s in plan] == [("coldstart", "coldstart"), ("sft", "sft"), ("grpo", "grpo")]
    assert plan[2].model == str(tmp_path / cfg.name / "sft" / "model")
    assert plan[1].data == str(tmp_path / cfg.name / "coldstart" / "samples.jsonl")


def test_the_control_differs_from_the_recipe_only_in_name_and_coldstart_style():
    recipe, control = load_config(RECIPE), load_config(CONTROL)
    assert coldstart_request(recipe.stages[0]).style == "reflective"
    request = coldstart_request(control.stages[0])
    assert (request.style, request.n, request.slip_kinds) == ("plain", 400, ())
    same = apply_overrides(control, {"name": recipe.name, "cpu_overrides.name": recipe.cpu_overrides["name"],
                                     "stages.0": recipe.stages[0].model_dump(exclude_none=True)})
    assert dump_config(same) == dump_config(recipe)


def test_the_recipe_is_the_aha_rewards_without_length_or_check_phrase_credit_and_counts_steps_not_time():
    recipe, aha = load_for_device(RECIPE, cuda=True), load_for_device(REPO / "configs" / "aha.yaml", cuda=True)
    assert recipe.rewards == aha.rewards and recipe.prompt == aha.prompt
    assert recipe.max_train_seconds is None and recipe.grpo["max_steps"] == 20
    g = recipe.grpo
    assert g["per_device_train_batch_size"] * g["gradient_accumulation_steps"] == 256
    assert (g["temperature"], g["max_completion_length"]) == (1.1, 512)
    assert recipe.task.options()["seed"] == 0  # other seeds keep the held-out sets
    request = coldstart_request(recipe.stages[0])
    assert (request.n, request.slip_fraction, request.slip_kinds) == (400, 0.3, ("carry", "sign", "swap"))


@pytest.mark.parametrize("device", ["cuda", "cpu"])
def test_variant_zero_is_the_recipes_grpo_from_the_base_model(device, tmp_path, capsys):
    overrides = [ZERO, "name=aha-reflect-zero", f"output_root={tmp_path}"]
    assert main(["check", str(RECIPE), "--device", device, *overrides]) == 0
    capsys.readouterr()
    zero = plan_stages(load_for_device(RECIPE, cuda=device == "cuda", overrides=overrides), cuda=False)
    recipe = plan_stages(load_for_device(RECIPE, cuda=device == "cuda", overrides=[f"output_root={tmp_path}"]),
                         cuda=False)
    assert [s.kind for s in zero] == ["grpo"] and zero[0].model == "qwen2.5-coder-0.5b-instruct"
    assert zero[0].config.grpo == recipe[2].config.grpo and zero[0].config.task == recipe[2].config.task


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_neither_held_out_set_holds_a_problem_of_the_cold_start(seed):
    cfg = load_for_device(RECIPE, cuda=True, overrides=[f"seed={seed}"])
    request = coldstart_request(cfg.stages[0])
    cold = {r["problem"] for r in check_coldstart(cfg, n=request.n, style=request.style, seed=request.seed)}
    assert len(cold) == 400
    options = cfg.task.options()
    train = {r["problem"] for r in get_task("arithmetic", **options).load("train")}
    held_out = {r["problem"] for r in get_task("arithmetic", **options).load("test")}
    hard_cfg = load_for_device(RECIPE, cuda=True, overrides=[f"seed={seed}", *HARD])
    hard = {r["problem"] for r in get_task("arithmetic", **hard_cfg.task.options()).load("test")}
    assert len(held_out) == len(hard) == 200 and cold <= train
    assert not cold & held_out and not cold & hard and not train & hard
    assert held_out == {r["problem"] for r in get_task("arithmetic", **load_for_device(RECIPE, cuda=True).task.options())
                        .load("test")}  # the same held-out problems whatever the run's seed
