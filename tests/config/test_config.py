"""Config schema: loading, overrides, and errors that name the bad key and the valid choices."""

from __future__ import annotations

import pytest
from helpers import REPO, base_config

from ahazero.config.schema import (
    ConfigError,
    apply_overrides,
    dump_config,
    load_config,
    parse_override,
    validate_dict,
)


def test_valid_config_round_trips_through_yaml(tmp_path):
    cfg = validate_dict(base_config(task={"name": "countdown", "num_numbers": 3}))
    path = tmp_path / "c.yaml"
    path.write_text(dump_config(cfg))
    again = load_config(path)
    assert again == cfg
    assert again.task.options() == {"num_numbers": 3}


def test_unknown_top_level_key_names_key_and_choices():
    with pytest.raises(ConfigError) as err:
        validate_dict(base_config(modle={}))
    msg = str(err.value)
    assert "'modle'" in msg and "did you mean 'model'" in msg and "rewards" in msg


def test_unknown_nested_key_lists_valid_keys():
    data = base_config()
    data["prompt"] = {"templat": "chat"}
    with pytest.raises(ConfigError, match=r"unknown key 'prompt.templat'.*valid keys here: prefill_think, "):
        validate_dict(data)


def test_bad_literal_lists_choices():
    data = base_config()
    data["prompt"] = {"template": "alpaca"}
    with pytest.raises(ConfigError, match=r"prompt.template.*'chat' or 'r1_zero'"):
        validate_dict(data)


def test_wrong_type_and_range():
    with pytest.raises(ConfigError, match="seed"):
        validate_dict(base_config(seed="abc"))
    with pytest.raises(ConfigError, match="logging.trace_sample_rate"):
        validate_dict(base_config(logging={"trace_sample_rate": 0}))
    with pytest.raises(ConfigError, match="rewards"):
        validate_dict(base_config(rewards=[]))


def test_missing_required_key():
    data = base_config()
    del data["model"]
    with pytest.raises(ConfigError, match="missing required key 'model'"):
        validate_dict(data)


def test_bad_run_name():
    with pytest.raises(ConfigError, match="name"):
        validate_dict(base_config(name="../escape"))


def test_overrides_parse_yaml_values():
    assert parse_override("grpo.learning_rate=1e-6") == (["grpo", "learning_rate"], 1e-6)
    assert parse_override("logging.report_to=[]") == (["logging", "report_to"], [])
    assert parse_override("prompt.prefill_think=false") == (["prompt", "prefill_think"], False)
    with pytest.raises(ConfigError, match="key.path=value"):
        parse_override("grpo.learning_rate")


def test_overrides_apply_and_revalidate():
    cfg = validate_dict(base_config())
    new = apply_overrides(cfg, ["grpo.learning_rate=3e-6", "rewards.1.weight=0", "task.max_terms=4"])
    assert new.grpo["learning_rate"] == 3e-6
    assert new.rewards[1].weight == 0.0
    assert new.task.options()["max_terms"] == 4
    assert cfg.grpo.get("learning_rate") is None  # the original is untouched
    with pytest.raises(ConfigError, match="not an index"):
        apply_overrides(cfg, ["rewards.5.weight=1"])
    with pytest.raises(ConfigError, match="unknown key 'modelx'"):
        apply_overrides(cfg, ["modelx.a=1"])


def test_missing_file_and_bad_yaml(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)
    scalar = tmp_path / "scalar.yaml"
    scalar.write_text("42\n")
    with pytest.raises(ConfigError, match="mapping"):
        load_config(scalar)


@pytest.mark.parametrize("path", sorted((REPO / "configs").glob("*.yaml")), ids=lambda p: p.name)
def test_shipped_configs_parse(path):
    cfg = load_config(path)
    assert cfg.rewards and cfg.model.name_or_path
