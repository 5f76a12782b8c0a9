"""Tests of the think-format reward."""

import pytest

from rewards.think_format import ThinkFormatReward, is_placeholder

GOOD = "<think>\n2 + 2 = 4 because two pairs make four.\n</think>\n<answer>4</answer>"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (GOOD, 1.0),
        ("  \n<think>reason</think> the answer is 4", 1.0),
        ("<think>reason</think>4", 1.0),
        ("reason</think> 4", 0.0),  # no opening tag
        ("Sure! <think>reason</think> 4", 0.0),  # does not start with <think>
        ("<think>reason 4", 0.0),  # never closed
        ("<think>reason</think>", 0.0),  # no answer
        ("<think>reason</think>   \n", 0.0),
        ("<think>reason</think><answer></answer>", 0.0),  # empty answer
        ("<think>   </think> 4", 0.0),  # blank thinking
        ("<think></think> 4", 0.0),
        ("<think>a</think><think>b</think> 4", 0.0),  # two blocks
        ("<think><think>a</think> 4", 0.0),  # two opens
        ("<think>a</think> 4 </think>", 0.0),  # two closes
        ("<think> reasoning process here </think> 4", 0.0),  # placeholder thinking
        ("<think>Reasoning process here...</think> <answer>4</answer>", 0.0),
        ("<think>real reasoning</think> <answer> answer here </answer>", 0.0),  # placeholder answer
        ("", 0.0),
    ],
)
def test_default_options(text, expected):
    assert ThinkFormatReward()(completions=[text]) == [expected]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (GOOD, 1.0),
        ("<think>r</think>\n  <answer> 4 </answer>\n", 1.0),
        ("<think>r</think> 4", 0.0),  # no answer tags
        ("<think>r</think> so <answer>4</answer>", 0.0),  # text outside the tags
        ("<think>r</think><answer>4</answer> done", 0.0),
        ("<think>r</think><answer>4</answer><answer>5</answer>", 0.0),  # two answers
        ("<think>r</think><answer>  </answer>", 0.0),
        ("<think>r</think></answer>4<answer>", 0.0),  # wrong order
        ("<think>r</think><answer>4", 0.0),
        # a trained model's answers once the lenient rule had been learned (operands up to 999)
        ("<think>\n  computing: 774 * 98\n</think>\n<answer>73992</answer>\n```", 0.0),
        ("<think>\n  computing: 454 - (887 + 534)\n</think>\n<answer>454 - 1421</answer>\n"
         "<answer>-967</answer>", 0.0),
    ],
)
def test_require_answer_tags(text, expected):
    assert ThinkFormatReward(require_answer_tags=True)(completions=[text]) == [expected]


def test_prefill_is_part_of_the_format():
    reward = ThinkFormatReward()
    completion = "\n2+2=4\n</think>\n4"
    assert reward(completions=[completion]) == [0.0]
    assert reward(completions=[completion], prefill=["<think>"]) == [1.0]
    # the model repeating the prefilled tag is two opening tags
    assert reward(completions=["<think>x</think> 4"], prefill=["<think>\n"]) == [0.0]


def test_chat_completions():
    msgs = [[{"role": "assistant", "content": GOOD}], [{"role": "assistant", "content": "4"}]]
    assert ThinkFormatReward()(completions=msgs) == [1.0, 0.0]


def test_min_think_chars():
    reward = ThinkFormatReward(min_think_chars=20)
    assert reward(completions=["<think>short</think> 4"]) == [0.0]
    assert reward(completions=["<think>this is long enough thinking</think> 4"]) == [1.0]


def test_custom_placeholders():
    reward = ThinkFormatReward(placeholders=["your steps"])
    assert reward(completions=["<think>Your steps!</think> 4"]) == [0.0]
    assert reward(completions=["<think>reasoning process here</think> 4"]) == [1.0]
    assert ThinkFormatReward(placeholders=[])(completions=["<think>reasoning process here</think> 4"]) == [
        1.0
    ]


def test_is_placeholder():
    assert is_placeholder("reasoning process here")
    assert is_placeholder("  REASONING   process\nhere. ")
    assert is_placeholder("reasoning process here, ok")  # mostly the placeholder
    assert not is_placeholder("reasoning process here: 3 * 4 = 12 and 12 + 1 = 13, so the answer is 13")
    assert not is_placeholder("")
    assert not is_placeholder("...")


def test_hostile_inputs():
    reward = ThinkFormatReward()
    hostile = [
        "<think>" * 100_000,
        "a" * 1_000_000,
        "<think>\x00</think>\x00",
        None,
        7,
        "<think>\ud800</think>x",
    ]
    out = reward(completions=hostile)
    assert out[:5] == [0.0, 0.0, 1.0, 0.0, 0.0]
    assert out[5] == 1.0  # a lone surrogate is still non-empty text; format is fine


@pytest.mark.parametrize(
    "kwargs",
    [
        {"require_answer_tags": "yes"},
        {"placeholders": "reasoning process here"},
        {"placeholders": [1]},
        {"min_think_chars": -1},
        {"min_think_chars": 1.5},
    ],
)
def test_bad_options(kwargs):
    with pytest.raises(ValueError, match="think_format"):
        ThinkFormatReward(**kwargs)


def test_the_default_rule_lets_scratch_work_follow_the_think_block():
    """Without ``require_answer_tags`` anything after ``</think>`` is the answer, so scratch
    answers and trailing text earn full credit; the default recipe therefore requires the tags."""
    scratch = "<think>x</think>\n<answer>454 - 1421</answer>\n<answer>-967</answer>\n```"
    assert ThinkFormatReward()(completions=[scratch]) == [1.0]
    assert ThinkFormatReward(require_answer_tags=True)(completions=[scratch]) == [0.0]
