"""Rewards named in a config: what cannot be a reward is refused up front, what a reward returns is checked."""

from __future__ import annotations

import asyncio

import pytest
from helpers import base_config

from ahazero.config.reward_checks import GuardedReward, RewardOutputError, check_reward_output
from ahazero.config.schema import ConfigError, validate_dict
from ahazero.config.validate import check_config


def check(*rewards, tmp_path=None):
    data = base_config(rewards=[r if isinstance(r, dict) else {"name": r} for r in rewards])
    if tmp_path is not None:
        data["output_root"] = str(tmp_path)
    return check_config(validate_dict(data), cuda=False)


@pytest.mark.parametrize("path", ["os:system", "builtins:eval", "subprocess:call", "shutil:rmtree", "math:sqrt",
                                  "posix:system"])
def test_standard_library_callables_are_not_rewards(path):
    with pytest.raises(ConfigError) as info:
        check(path)
    assert str(info.value).startswith(f"rewards.0: {path!r} is a function of Python's standard library")


def test_a_compiled_builtin_of_another_library_is_not_a_reward():
    with pytest.raises(ConfigError, match=r"^rewards.0: 'torch:sum' is a compiled builtin function \(torch\), not a "
                                          r"reward; name a function of your own module"):
        check("torch:sum")


def test_a_user_module_passing_on_a_standard_library_function(module):
    name = module("from os import system as score\n")
    with pytest.raises(ConfigError, match=rf"^rewards.0: '{name}:score' is a function of Python's standard library "
                                          r"\('posix'\), not a reward"):
        check(f"{name}:score")


def test_a_callable_that_cannot_take_trl_keywords(module):
    with pytest.raises(ConfigError, match=r"^rewards.0: reward 'numpy:sum' cannot be called as a reward: its "
                                          r"signature \(a, axis=None.* has no \*\*kwargs and requires a, which is "
                                          r"neither passed by TRL nor a dataset column;"):
        check("numpy:sum")
    name = module("""
        def no_kwargs(completions):
            return [0.0] * len(completions)

        def needs_gold(completions, gold, **kwargs):
            return [0.0] * len(completions)

        def uses_answer(completions, answer, **kwargs):
            return [float(c == a) for c, a in zip(completions, answer)]
    """)
    with pytest.raises(ConfigError, match=r"its signature \(completions\) has no \*\*kwargs; a reward takes "
                                          r"\(completions, \*\*kwargs\) and is called with prompts, completions"):
        check(f"{name}:no_kwargs")
    with pytest.raises(ConfigError, match=r"requires gold, which is neither passed by TRL nor a dataset column;.*"
                                          r"dataset columns \(answer, difficulty, id, prefill, problem, prompt\)"):
        check(f"{name}:needs_gold")
    assert check(f"{name}:uses_answer").reward_funcs[0].__name__ == "uses_answer"


def test_a_module_that_exits_on_import(module):
    name = module("import sys\nsys.exit(3)\n")
    with pytest.raises(ConfigError) as info:
        check(f"{name}:score")
    assert str(info.value) == (f"rewards.0: loading '{name}:score' stopped: module '{name}' raised SystemExit(3) "
                               "while it was imported or the reward was created")


def test_a_module_that_raises_on_import(module):
    name = module("raise RuntimeError('no GPU here')\n")
    with pytest.raises(ConfigError, match=rf"^rewards.0: bad reward path '{name}:score': cannot import module "
                                          rf"'{name}' \(RuntimeError: no GPU here\)"):
        check(f"{name}:score")


def test_ctrl_c_during_a_reward_import_still_interrupts(module):
    name = module("raise KeyboardInterrupt\n")
    with pytest.raises(KeyboardInterrupt):
        check(f"{name}:score")


def test_registry_rewards_are_not_wrapped_custom_ones_are(module):
    name = module("def brevity(completions, **kwargs):\n    return [0.0] * len(completions)\n")
    funcs = check("accuracy", {"name": f"{name}:brevity", "weight": 0.1}).reward_funcs
    assert type(funcs[0]).__name__ == "AccuracyReward"
    assert isinstance(funcs[1], GuardedReward) and funcs[1].__name__ == "brevity"
    assert funcs[1](completions=["a", "b"], answer=["1", "2"]) == [0.0, 0.0]


