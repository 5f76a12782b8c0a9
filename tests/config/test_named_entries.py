"""Overriding a list entry's name (``rewards.1.name=X``, a stage's ``kind``) replaces the entry with X's defaults."""

from __future__ import annotations

import logging

import pytest
from helpers import REPO, base_config

from ahazero.config.schema import ConfigError, apply_overrides, validate_dict
from ahazero.config.validate import check_config
from ahazero.training.assemble import load_for_device

DEFAULT = REPO / "configs" / "default.yaml"


def _notes(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "ahazero.config"]


def test_a_new_reward_name_drops_the_old_options_and_keeps_the_weight(caplog):
    with caplog.at_level(logging.INFO, logger="ahazero.config"):
        cfg = load_for_device(DEFAULT, cuda=False, overrides=["rewards.1.name=format_gate"])
    assert cfg.rewards[1].model_dump() == {"name": "format_gate", "weight": 0.5}
    assert [r.name for r in cfg.rewards] == ["accuracy", "format_gate", "language_consistency"]
    check_config(cfg, cuda=False)  # the registry builds format_gate with its own defaults
    assert _notes(caplog) == ["rewards.1: format_gate replaces think_format (kept: weight=0.5; dropped "
                              "think_format's options: require_answer_tags=True)"]


def test_the_whole_entry_form_sets_exactly_what_it_says(caplog):
    with caplog.at_level(logging.INFO, logger="ahazero.config"):
        cfg = load_for_device(DEFAULT, cuda=False, overrides=["rewards.1={name: format_gate, weight: 0.25}"])
    assert cfg.rewards[1].model_dump() == {"name": "format_gate", "weight": 0.25}
    assert _notes(caplog) == []


def test_the_same_name_again_keeps_the_options(caplog):
    with caplog.at_level(logging.INFO, logger="ahazero.config"):
        cfg = load_for_device(DEFAULT, cuda=False, overrides=["rewards.1.name=think_format"])
    assert cfg.rewards[1].kwargs() == {"require_answer_tags": True}
    assert _notes(caplog) == []


@pytest.mark.parametrize("order", [("rewards.0.name=think_format", "rewards.0.min_think_chars=5"),
                                   ("rewards.0.min_think_chars=5", "rewards.0.name=think_format")])
def test_options_given_with_the_new_name_apply_to_the_new_reward_in_either_order(order):
    cfg = validate_dict(base_config(rewards=[{"name": "accuracy", "weight": 2.0, "timeout_seconds": 1.0}]))
    entry = apply_overrides(cfg, list(order)).rewards[0]
    assert entry.model_dump() == {"name": "think_format", "weight": 2.0, "min_think_chars": 5}


def test_a_missing_entry_is_still_an_error():
    cfg = validate_dict(base_config())
    with pytest.raises(ConfigError, match="'rewards.5' is not an index of a 2-item list"):
        apply_overrides(cfg, ["rewards.5.name=format_gate"])


def test_a_new_stage_kind_keeps_the_name_and_overrides_and_drops_the_old_kinds_fields(caplog):
    cfg = validate_dict(base_config(stages=[
        {"name": "data", "kind": "sample", "n": 8, "prompts": 16, "overrides": {"seed": 3}},
        {"name": "rl", "kind": "grpo"}]))
    with caplog.at_level(logging.INFO, logger="ahazero.config"):
        stage = apply_overrides(cfg, ["stages.0.kind=coldstart"]).stages[0]
    assert (stage.name, stage.kind, stage.n, stage.prompts, stage.overrides) == ("data", "coldstart", None, None,
                                                                                  {"seed": 3})
    (note,) = _notes(caplog)
    assert note.startswith("stages.0: coldstart replaces sample (kept: name='data', overrides={'seed': 3}; ")
    assert "dropped sample's options: n=8, prompts=16" in note


def test_the_command_line_accepts_a_new_reward_name(capsys):
    from ahazero.cli import main

    assert main(["check", str(DEFAULT), "--device", "cpu", "rewards.1.name=format_gate"]) == 0
    out = capsys.readouterr().out
    assert "- name: format_gate\n  weight: 0.5\n- name: language_consistency" in out
    assert "require_answer_tags" not in out
