"""Under FSDP and ZeRO-3 the CUDA-graph rollout backends give way to 'hf', with a warning."""

from __future__ import annotations

import json
import logging

import pytest
from helpers import base_config

from ahazero.config.schema import validate_dict
from ahazero.config.sharding import backend_under_sharding, sharding_in_use
from ahazero.config.validate import build_grpo_config, check_config, resolved_backend

_ACCELERATE_ENV = ("ACCELERATE_USE_FSDP", "ACCELERATE_USE_DEEPSPEED", "ACCELERATE_DEEPSPEED_ZERO_STAGE",
                   "ACCELERATE_DEEPSPEED_CONFIG_FILE")


@pytest.fixture
def env(monkeypatch):
    """A clean slate of accelerate's strategy variables; set what a launched process would see."""
    for key in _ACCELERATE_ENV:
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setattr("ahazero.config.backend_choice.vllm_available", lambda: False)
    return monkeypatch


def test_the_strategy_is_read_from_what_accelerate_exports(tmp_path):
    assert sharding_in_use({}, env={}) is None
    assert sharding_in_use({}, env={"ACCELERATE_USE_FSDP": "true"}) == "fsdp"
    assert sharding_in_use({}, env={"ACCELERATE_USE_FSDP": "false"}) is None
    deepspeed = {"ACCELERATE_USE_DEEPSPEED": "true"}
    assert sharding_in_use({}, env={**deepspeed, "ACCELERATE_DEEPSPEED_ZERO_STAGE": "2"}) == "zero2"
    assert sharding_in_use({}, env={**deepspeed, "ACCELERATE_DEEPSPEED_ZERO_STAGE": "3"}) == "zero3"
    ds_file = tmp_path / "ds.json"
    ds_file.write_text(json.dumps({"zero_optimization": {"stage": 3}}))
    assert sharding_in_use({}, env={**deepspeed, "ACCELERATE_DEEPSPEED_CONFIG_FILE": str(ds_file)}) == "zero3"
    # a stage nobody can read counts as possibly sharded
    assert sharding_in_use({}, env=deepspeed) == "deepspeed"
    # the grpo section's own fields (TrainingArguments.fsdp / .deepspeed) count too
    assert sharding_in_use({"fsdp": "full_shard"}, env={}) == "fsdp"
    assert sharding_in_use({"deepspeed": str(ds_file)}, env={}) == "zero3"


def test_only_capturing_backends_under_sharded_parameters_change():
    for sharding in ("fsdp", "zero3", "deepspeed"):
        for backend in ("graph", "compiled"):
            chosen, why = backend_under_sharding(backend, sharding)
            assert chosen == "hf" and f"'{backend}' cannot run under" in why and "'hf'" in why
        for backend in ("hf", "paged", "vllm", "custom"):
            assert backend_under_sharding(backend, sharding) == (backend, None)
    for sharding in (None, "zero1", "zero2"):
        assert backend_under_sharding("graph", sharding) == ("graph", None)


def test_auto_on_a_gpu_under_each_strategy(env):
    cfg = validate_dict(base_config())
    assert resolved_backend(cfg, cuda=True) == "graph"  # DDP or one GPU
    env.setenv("ACCELERATE_USE_DEEPSPEED", "true")
    env.setenv("ACCELERATE_DEEPSPEED_ZERO_STAGE", "2")
    assert resolved_backend(cfg, cuda=True) == "graph"
    env.setenv("ACCELERATE_DEEPSPEED_ZERO_STAGE", "3")
    assert resolved_backend(cfg, cuda=True) == "hf"
    env.delenv("ACCELERATE_USE_DEEPSPEED")
    env.setenv("ACCELERATE_USE_FSDP", "true")
    assert resolved_backend(cfg, cuda=True) == "hf"


def test_a_named_backend_falls_back_with_one_warning_and_grpo_settings_follow(env, tmp_path, caplog):
    env.setenv("ACCELERATE_USE_FSDP", "true")
    cfg = validate_dict(base_config(generation={"backend": "compiled"}, output_root=str(tmp_path)))
    # 'compiled' would set a static KV cache in GRPOConfig; 'hf' sets nothing
    assert build_grpo_config(cfg, cuda=False).cache_implementation is None
    with caplog.at_level(logging.WARNING, logger="ahazero.config.validate"):
        checked = check_config(cfg, cuda=False)
    assert checked.backend == "hf"
    warnings = [r.getMessage() for r in caplog.records if "cannot run under FSDP" in r.getMessage()]
    assert len(warnings) == 1 and "rollouts use 'hf'" in warnings[0]
    # only the main process says it
    caplog.clear()
    env.setenv("RANK", "1")
    with caplog.at_level(logging.WARNING, logger="ahazero.config.validate"):
        assert check_config(cfg, cuda=False).backend == "hf"
    assert not [r for r in caplog.records if "cannot run under" in r.getMessage()]