@pytest.mark.parametrize(
    ("returned", "message"),
    [
        ('"1.0"', "rewards.1 ('{name}:bad') returned a str; a reward returns a list with one number (or None) "
                  "per completion, 2 here"),
        ("[1.0]", "rewards.1 ('{name}:bad') returned 1 value(s) for 2 completions"),
        ("[1.0, 2.0, 3.0]", "rewards.1 ('{name}:bad') returned 3 value(s) for 2 completions"),
        ('[1.0, "0.5"]', "rewards.1 ('{name}:bad') returned '0.5' (str) for completion 1"),
        ("[float('inf'), 0.0]", "rewards.1 ('{name}:bad') returned inf for completion 0; rewards must be finite"),
        ("None", "rewards.1 ('{name}:bad') returned a NoneType"),
        ("{'a': 1.0, 'b': 0.0}", "rewards.1 ('{name}:bad') returned a dict"),
        ("1.0", "rewards.1 ('{name}:bad') returned a float"),
    ],
)
def test_what_a_custom_reward_returns_is_checked(module, returned, message):
    name = module(f"def bad(completions, **kwargs):\n    return {returned}\n")
    reward = check("accuracy", f"{name}:bad").reward_funcs[1]
    with pytest.raises(RewardOutputError) as info:
        reward(prompts=["p", "q"], completions=["a", "b"], answer=["1", "2"])
    assert str(info.value).startswith(message.format(name=name))


def test_valid_reward_results_pass_unchanged():
    import numpy as np
    import torch

    assert check_reward_output((1, 0.5), 2, "rewards.0", "m:f") == [1, 0.5]
    assert check_reward_output([None, float("nan"), True], 3, "rewards.0", "m:f")[0] is None
    assert check_reward_output(np.array([0.5, 1.0]), 2, "rewards.0", "m:f") == [0.5, 1.0]
    assert [float(v) for v in check_reward_output(torch.tensor([0.5, 1.0]), 2, "rewards.0", "m:f")] == [0.5, 1.0]
    with pytest.raises(RewardOutputError, match=r"returned a generator; a reward returns a list"):
        check_reward_output((x for x in [1.0, 0.0]), 2, "rewards.0", "m:f")  # lists and tuples, not generators
    with pytest.raises(RewardOutputError, match=r"returned tensor\(\[0\.5000\]\) \(Tensor\) for completion 0"):
        check_reward_output(torch.tensor([[0.5], [1.0]]), 2, "rewards.0", "m:f")


def test_async_rewards_stay_async_and_are_checked(module):
    from trl.trainer.utils import is_async_callable

    name = module("""
        async def judge(completions, **kwargs):
            return ["yes"] * len(completions)
    """)
    reward = check("accuracy", f"{name}:judge").reward_funcs[1]
    assert is_async_callable(reward)
    with pytest.raises(RewardOutputError, match=r"returned 'yes' \(str\) for completion 0"):
        asyncio.run(reward(completions=["a"]))


def test_a_reward_class_keeps_its_attributes(module):
    name = module("""
        class Brevity:
            required_columns = ("answer",)

            def __init__(self, scale=1.0):
                self.scale = scale

            def __call__(self, completions, **kwargs):
                return [self.scale / (1 + len(c)) for c in completions]
    """)
    reward = check({"name": f"{name}:Brevity", "scale": 2.0}).reward_funcs[0]
    assert reward.__name__ == "Brevity" and reward.scale == 2.0 and reward.required_columns == ("answer",)
    assert reward(completions=["a"], answer=["1"]) == [1.0]


def test_training_stops_with_the_reward_named(module, tmp_path, tiny_model_dir):
    """Through TRL: a reward returning a str ends the run with an error naming it, not a crash inside TRL."""
    from ahazero.training.assemble import train

    name = module('def returns_str(completions, **kwargs):\n    return "1.0"\n')
    cfg = validate_dict(base_config(
        output_root=str(tmp_path), rewards=[{"name": "accuracy"}, {"name": f"{name}:returns_str"}],
        logging={"report_to": [], "traces": False},
        grpo={"num_generations": 2, "per_device_train_batch_size": 2, "max_steps": 1, "max_completion_length": 4,
              "gradient_checkpointing": False}))
    with pytest.raises(RewardOutputError, match=rf"^rewards.1 \('{name}:returns_str'\) at step 1 returned a str; .* 2 here$"):
        train(cfg)
