"""'auto' micro-batch sizes: chosen from a (made-up) memory number, written to the run, kept by a resume."""

from __future__ import annotations

import json
import logging

import pytest
import yaml
from helpers import base_config, qwen_shape
from test_cli import ahazero

from ahazero.config.schema import ConfigError, validate_dict
from ahazero.config.validate import check_config
from ahazero.observe.rundir import read_metrics
from ahazero.training.auto_sizes import auto_keys, plan_memory, resolve_auto_sizes

QWEN = qwen_shape()


def auto_config(**changes):
    grpo = {"per_device_train_batch_size": "auto", "generation_batch_size": 512, "num_generations": 16,
            "max_completion_length": 256, "gradient_checkpointing": False, **changes.pop("grpo", {})}
    return validate_dict(base_config(grpo=grpo, generation={"max_rows": "auto"},
                                     model={"name_or_path": "tiny", "dtype": "bfloat16"}, **changes))


@pytest.mark.parametrize(("memory_gib", "update", "micro"), [
    (80, {}, 64), (80, {"packing": True, "share_prompts": True}, 128), (141, {}, 128), (24, {}, 16),
])
def test_the_plan_splits_the_step_into_what_fits(memory_gib, update, micro):
    plan = plan_memory(auto_config(update=update), QWEN, prompt_tokens=114, memory_bytes=memory_gib * 2**30,
                       cuda=True)
    assert plan.per_device_train_batch_size == micro
    assert plan.per_device_train_batch_size * plan.gradient_accumulation_steps == 512
    assert plan.update_peak_gib <= memory_gib and plan.max_rows == 0  # the whole step generates at once
    assert "micro-batches of" in plan.describe() and f"of {memory_gib:.1f} GiB" in plan.describe()


def test_two_processes_split_the_step_between_them():
    plan = plan_memory(auto_config(), QWEN, prompt_tokens=114, memory_bytes=80 * 2**30, cuda=True, processes=2)
    assert plan.per_device_train_batch_size * plan.gradient_accumulation_steps == 256


def test_auto_needs_the_step_size_and_leaves_steps_per_generation_to_itself():
    with pytest.raises(ConfigError, match="give their number in grpo.generation_batch_size"):
        check_config(validate_dict(base_config(grpo={"per_device_train_batch_size": "auto"})), cuda=False)
    with pytest.raises(ConfigError, match="drop grpo.steps_per_generation"):
        check_config(auto_config(grpo={"steps_per_generation": 4}), cuda=False)
    with pytest.raises(ConfigError, match=r"expected an integer >= 1 or 'auto', got 'many'"):
        check_config(validate_dict(base_config(grpo={"per_device_train_batch_size": "many"})), cuda=False)
    check_config(auto_config(), cuda=False)  # checked as one micro-batch per step until the run chooses


def test_too_little_memory_is_a_config_error_that_says_what_to_change(tiny_model_dir):
    cfg = validate_dict(base_config(update={"memory_gib": 0.01},
                                    grpo={"per_device_train_batch_size": "auto", "generation_batch_size": 8,
                                          "num_generations": 4}))
    with pytest.raises(ConfigError, match=r"grpo.per_device_train_batch_size 'auto': one completion row needs .* "
                                          r"use gradient checkpointing, LoRA, shorter completions"):
        resolve_auto_sizes(cfg, cuda=False)
    resolved, plan = resolve_auto_sizes(validate_dict(base_config()), cuda=False)
    assert plan is None and auto_keys(resolved) == []  # nothing to choose


def test_a_run_records_its_sizes_and_a_resume_keeps_them(tmp_path, tiny_model_dir, caplog):
    from ahazero.config.memory_model import (
        OVERHEAD_BYTES,
        OVERHEAD_SHARE,
        RowShape,
        persistent_bytes,
        update_bytes_per_row,
    )
    from ahazero.training.assemble import train
    from ahazero.training.auto_sizes import longest_prompt, model_shape

    def config(memory_gib, steps):
        return validate_dict(base_config(
            output_root=str(tmp_path), logging={"report_to": []}, update={"memory_gib": memory_gib},
            generation={"max_rows": "auto"},
            grpo={"per_device_train_batch_size": "auto", "generation_batch_size": 8, "num_generations": 4,
                  "gradient_accumulation_steps": 5, "max_steps": steps, "save_steps": 1,
                  "max_completion_length": 8, "gradient_checkpointing": False}))

    shape = model_shape("tiny")  # memory for 2.5 rows of the tiny model's update in float32: micro-batches of 2
    per_row = update_bytes_per_row(shape, RowShape(longest_prompt(config(1.0, 1)), 8, 4), weight_bytes=4)
    needed = OVERHEAD_BYTES + persistent_bytes(shape, weight_bytes=4) + 2.5 * per_row
    with caplog.at_level(logging.INFO, logger="ahazero.training.auto_sizes"):
        run_dir = train(config(needed / (1 - OVERHEAD_SHARE) / 2**30, 1))
    saved = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert (saved["grpo"]["per_device_train_batch_size"], saved["grpo"]["gradient_accumulation_steps"]) == (2, 4)
    assert saved["generation"]["max_rows"] == 0
    recorded = json.loads((run_dir / "run.json").read_text())["auto_sizes"]
    assert (recorded["per_device_train_batch_size"], recorded["source"]) == (2, "update.memory_gib")
    assert "auto sizes: micro-batches of 2 x 4" in caplog.text
    rows = read_metrics(run_dir / "metrics.jsonl")
    assert [r["timing/update_micro_batches"] for r in rows if "timing/update_micro_batches" in r] == [4]
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="ahazero.training.auto_sizes"):
        train(config(50.0, 2), resume=True)  # far more memory now: the run keeps its first sizes
    assert yaml.safe_load((run_dir / "config.yaml").read_text())["grpo"]["per_device_train_batch_size"] == 2
    assert "auto sizes as this run first chose them: micro-batches of 2 x 4" in caplog.text


def test_check_estimates_every_preset_on_a_card(tiny_model_dir):
    result = ahazero("check", "configs/smoke.yaml", "--all-presets", "--card-gib", "24")
    assert result.returncode == 0, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("# memory")]
    assert lines[0].startswith("# memory, this config: micro-batches of 8 x 1")
    assert any(line.startswith("# memory, fast: micro-batches of 512 x 1") for line in lines)  # the whole step fits
    assert all("of 24.0 GiB (a 24 GiB card" in line for line in lines if "not estimated" not in line)


def test_check_loads_no_model_it_names_but_does_not_have(monkeypatch, capsys):
    """``check`` estimates memory only from what is on disk: a named model not fetched yet is not fetched."""
    from ahazero.cli import main
    from ahazero.models import registry

    def refuse(name):  # fetching and converting the GGUF would take minutes and the network
        raise AssertionError(f"check fetched {name}")

    monkeypatch.setattr(registry, "prepare_named_model", refuse)
    assert main(["check", "configs/default.yaml", "--device", "cuda", "--all-presets"]) == 0
    err = capsys.readouterr().err
    assert "# memory: not estimated (the prompts could not be measured: the model qwen2.5-coder-0.5b-instruct " \
           "is not on disk yet" in err
    assert "ahazero fetch-model" in err
