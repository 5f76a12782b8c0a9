"""The LoRA presets bring a LoRA-sized learning rate; the user's override wins, and the change is said."""

from __future__ import annotations

import logging

from helpers import REPO

from ahazero.config.presets import LORA_LEARNING_RATE
from ahazero.training.assemble import load_for_device

DEFAULT = REPO / "configs" / "default.yaml"


def test_lora_presets_set_their_learning_rate_and_overrides_win():
    base = load_for_device(DEFAULT, cuda=True).grpo["learning_rate"]
    assert LORA_LEARNING_RATE == 10 * base  # ten times the default recipe's full fine-tune
    for preset in ("lora", "lora-24gb"):
        assert load_for_device(DEFAULT, cuda=True, presets=[preset]).grpo["learning_rate"] == LORA_LEARNING_RATE
        cfg = load_for_device(DEFAULT, cuda=True, presets=[preset], overrides=["grpo.learning_rate=2e-5"])
        assert cfg.grpo["learning_rate"] == 2e-5
    # memory-only presets leave it alone
    cfg = load_for_device(DEFAULT, cuda=True, presets=["full-bf16", "gradient-checkpointing"])
    assert cfg.grpo["learning_rate"] == base


def test_a_preset_that_replaces_a_config_value_says_so(caplog):
    with caplog.at_level(logging.INFO, logger="ahazero.training.assemble"):
        load_for_device(DEFAULT, cuda=True, presets=["lora-24gb"])
    (line,) = [r.getMessage() for r in caplog.records if r.getMessage().startswith("preset ")]
    assert "preset lora-24gb changes the config's" in line
    assert "grpo.learning_rate 5e-06 -> 5e-05" in line and "grpo.per_device_train_batch_size 32 -> 8" in line


def test_the_command_line_shows_the_learning_rate_that_will_run(capsys):
    from ahazero.cli import main

    assert main(["check", str(DEFAULT), "--device", "cuda", "--preset", "lora", "grpo.learning_rate=1e-4"]) == 0
    assert "learning_rate: 0.0001" in capsys.readouterr().out
    assert main(["presets"]) == 0
    assert f"grpo.learning_rate={LORA_LEARNING_RATE}" in capsys.readouterr().out
