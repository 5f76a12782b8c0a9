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


# Mistakes in the config file itself: each is a one-line ConfigError naming the file, key or override.

ALIAS_BOMB = """name: bomb
model: {name_or_path: tiny}
task: {name: arithmetic}
rewards: [{name: accuracy}]
grpo:
  generation_kwargs:
    a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]
    b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]
    c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]
    d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]
    e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]
    f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]
    g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f]
    h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g]
    i: &i [*h, *h, *h, *h, *h, *h, *h, *h, *h]
"""


def one_line_error(call, *args) -> str:
    with pytest.raises(ConfigError) as info:
        call(*args)
    message = str(info.value)
    assert "\n" not in message
    return message


def test_binary_config_file_is_not_yaml_text(tmp_path):
    png = tmp_path / "config.yaml"
    png.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)))
    assert one_line_error(load_config, png) == f"{png} is not a YAML text file: it holds NUL bytes (binary data)"
    latin = tmp_path / "latin.yaml"
    latin.write_bytes("name: caf\xe9\n".encode("latin-1"))
    assert "latin.yaml is not a YAML text file: byte 9 is not UTF-8" in one_line_error(load_config, latin)


def test_config_path_that_is_not_a_regular_file(tmp_path):
    assert "is a folder, not a config file" in one_line_error(load_config, tmp_path)
    assert "/dev/zero is a character device, not a config file" in one_line_error(load_config, "/dev/zero")


def test_config_file_over_one_mebibyte(tmp_path):
    big = tmp_path / "big.yaml"
    big.write_text("name: x\n" + "# padding\n" * 120_000)
    assert "a config file may hold at most 1048576 bytes" in one_line_error(load_config, big)


def test_yaml_alias_bomb_fails_at_once(tmp_path):
    path = tmp_path / "bomb.yaml"
    path.write_text(ALIAS_BOMB)
    message = one_line_error(load_config, path)
    assert message.startswith(f"{path}: its YAML aliases expand to more than 100000 values (")


def test_recursive_alias_and_deep_nesting(tmp_path):
    loop = tmp_path / "loop.yaml"
    loop.write_text("name: &a [*a]\n")
    assert "a YAML alias refers to itself" in one_line_error(load_config, loop)
    deep = tmp_path / "deep.yaml"
    deep.write_text("name: " + "[" * 5000 + "]" * 5000 + "\n")
    assert "nested too deeply" in one_line_error(load_config, deep)


def test_yaml_error_is_one_line_with_its_position(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nseed: [1, 2\n")
    assert one_line_error(load_config, bad).startswith(f"{bad} is not valid YAML: line 3, column 1: ")


def test_override_that_is_not_yaml_names_the_override():
    cfg = validate_dict(base_config())
    message = one_line_error(apply_overrides, cfg, ["seed=["])
    assert message.startswith("override 'seed=[' is not valid YAML: line 1, column 2:")


def test_override_alias_bomb_is_refused():
    values = "[" + ", ".join(["*a"] * 9) + "]"
    bomb = "grpo.generation_kwargs={a: &a [1,1,1,1,1,1,1,1,1], b: &b " + values + "".join(
        f", {c}: &{c} " + values.replace("*a", f"*{p}") for p, c in zip("bcdefgh", "cdefghi")) + "}"
    assert "aliases expand to more than 100000 values" in one_line_error(parse_override, bomb)


def test_run_name_of_300_characters_names_the_limit():
    message = one_line_error(validate_dict, base_config(name="a" * 300))
    assert message.startswith("bad value for 'name' ('aaaa")
    assert message.endswith("a run name has at most 100 characters (this one has 300)")
    assert len(message) < 200
    assert validate_dict(base_config(name="a" * 100)).name == "a" * 100


@pytest.mark.parametrize("root", ["~/runs", "", "runs\nx"])
def test_output_root_that_cannot_be_meant(root):
    assert "bad value for 'output_root'" in one_line_error(validate_dict, base_config(output_root=root))


@pytest.mark.parametrize("weight", [".nan", ".inf", "-.inf"])
def test_reward_weight_must_be_finite(weight):
    cfg = validate_dict(base_config())
    message = one_line_error(apply_overrides, cfg, [f"rewards.0.weight={weight}"])
    assert message.startswith("bad value for 'rewards.0.weight'") and "finite number" in message
