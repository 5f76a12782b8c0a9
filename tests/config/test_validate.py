"""Cross-checks before any model loads: rewards, tasks, columns, GRPO settings, run directory."""

from __future__ import annotations

import os

import pytest
from helpers import REPO, base_config

from ahazero.config.schema import ConfigError, validate_dict
from ahazero.config.validate import build_grpo_config, check_config


def check(**changes):
    return check_config(validate_dict(base_config(**changes)), cuda=False)


def test_valid_config_resolves_everything(tmp_path):
    checked = check(output_root=str(tmp_path))
    assert [f.__name__ for f in checked.reward_funcs] == ["accuracy", "think_format"]
    assert checked.reward_weights == [1.0, 0.5]
    assert checked.grpo_args.reward_weights == [1.0, 0.5]
    assert checked.grpo_args.output_dir == str(tmp_path / "t" / "checkpoints")
    assert checked.grpo_args.use_cpu and not checked.grpo_args.bf16
    assert checked.grpo_args.seed == 0 and checked.task.seed == 0


def test_unknown_reward_names_valid_choices():
    with pytest.raises(ConfigError) as err:
        check(rewards=[{"name": "acuracy"}])
    msg = str(err.value)
    assert msg.startswith("rewards.0.name")
    for name in ("accuracy", "think_format", "language_consistency", "countdown"):
        assert name in msg


def test_unknown_reward_option_names_valid_options():
    with pytest.raises(ConfigError, match=r"rewards.0.*require_answer_tagz.*require_answer_tags"):
        check(rewards=[{"name": "think_format", "require_answer_tagz": True}])


def test_bad_dotted_reward_path():
    with pytest.raises(ConfigError, match="rewards.0"):
        check(rewards=[{"name": "no_such_module_xyz:func"}])


def test_reward_needing_a_missing_column():
    with pytest.raises(ConfigError, match=r"rewards.0 \('countdown'\) needs dataset column\(s\) numbers, target"):
        check(rewards=[{"name": "countdown"}])


def test_unknown_task_and_option():
    with pytest.raises(ConfigError, match=r"task.name.*arithmetic"):
        check(task={"name": "arithmatic"})
    with pytest.raises(ConfigError, match=r"task.*max_termz"):
        check(task={"name": "arithmetic", "max_termz": 3})


def test_unknown_grpo_key_suggests_close_match():
    with pytest.raises(ConfigError, match=r"unknown key 'grpo.learning_rat'.*did you mean 'learning_rate'"):
        check(grpo={"learning_rat": 1e-6})


def test_grpo_wrong_type():
    with pytest.raises(ConfigError, match=r"grpo.learning_rate: expected float"):
        check(grpo={"learning_rate": "fast"})
    with pytest.raises(ConfigError, match=r"grpo.max_steps: expected int"):
        check(grpo={"max_steps": 2.5})


def test_grpo_keys_owned_by_ahazero():
    with pytest.raises(ConfigError, match=r"grpo.output_dir is set by ahazero"):
        check(grpo={"output_dir": "/tmp/x"})
    with pytest.raises(ConfigError, match=r"grpo.reward_weights.*weight"):
        check(grpo={"reward_weights": [1.0]})


def test_batch_not_divisible_by_generations():
    with pytest.raises(ConfigError, match=r"divisible by num_generations \(3\)"):
        check(grpo={"num_generations": 3, "per_device_train_batch_size": 8})


def test_single_generation_rejected():
    with pytest.raises(ConfigError, match=r"grpo.num_generations: 1 is out of range; valid: an integer >= 2"):
        check(grpo={"num_generations": 1, "per_device_train_batch_size": 8})


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write anywhere")
def test_unwritable_output_root_nonroot(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    with pytest.raises(ConfigError, match="output_root"):
        check(output_root=str(locked / "runs"))


def test_output_root_under_a_file(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("x")
    with pytest.raises(ConfigError, match="output_root: cannot write"):
        check(output_root=str(blocker / "runs"))


def test_bf16_on_gpu_by_default():
    cfg = validate_dict(base_config())
    # cuda=True cannot be built without a GPU, but bf16 stays off for the CPU profile
    assert build_grpo_config(cfg, cuda=False).bf16 is False


@pytest.mark.parametrize("path", sorted((REPO / "configs").glob("*.yaml")), ids=lambda p: p.name)
@pytest.mark.parametrize("gpu_profile", [True, False], ids=["gpu-profile", "cpu-profile"])
def test_shipped_configs_pass_every_check(path, gpu_profile, tmp_path):
    from ahazero.config.schema import load_config
    from ahazero.training.assemble import resolve_for_device

    cfg = resolve_for_device(load_config(path, [f"output_root={tmp_path}"]), cuda=gpu_profile)
    # TRL's batch-size rules are checked for both profiles (a GPU config is built with use_cpu here)
    checked = check_config(cfg, cuda=False)
    assert checked.reward_funcs and checked.task.name == cfg.task.name


def test_default_recipe_requires_one_answer_block():
    from ahazero.config.schema import load_config

    checked = check_config(load_config(REPO / "configs" / "default.yaml"), cuda=False)
    fmt = next(f for f in checked.reward_funcs if f.__name__ == "think_format")
    good = "<think>\n44 * 6 = 264\n</think>\n<answer>264</answer>"
    scratch = "<think>\ncomputing\n</think>\n<answer>44 * 6</answer>\n<answer>264</answer>"
    assert fmt(completions=[good, scratch, good + "\n```"]) == [1.0, 0.0, 0.0]
