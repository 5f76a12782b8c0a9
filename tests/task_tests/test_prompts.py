"""Prompt rendering: R1-Zero text template and chat template with a <think> prefill."""

from __future__ import annotations

import pytest

from ahazero.tasks.prompts import R1_SYSTEM_PROMPT, render_prompt


def test_r1_zero_template_with_prefill():
    text, prefill = render_prompt("What is 2+3?", template="r1_zero", prefill_think=True)
    assert text.startswith("A conversation between User and Assistant.")
    assert "User: What is 2+3?. Assistant: <think>" in text
    assert prefill == "<think>"


def test_r1_zero_without_prefill():
    text, prefill = render_prompt("x", template="r1_zero", prefill_think=False)
    assert text.endswith("Assistant:") and prefill == ""


def test_chat_template_uses_system_prompt_and_prefill(tiny_model_dir):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_model_dir)
    text, prefill = render_prompt("Compute 1+1", template="chat", tokenizer=tok)
    assert text.startswith("<|im_start|>system\n" + R1_SYSTEM_PROMPT)
    assert "<|im_start|>user\nCompute 1+1<|im_end|>" in text
    assert text.endswith("<|im_start|>assistant\n<think>\n")
    assert prefill == "<think>\n"
    custom, _ = render_prompt("q", template="chat", tokenizer=tok, system_prompt="Be brief.",
                              prefill_think=False)
    assert "Be brief." in custom and custom.endswith("assistant\n")


def test_chat_template_needs_a_tokenizer():
    with pytest.raises(ValueError, match="r1_zero"):
        render_prompt("q", template="chat", tokenizer=None)


def test_unknown_template():
    with pytest.raises(ValueError, match="valid choices: chat, r1_zero"):
        render_prompt("q", template="alpaca")
