"""Tests of the reward registry: names, options, dotted paths, pickling and docstring examples."""

import doctest
import functools
import importlib
import pickle
import pkgutil

import pytest

import rewards
from rewards import available_rewards, get_reward, required_columns, reward_kwargs

NAMES = ["accuracy", "countdown", "format_gate", "language_consistency", "think_format"]
MODULES = ["rewards"] + sorted(m.name for m in pkgutil.walk_packages(rewards.__path__, "rewards."))


def my_reward(completions, bonus=0.0, **kwargs):
    """A user reward defined in the test module, for 'module:function' paths."""
    return [len(str(c)) + bonus for c in completions]


def my_strict_reward(completions, scale=1.0):
    return [scale for _ in completions]


class MyClassReward:
    required_columns = ("answer",)

    def __init__(self, value=1.0):
        self.value = value

    def __call__(self, completions, **kwargs):
        return [self.value] * len(completions)


not_callable = 42


def test_available_rewards_sorted():
    assert available_rewards() == NAMES


@pytest.mark.parametrize("name", NAMES)
def test_registry_reward_basics(name):
    reward = get_reward(name)
    assert reward.__name__ == name
    assert callable(reward)
    assert isinstance(type(reward).required_columns, tuple)
    assert required_columns(reward) == type(reward).required_columns
    assert required_columns(name) == type(reward).required_columns


@pytest.mark.parametrize("name", NAMES)
def test_pickle_round_trip(name):
    reward = get_reward(name)
    clone = pickle.loads(pickle.dumps(reward))
    assert type(clone) is type(reward)
    assert clone.__name__ == name
    assert clone == reward or vars(clone) == vars(reward)
    batch = {
        "completions": ["<think>x</think><answer>1+2</answer>"],
        "answer": ["3"],
        "numbers": [[1, 2]],
        "target": [3],
    }
    assert clone(**batch) == reward(**batch)


def test_pickle_keeps_options():
    reward = get_reward("think_format", require_answer_tags=True, placeholders=["foo"])
    clone = pickle.loads(pickle.dumps(reward))
    assert clone.require_answer_tags is True and clone.placeholders == ["foo"]


def test_required_columns_values():
    assert required_columns(get_reward("accuracy")) == ("answer",)
    assert required_columns(get_reward("countdown")) == ("numbers", "target")
    assert required_columns(get_reward("think_format")) == ()
    assert required_columns(get_reward("language_consistency")) == ()
    assert required_columns(my_reward) == ()
    assert required_columns(functools.partial(MyClassReward())) == ("answer",)
    assert required_columns(lambda completions, **kw: []) == ()


def test_reward_kwargs():
    assert reward_kwargs("accuracy") == {"timeout_seconds": 2.0, "literal_numbers": True, "isolate": True,
                                         "answer_source": "any"}
    assert reward_kwargs("countdown") == {"require_all_numbers": False}
    assert reward_kwargs("language_consistency") == {"language": "en"}
    assert reward_kwargs("think_format") == {
        "require_answer_tags": False,
        "placeholders": ["reasoning process here", "answer here"],
        "min_think_chars": 1,
    }
    with pytest.raises(ValueError, match="unknown reward 'nope'"):
        reward_kwargs("nope")


def test_default_list_option_is_not_shared():
    a, b = get_reward("think_format"), get_reward("think_format")
    a.placeholders.append("x")
    assert "x" not in b.placeholders
    assert "x" not in reward_kwargs("think_format")["placeholders"]


def test_unknown_name_lists_choices():
    with pytest.raises(ValueError) as err:
        get_reward("acc")
    assert str(err.value) == (
        "unknown reward 'acc'; valid choices: accuracy, countdown, format_gate, language_consistency, think_format, "
        "or a 'module:function' path"
    )
    with pytest.raises(ValueError, match="valid choices"):
        get_reward(None)  # type: ignore[arg-type]


def test_unknown_kwarg_lists_valid_options():
    with pytest.raises(ValueError) as err:
        get_reward("accuracy", timeout=3)
    message = str(err.value)
    assert "'timeout'" in message and "valid options: timeout_seconds" in message
    with pytest.raises(ValueError, match="require_answer_tags, placeholders, min_think_chars"):
        get_reward("think_format", bogus=1)


