"""Tests of the countdown reward and score_countdown."""

import time

import pytest

from rewards.countdown import CountdownReward, normalize_expression, score_countdown

NUMBERS = [3, 5, 7, 25]


@pytest.mark.parametrize(
    ("expression", "target", "expected"),
    [
        ("25 - 7 - 3", 15, 1.0),
        ("(25 - 5) * 3", 60, 1.0),
        ("(25 - 5) * 3 = 60", 60, 1.0),
        ("25 / 5 + 7", 12, 1.0),
        ("-3 + 25", 22, 1.0),
        ("25 \u00d7 3 \u00f7 5", 15, 1.0),  # multiplication / division signs
        (r"$25 \times 3 \div 5$", 15, 1.0),
        ("25 \u2212 5", 20, 1.0),  # unicode minus
        ("25 + 5", 31, 0.0),  # wrong value
        ("25 + 25", 50, 0.0),  # 25 used twice
        ("25 + 4", 29, 0.0),  # 4 is not given
        ("25 / (5 - 5)", 0, 0.0),  # division by zero (and 5 used twice)
        ("7 / (3 - 3)", 0, 0.0),
        ("5 ** 2", 25, 0.0),  # power not allowed
        ("9**9**9**9", 1, 0.0),
        ("25 // 5", 5, 0.0),
        ("25 % 7", 4, 0.0),
        ("+25", 25, 0.0),  # unary plus not allowed
        ("25.0", 25, 0.0),  # float literal
        ("True + 24", 25, 0.0),
        ("abs(-25)", 25, 0.0),
        ("__import__('os').system('echo hi')", 0, 0.0),
        ("x", 0, 0.0),
        ("", 0, 0.0),
        ("(" * 150 + "25" + ")" * 150, 25, 0.0),  # too long
        ("(" * 90 + "25" + ")" * 90, 25, 1.0),
        ("25 +", 25, 0.0),
        ("25\x00", 25, 0.0),
        ("'\\q'", 0, 0.0),
    ],
)
def test_score_countdown(expression, target, expected):
    assert score_countdown(expression, NUMBERS, target) == expected


def test_exact_fractions():
    assert score_countdown("7 / 3 * 6", [7, 3, 6], 14) == 1.0
    assert score_countdown("(1 / 3) * 3", [1, 3, 3], 1) == 1.0
    assert score_countdown("1 / 3", [1, 3], 0) == 0.0  # no integer rounding


def test_repeated_numbers_are_a_multiset():
    assert score_countdown("5 + 5", [5, 5, 1], 10) == 1.0
    assert score_countdown("5 + 5 + 5", [5, 5, 1], 15) == 0.0


def test_require_all_numbers():
    assert score_countdown("25 - 7 - 3", NUMBERS, 15, require_all_numbers=True) == 0.0
    assert score_countdown("(25 - 7 - 3) * 5", NUMBERS, 75, require_all_numbers=True) == 1.0
    reward = CountdownReward(require_all_numbers=True)
    assert reward(completions=["<answer>25-7-3</answer>"], numbers=[NUMBERS], target=[15]) == [0.0]


def test_numbers_and_target_types():
    assert score_countdown("1 + 2", ["1", "2"], "3") == 1.0
    assert score_countdown("1 + 2", (1, 2), 3) == 1.0
    assert score_countdown("1 + 2", None, 3) == 0.0
    assert score_countdown("1 + 2", [1, 2], None) == 0.0
    assert score_countdown("1 + 2", [1, 2], True) == 0.0
    assert score_countdown("1 + 2", ["a"], 3) == 0.0
    assert score_countdown(None, [1, 2], 3) == 0.0  # type: ignore[arg-type]


def test_hostile_targets_are_bounded():
    start = time.perf_counter()
    for target in ("1e999999999", "9" * 100_000, float("inf"), float("nan"), "3/0", "0x3", object()):
        assert score_countdown("1 + 2", [1, 2], target) == 0.0
    assert time.perf_counter() - start < 1.0
    assert score_countdown("1 + 2", [1, 2], "3.0") == 1.0
    assert score_countdown("1 / 2", [1, 2], 0.5) == 1.0
    assert score_countdown("1 / 2", [1, 2], "1/2") == 1.0


def test_normalize_expression():
    assert normalize_expression(r"(1+2) \times 3 = 9") == "(1+2) * 3"
    assert normalize_expression("8 \u00f7 2 \u00d7 3") == "8 / 2 * 3"


def test_reward_extracts_answer_from_completions():
    reward = CountdownReward()
    completions = [
        "<think>25-5=20, 20*3=60</think>\n<answer>(25 - 5) * 3</answer>",
        [{"role": "assistant", "content": "<think>...</think><answer>(25-5)*3 = 60</answer>"}],
        r"<think>...</think> \boxed{(25-5)*3}",
        "<think>...</think><answer>60</answer>",  # 60 is not a given number
        "<think>no answer</think>",
    ]
    out = reward(completions=completions, numbers=[NUMBERS] * 5, target=[60] * 5)
    assert out == [1.0, 1.0, 1.0, 0.0, 0.0]


def test_reward_prefill_and_extra_kwargs():
    reward = CountdownReward()
    out = reward(
        prompts=["p"],
        completions=["25-5</think><answer>25-5</answer>"],
        prefill=["<think>"],
        numbers=[NUMBERS],
        target=[20],
        trainer_state=None,
        log_extra=lambda *a: None,
    )
    assert out == [1.0]


def test_reward_missing_columns_scores_zero():
    reward = CountdownReward()
    assert reward(completions=["<answer>1+2</answer>"]) == [0.0]
    assert reward(completions=["<answer>1+2</answer>"], numbers=[[1, 2]]) == [0.0]


def test_reward_hostile_inputs_fast():
    reward = CountdownReward()
    hostile = [
        "a" * 1_000_000,
        r"\boxed{" + "{" * 10_000 + "}" * 10_000 + "}",
        "<answer>9**9**9**9</answer>",
        "<answer>" + "(" * 5000 + "</answer>",
        "<answer>\ud800</answer>",
        "<answer>lambda: 0</answer>",
        None,
    ]
    start = time.perf_counter()
    out = reward(completions=hostile, numbers=[NUMBERS] * len(hostile), target=[1] * len(hostile))
    assert out == [0.0] * len(hostile)
    assert time.perf_counter() - start < 2.0


def test_bad_option():
    with pytest.raises(ValueError, match="require_all_numbers"):
        CountdownReward(require_all_numbers=1)  # type: ignore[arg-type]
