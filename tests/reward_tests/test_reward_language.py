"""Tests of the language-consistency reward."""

import pytest

from rewards.language import (
    LANGUAGES,
    LanguageConsistencyReward,
    chain_of_thought,
    language_consistency,
    words,
)


def test_words_segmentation():
    assert words("Hello, world! 123") == ["Hello", "world"]
    assert words("所以答案") == ["所", "以", "答", "案"]
    assert words(r"\frac{a}{b} + \sqrt{x}") == ["a", "b", "x"]
    assert words("<think>one</think> two") == ["one", "two"]
    assert words("ひらがな カタカナ 한국어") == list("ひらがなカタカナ한국어")
    assert words("café x²") == ["café", "x"]
    assert words("2 + 2 = 4; ∑∫√") == []


@pytest.mark.parametrize(
    ("text", "language", "expected"),
    [
        ("we add two and two", "en", 1.0),
        ("we add 两个", "en", 0.5),
        ("所以答案 four", "zh", 0.8),
        ("所以答案", "zh", 1.0),
        ("Привет мир hello", "ru", 2 / 3),
        ("ひらがな漢字 x", "ja", 6 / 7),
        ("한국어 a", "ko", 0.75),
        ("café", "en", 0.0),
    ],
)
def test_language_consistency(text, language, expected):
    assert language_consistency(text, language) == pytest.approx(expected)


def test_no_words_is_not_applicable():
    assert language_consistency("1 + 1 = 2") is None
    assert language_consistency("") is None
    assert language_consistency(None) is None  # type: ignore[arg-type]


def test_unknown_language_lists_choices():
    with pytest.raises(ValueError, match="unknown language 'xx'; valid choices: en, ja, ko, ru, zh"):
        language_consistency("hi", "xx")
    with pytest.raises(ValueError, match="valid choices"):
        LanguageConsistencyReward(language="klingon")
    with pytest.raises(ValueError, match="language"):
        LanguageConsistencyReward(language=3)  # type: ignore[arg-type]
    assert {"en", "zh"} <= set(LANGUAGES)


def test_chain_of_thought_choice():
    assert chain_of_thought("<think>inside</think> outside") == "inside"
    assert chain_of_thought("before <think>unclosed") == "unclosed"
    assert chain_of_thought("no tags") == "no tags"


def test_reward_scores_only_the_thinking():
    reward = LanguageConsistencyReward()
    completions = [
        "<think>we add the numbers</think> 答案是四",  # the answer part is not the chain of thought
        "<think>we 加 the numbers</think> 4",
        [{"role": "assistant", "content": "<think>全部中文</think> four"}],
        "<think>1 + 1 = 2</think> 2",
    ]
    assert reward(completions=completions) == [1.0, 0.75, 0.0, None]


def test_reward_uses_prefill():
    reward = LanguageConsistencyReward(language="zh")
    out = reward(completions=["所以 answer</think> 答案"], prefill=["<think>"])
    assert out == [pytest.approx(2 / 3)]


def test_reward_hostile_inputs():
    reward = LanguageConsistencyReward()
    out = reward(completions=["a" * 1_000_000, "<think>\x00\ud800</think>", None, 5, "x" * 10 + "{" * 10_000])
    assert out == [1.0, None, None, None, 1.0]
