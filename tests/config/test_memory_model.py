"""The memory model behind 'auto' sizes and `ahazero check`'s estimates: arithmetic with made-up memory numbers."""

from __future__ import annotations

import pytest
from helpers import qwen_shape

from ahazero.config.memory_model import (
    ModelShape,
    RowShape,
    choose_max_rows,
    choose_micro_batch,
    generation_bytes_per_row,
    persistent_bytes,
    update_bytes_per_row,
)

GIB = 2**30
QWEN = qwen_shape()
ROW = RowShape(prompt_tokens=114, completion_tokens=256, generations=16)


def test_the_parameter_count_is_the_models(tiny_model_dir):
    import json

    from transformers import AutoModelForCausalLM

    config = json.loads((tiny_model_dir / "config.json").read_text())
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    assert ModelShape.from_config(config).parameters == sum(p.numel() for p in model.parameters())
    untied = ModelShape.from_config({**config, "tie_word_embeddings": False}).parameters
    assert untied == ModelShape.from_config(config).parameters + config["vocab_size"] * config["hidden_size"]
    assert QWEN.count_parameters(tied=False) == QWEN.parameters  # the real model's 630,167,424
    assert ModelShape.from_config({"text_config": config}).layers == 2  # a vision-language config's language model


def test_what_a_row_costs_follows_the_settings():
    padded = update_bytes_per_row(QWEN, ROW, weight_bytes=2)
    shared = update_bytes_per_row(QWEN, ROW, weight_bytes=2, packing=True, share_prompts=True)
    own_prompt = update_bytes_per_row(QWEN, ROW, weight_bytes=2, packing=True)
    assert shared < padded < own_prompt  # packing pays its attention gathers; sharing the prompt more than repays
    assert update_bytes_per_row(QWEN, ROW, weight_bytes=2, checkpointing=True) < padded / 10
    assert update_bytes_per_row(QWEN, ROW, weight_bytes=4) == pytest.approx(2 * padded, rel=1e-6)
    assert update_bytes_per_row(QWEN, ROW, weight_bytes=2, lora=True) > padded
    longer = RowShape(114, 512, 16)
    assert update_bytes_per_row(QWEN, longer, weight_bytes=2) == pytest.approx(padded * (114 + 512) / (114 + 256),
                                                                               rel=1e-6)
    assert persistent_bytes(QWEN, weight_bytes=2, lora=True) < persistent_bytes(QWEN, weight_bytes=2) / 3
    assert generation_bytes_per_row(QWEN, ROW, weight_bytes=2) < padded / 40


@pytest.mark.parametrize(("memory_gib", "expected"), [(80, 128), (40, 64), (20, 16), (10, 4)])
def test_the_micro_batch_is_the_largest_that_fits_and_divides_the_step(memory_gib, expected):
    per_row = update_bytes_per_row(QWEN, ROW, weight_bytes=2, packing=True, share_prompts=True)
    budget = memory_gib * GIB - persistent_bytes(QWEN, weight_bytes=2) - 2 * GIB
    micro = choose_micro_batch(512, budget=budget, per_row=per_row, generations=16)
    assert micro == expected and 512 % micro == 0
    assert micro * per_row <= budget < 2 * micro * per_row or micro == 512


def test_a_step_of_odd_size_and_a_card_too_small():
    assert choose_micro_batch(96, budget=50e9, per_row=1e9, generations=16) == 48  # 50 fit: 48 divides 96 (3 groups)
    assert choose_micro_batch(20, budget=7e9, per_row=1e9, generations=16) == 5   # no whole group fits: any divisor
    with pytest.raises(ValueError, match=r"one completion row needs 0.93 GiB in the update and 0.47 GiB are left"):
        choose_micro_batch(512, budget=0.5e9, per_row=1e9)


def test_generation_rows_fit_or_all_at_once():
    per_row = generation_bytes_per_row(QWEN, ROW, weight_bytes=2)
    assert choose_max_rows(512, budget=60 * GIB, per_row=per_row, generations=16) == 0
    rows = choose_max_rows(8192, budget=30 * GIB, per_row=per_row, generations=16)
    assert 0 < rows < 8192 and rows % 16 == 0 and rows * per_row <= 30 * GIB
    with pytest.raises(ValueError, match="one generation row needs"):
        choose_max_rows(512, budget=1e6, per_row=per_row)
