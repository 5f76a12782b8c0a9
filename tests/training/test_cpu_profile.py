"""The default recipe's CPU profile fits a laptop: a LoRA adapter, micro-batches, one checkpoint at the end,
its expected cost in the first log line of `ahazero train`; on the tiny model it runs end to end and eval reads it."""

from __future__ import annotations

import logging

import pytest
from helpers import REPO

from ahazero.config.cpu_profile import ProfileCost
from ahazero.config.schema import load_config
from ahazero.config.validate import check_config
from ahazero.training.assemble import load_for_device, train

DEFAULT = REPO / "configs" / "default.yaml"


def test_the_cpu_profile_trains_an_adapter_in_micro_batches_and_keeps_one_checkpoint():
    cfg = load_for_device(DEFAULT, cuda=False)
    args = check_config(cfg, cuda=False).grpo_args
    assert cfg.name == "default-cpu" and cfg.model.name_or_path == "qwen2.5-coder-0.5b-instruct"  # the real model
    assert cfg.model.lora is not None and cfg.model.lora.r == 16
    assert [r.name for r in cfg.rewards] == [r.name for r in load_config(DEFAULT).rewards]  # the real rewards
    assert args.max_steps == 2 and args.save_steps == args.max_steps and args.save_total_limit == 1
    assert args.warmup_steps == 0 and args.learning_rate > 0  # both steps update the adapter
    assert args.per_device_train_batch_size * args.gradient_accumulation_steps == 8  # 2 prompts x 4 completions
    assert args.gradient_checkpointing
    cost = cfg.cpu_expected
    assert isinstance(cost, ProfileCost) and cost.peak_memory_gib < 8 and cost.disk_gib < 4  # the laptop targets


def _profile_lines(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.getMessage().startswith("no GPU found")]


def test_train_states_the_expected_time_memory_and_disk_in_its_first_log_line(monkeypatch, caplog):
    from ahazero import cli

    monkeypatch.setattr("ahazero.models.loading.gpu_available", lambda: False)
    monkeypatch.setattr("ahazero.training.assemble.train", lambda cfg, resume=False: cfg.run_dir)
    with caplog.at_level(logging.INFO):
        assert cli.main(["train", "configs/default.yaml"]) == 0
    first = caplog.records[0].getMessage()
    cost = load_config(DEFAULT).cpu_expected
    assert first.startswith("no GPU found: running this recipe's CPU profile; as shipped it takes about "
                            f"{cost.minutes:g} min, {cost.peak_memory_gib:g} GiB of memory at the peak and "
                            f"{cost.disk_gib:g} GiB of disk in runs/default-cpu (measured on {cost.measured_on})")
    caplog.clear()
    with caplog.at_level(logging.INFO):  # check and eval name the profile, not the cost of training
        assert cli.main(["check", "configs/default.yaml", "--device", "cpu"]) == 0
    (line,) = _profile_lines(caplog)
    assert "as shipped" not in line and "cpu_overrides: name=default-cpu" in line


@pytest.mark.parametrize("bad", ["cpu_expected.minutes=0", "cpu_expected={minutes: 3}", "cpu_expected.hours=1"])
def test_a_bad_expected_cost_is_a_config_error(bad):
    from ahazero.config.schema import ConfigError

    with pytest.raises(ConfigError, match="cpu_expected"):
        load_config(DEFAULT, [bad])


def test_the_cpu_profile_runs_end_to_end_on_the_tiny_model(tmp_path, tiny_model_dir):
    from ahazero.evaluate import EvalSettings, evaluate

    cfg = load_for_device(DEFAULT, cuda=False, overrides=[
        "model.name_or_path=tiny", f"output_root={tmp_path}", "grpo.max_completion_length=8",
        "task.num_train=16", "task.num_test=4", "logging.report_to=[]"])
    run_dir = train(cfg)
    assert [p.name for p in (run_dir / "checkpoints").iterdir() if p.name.startswith("checkpoint-")] == [
        "checkpoint-2"]  # one checkpoint, at the end
    assert (run_dir / "model" / "adapter_config.json").is_file()
    assert not (run_dir / "checkpoints" / "checkpoint-2" / "model.safetensors").exists()  # an adapter, not weights
    results = evaluate(cfg, settings=EvalSettings(limit=4, max_new_tokens=8))
    assert results["tag"] == "final" and results["n"] == 4
