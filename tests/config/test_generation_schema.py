"""The generation section's decode options: defaults, bad values, and backends they do not apply to."""

from __future__ import annotations

import pytest
from helpers import base_config

from ahazero.config.schema import ConfigError, validate_dict
from ahazero.config.throughput import graph_settings_in_use


def test_defaults_record_the_step_and_group_the_heads():
    cfg = validate_dict(base_config())
    assert cfg.generation.graph_mode == "capture" and cfg.generation.grouped_attention is True
    assert graph_settings_in_use(cfg) == []


@pytest.mark.parametrize(("key", "value", "expected"), [
    ("graph_mode", "cudagraph", r"generation.graph_mode.*'compile' or 'capture'"),
    ("grouped_attention", "maybe", r"generation.grouped_attention.*valid boolean"),
])
def test_bad_values_name_the_key_and_the_choices(key, value, expected):
    with pytest.raises(ConfigError, match=expected):
        validate_dict(base_config(generation={key: value}))


def test_changed_decode_options_count_as_graph_settings():
    cfg = validate_dict(base_config(generation={"graph_mode": "compile", "grouped_attention": False}))
    assert graph_settings_in_use(cfg) == ["generation.grouped_attention", "generation.graph_mode"]
