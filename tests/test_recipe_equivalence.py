"""Recipes the docs say are the same as a preset on another config are the same, key for key."""

from __future__ import annotations

from helpers import REPO

from ahazero.config.schema import load_config
from ahazero.stages.plan import plan_stages
from ahazero.training.assemble import load_for_device, resolve_for_device

#: Settings that name a run, say where it goes or decide checkpointing and time budgets: not the recipe.
NOT_RECIPE = ("name", "output_root", "cpu_overrides", "stages", "max_train_seconds")
NOT_GRPO_RECIPE = ("save_steps", "save_total_limit")
#: TRL's own defaults, which a config may also write out.
TRL_DEFAULTS = {"loss_type": "dapo", "scale_rewards": "group"}


def recipe(cfg) -> dict:
    data = {k: v for k, v in cfg.model_dump(mode="json").items() if k not in NOT_RECIPE}
    data["grpo"] = {**TRL_DEFAULTS, **{k: v for k, v in data["grpo"].items() if k not in NOT_GRPO_RECIPE}}
    return data


def test_aha_recipe_is_the_default_recipe_with_the_big_batch_preset():
    aha = load_for_device(REPO / "configs" / "aha.yaml", cuda=True)
    big = load_for_device(REPO / "configs" / "default.yaml", cuda=True, presets=["big-batch"])
    assert recipe(aha) == recipe(big)
    assert aha.max_train_seconds == 900  # the target's 15 minutes


def test_gsm8k_warm_stages_are_the_one_minute_preset_then_the_gsm8k_recipe():
    cfg = resolve_for_device(load_config(REPO / "configs" / "gsm8k-warm.yaml"), cuda=True)
    warm, gsm8k = plan_stages(cfg, cuda=True, require_inputs=False)
    one_minute = load_for_device(REPO / "configs" / "default.yaml", cuda=True, presets=["one-minute"])
    assert recipe(warm.config) == recipe(one_minute) and warm.config.max_train_seconds == 58
    reference = load_for_device(REPO / "configs" / "gsm8k.yaml", cuda=True,
                                overrides=["grpo.per_device_train_batch_size=8", "grpo.gradient_accumulation_steps=16",
                                           "grpo.max_steps=400", f"model.name_or_path={gsm8k.model}"])
    assert recipe(gsm8k.config) == recipe(reference) and gsm8k.config.max_train_seconds == 420
    assert gsm8k.model.endswith("arithmetic/model")