@pytest.mark.parametrize(
    ("name", "kwargs", "option"),
    [
        ("accuracy", {"timeout_seconds": "5"}, "timeout_seconds"),
        ("language_consistency", {"language": ["en"]}, "language"),
        ("think_format", {"min_think_chars": "1"}, "min_think_chars"),
        ("countdown", {"require_all_numbers": "no"}, "require_all_numbers"),
    ],
)
def test_wrong_kwarg_type(name, kwargs, option):
    with pytest.raises(ValueError, match=option):
        get_reward(name, **kwargs)


def test_registry_options_are_applied():
    assert get_reward("language_consistency", language="zh").language == "zh"
    assert get_reward(" accuracy ").__name__ == "accuracy"


def test_dotted_path_function_as_is():
    assert get_reward(f"{__name__}:my_reward") is my_reward


def test_dotted_path_function_with_kwargs_keeps_name():
    reward = get_reward(f"{__name__}:my_reward", bonus=1.0)
    assert isinstance(reward, functools.partial)
    assert reward.__name__ == "my_reward"
    assert reward(completions=["ab"]) == [3.0]
    clone = pickle.loads(pickle.dumps(reward))
    assert clone(completions=["ab"]) == [3.0]


def test_dotted_path_function_bad_kwarg():
    with pytest.raises(ValueError, match=r"'bonus'.*scale"):
        get_reward(f"{__name__}:my_strict_reward", bonus=1.0)


def test_dotted_path_class_is_instantiated():
    reward = get_reward("rewards.accuracy:AccuracyReward", timeout_seconds=3)
    assert reward.__name__ == "accuracy" and reward.timeout_seconds == 3
    mine = get_reward(f"{__name__}:MyClassReward", value=0.5)
    assert isinstance(mine, MyClassReward) and mine(completions=["a", "b"]) == [0.5, 0.5]
    assert mine.__name__ == "MyClassReward"
    assert required_columns(mine) == ("answer",)
    with pytest.raises(ValueError, match="cannot create MyClassReward"):
        get_reward(f"{__name__}:MyClassReward", nope=1)


@pytest.mark.parametrize(
    ("path", "fragment"),
    [
        ("no_such_module_xyz:f", "cannot import module 'no_such_module_xyz'"),
        ("rewards.accuracy:NoSuchThing", "has no attribute 'NoSuchThing'"),
        (f"{__name__}:not_callable", "not callable"),
        (":f", "expected 'package.module:attribute'"),
        ("rewards.accuracy:", "expected 'package.module:attribute'"),
    ],
)
def test_bad_dotted_paths(path, fragment):
    with pytest.raises(ValueError, match=fragment):
        get_reward(path)


def test_lazy_class_attributes():
    assert rewards.AccuracyReward.__name__ == "AccuracyReward"
    assert rewards.CountdownReward.required_columns == ("numbers", "target")
    with pytest.raises(AttributeError):
        rewards.NoSuchReward  # noqa: B018


@pytest.mark.parametrize("name", NAMES)
def test_every_reward_survives_hostile_batches(name):
    reward = get_reward(name)
    hostile = [
        "a" * 1_000_000,
        r"\boxed{" + "{" * 10_000,
        "\x00<think>\x00</think>\x00",
        "\ud800",
        "<answer>__import__('os').system('echo hi')</answer>",
        "<answer>9**9**9**9</answer>",
        r"\boxed{}",
        None,
        [{"role": "assistant", "content": [{"type": "text", "text": "<think>t</think>x"}]}],
        [{"no": "role"}, "junk", 3],
    ]
    columns = {
        "answer": ["1"] * len(hostile),
        "numbers": [[1, 2]] * len(hostile),
        "target": [3] * len(hostile),
    }
    out = reward(completions=hostile, prefill=[None] * len(hostile), **columns)
    assert len(out) == len(hostile)
    assert all(v is None or 0.0 <= v <= 1.0 for v in out)


@pytest.mark.parametrize("name", NAMES)
def test_every_reward_handles_mismatched_columns(name):
    reward = get_reward(name)
    out = reward(
        completions=["<think>a</think><answer>1</answer>"] * 3, answer=["1"], numbers=[[1]], target=[1]
    )
    assert len(out) == 3


@pytest.mark.parametrize("module_name", MODULES)
def test_docstring_examples(module_name):
    module = importlib.import_module(module_name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0
    assert result.failed == 0
