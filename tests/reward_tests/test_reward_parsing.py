"""Tests of rewards.parsing: completion text, think split and answer extraction."""

import time

import pytest

from rewards.parsing import (
    MAX_CHARS,
    ThinkSplit,
    completion_text,
    completion_texts,
    extract_answer,
    extract_boxed,
    split_think,
)


def test_completion_text_plain_string_and_prefill():
    assert completion_text("abc") == "abc"
    assert completion_text("2+2=4</think> 4", prefill="<think>\n") == "<think>\n2+2=4</think> 4"
    assert completion_text("abc", prefill=None) == "abc"


def test_completion_text_chat_messages():
    msgs = [{"role": "assistant", "content": "hello"}]
    assert completion_text(msgs) == "hello"
    assert completion_text(msgs, prefill="<think>") == "<think>hello"
    blocks = [
        {"role": "assistant", "content": [{"type": "text", "text": "a"}, {"type": "image"}, {"text": "b"}]}
    ]
    assert completion_text(blocks) == "ab"
    mixed = [
        {"role": "user", "content": "ignored"},
        {"role": "assistant", "content": "one"},
        {"role": "tool", "content": "ignored too"},
        {"role": "assistant", "content": "two"},
    ]
    assert completion_text(mixed) == "one\ntwo"
    assert completion_text({"role": "assistant", "content": "single"}) == "single"
    assert completion_text([{"role": "assistant", "content": None}]) == ""


@pytest.mark.parametrize(
    "weird", [None, 42, object(), [1, 2], [{"role": "assistant", "content": 5}], b"bytes"]
)
def test_completion_text_never_raises(weird):
    out = completion_text(weird, prefill="P")
    assert isinstance(out, str)
    assert out.startswith("P")


def test_completion_texts_vectorised_with_prefill_list():
    comps = ["a", [{"role": "assistant", "content": "b"}], "c"]
    assert completion_texts(comps) == ["a", "b", "c"]
    assert completion_texts(comps, prefill=["<think>", None, "x"]) == ["<think>a", "b", "xc"]
    assert completion_texts(comps, prefill=["<think>"]) == ["<think>a", "b", "c"]  # short list: padded
    assert completion_texts(None) == []
    assert completion_texts(5) == []


def test_split_think_closed_block():
    s = split_think("<think>\nreason\n</think>\n<answer>4</answer>")
    assert isinstance(s, ThinkSplit)
    assert s == ThinkSplit(
        thinking="\nreason\n", after="\n<answer>4</answer>", n_open=1, n_close=1, closed=True
    )


def test_split_think_unclosed_and_absent():
    unclosed = split_think("<think> still thinking")
    assert unclosed.thinking is None and not unclosed.closed
    assert unclosed.after == "<think> still thinking"
    assert (unclosed.n_open, unclosed.n_close) == (1, 0)
    stray_close = split_think("answer </think> 5")
    assert stray_close.thinking is None and stray_close.after == "answer </think> 5"
    assert stray_close.n_close == 1
    none = split_think("plain")
    assert none == ThinkSplit(None, "plain", 0, 0, False)


def test_split_think_counts_tags_and_uses_first_block():
    s = split_think("<think>a</think><think>b</think>c")
    assert s.thinking == "a" and s.after == "<think>b</think>c"
    assert (s.n_open, s.n_close, s.closed) == (2, 2, True)


def test_split_think_is_frozen():
    s = split_think("x")
    with pytest.raises(AttributeError):
        s.after = "y"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("<answer>42</answer>", "42"),
        ("<answer>1</answer> then <answer>  2 </answer>", "1, 2"),  # several different answers: all of them
        ("<answer>8</answer> <answer> 8 </answer>", "8"),
        ("<think>draft <answer>1</answer></think><answer>2</answer>", "2"),
        ("<think>only inside <answer>1</answer></think> nothing after", None),
        (r"so the answer is \boxed{7}.", "7"),
        (r"\boxed{1} and finally \boxed{\frac{1}{2}}", r"1, \frac{1}{2}"),  # one group, as Math-Verify reads it
        (r"a draft \boxed{1}. Then I checked every step once more. There is a slip: \boxed{2}", "2"),
        (r"\boxed{255}. Final Answer: The final answer is $10,455$. I hope it is correct.", "$10,455$"),
        (r"\boxed{\{1, 2\}}", r"\{1, 2\}"),
        (r"\fbox{5}", "5"),
        (r"\boxed {x^{2}+1}", "x^{2}+1"),
        (r"\boxed{\boxed{3}}", "3"),
        (r"<answer>  </answer> \boxed{9}", "9"),
        (r"<answer>\boxed{4}</answer>", r"\boxed{4}"),
        (r"<answer>3</answer> so in the end \boxed{4}", "4"),  # stated last
        (r"<answer>3</answer> <answer>5</answer> Final Answer: The final answer is $4$.", "$4$"),
        ("<answer>\nwork\nIt is 3.\n</answer> <answer>It is 4.</answer>", "work It is 3., It is 4."),  # one line
        ("<answer></answer>", None),
        (r"\boxed{}", None),
        (r"\boxed{ }", None),
        (r"\boxed{unclosed", None),
        ("no answer at all", None),
        ("", None),
    ],
)
def test_extract_answer(text, expected):
    assert extract_answer(text) == expected


def test_extract_answer_non_string():
    assert extract_answer(None) is None  # type: ignore[arg-type]
    assert extract_boxed(123) is None  # type: ignore[arg-type]


def test_extract_answer_keeps_the_tail_of_long_inputs():
    text = "<answer>early</answer>" + "x" * (MAX_CHARS + 10) + "<answer>late</answer>"
    assert extract_answer(text) == "late"
    cut = r"\boxed{lost}" + "y" * (MAX_CHARS + 10)
    assert extract_answer(cut) is None


@pytest.mark.parametrize(
    "hostile",
    [
        "a" * 1_000_000,
        r"\boxed{" * 150_000,
        r"\boxed{" + "{" * 10_000 + "1" + "}" * 10_000 + "}",
        "{" * 10_000 + r"\boxed{2}" + "}" * 10_000,
        "<answer>" * 100_000 + "</answer>" * 3,
        "<think>" * 100_000 + "</think>" * 100_000,
        r"\boxed" + " " * 500_000,
        "".join(f"<answer>{i}</answer>" for i in range(20_000)),
        "".join(rf"\boxed{{{i}}}" for i in range(20_000)),
        "final answer is $" * 20_000,
        "Final answer is $8$. " * 10_000,
    ],
)
def test_extract_answer_hostile_inputs_are_fast(hostile):
    start = time.perf_counter()
    result = extract_answer(hostile)
    split_think(hostile)
    assert time.perf_counter() - start < 1.0
    assert result is None or isinstance(result, str)


def test_extract_answer_deep_nesting_balanced():
    text = r"\boxed{" + "{" * 10_000 + "1" + "}" * 10_000 + "}"
    assert extract_answer(text) == "{" * 10_000 + "1" + "}" * 10_000
    assert extract_answer("{" * 10_000 + r"\boxed{2}" + "}" * 10_000) == "2"


def test_extract_answer_odd_characters():
    assert extract_answer("<answer>\x00</answer>") == "\x00"
    assert extract_answer("<answer>\ud800</answer>") == "\ud800"
