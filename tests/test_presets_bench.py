"""Memory presets (named override bundles) and the rollout benchmark on the tiny model."""

from __future__ import annotations

import json

import pytest
from test_cli import ahazero

from ahazero.bench import BenchSettings, bench_overrides, summarize_case
from ahazero.config.presets import PRESETS, preset_override_strings, preset_overrides
from ahazero.config.schema import ConfigError, load_config


def test_presets_apply_as_overrides_and_compose():
    cfg = load_config("configs/default.yaml", preset_override_strings(["lora-24gb"]))
    assert cfg.model.lora is not None and cfg.model.lora.r == 16
    assert cfg.grpo["gradient_checkpointing"] is True
    assert cfg.grpo["per_device_train_batch_size"] * cfg.grpo["gradient_accumulation_steps"] == 128
    merged = preset_overrides(["full-bf16", "gradient-checkpointing"])
    assert merged == {"model.dtype": "bfloat16", "grpo.gradient_checkpointing": True}
    # command-line overrides come after presets and win
    cfg = load_config("configs/default.yaml", [*preset_override_strings(["lora"]), "model.lora.r=4"])
    assert cfg.model.lora.r == 4


def test_every_preset_loads_on_the_default_config(monkeypatch):
    monkeypatch.setattr("ahazero.config.presets._require_liger", lambda: None)
    for name in PRESETS:
        load_config("configs/default.yaml", preset_override_strings([name]))


def test_unknown_preset_and_missing_liger_are_clear(monkeypatch):
    with pytest.raises(ConfigError, match="unknown preset 'lora24'.*did you mean 'lora-24gb'"):
        preset_overrides(["lora24"])
    monkeypatch.setattr("importlib.util.find_spec", lambda name: None)
    with pytest.raises(ConfigError, match="pip install liger-kernel"):
        preset_overrides(["liger"])


def test_preset_flag_on_the_command_line():
    result = ahazero("check", "configs/default.yaml", "--device", "cuda", "--preset", "lora-24gb")
    assert result.returncode == 0, result.stderr
    assert "gradient_checkpointing: true" in result.stdout and "r: 16" in result.stdout
    result = ahazero("check", "configs/default.yaml", "--preset", "nope")
    assert result.returncode == 2 and "unknown preset 'nope'" in result.stderr
    assert "lora-24gb" in ahazero("presets").stdout
    # overrides may follow the option; later overrides win over the preset
    result = ahazero("check", "configs/default.yaml", "--device", "cuda", "--preset", "lora", "model.lora.r=4")
    assert result.returncode == 0, result.stderr
    assert "r: 4" in result.stdout
    assert ahazero("check", "configs/default.yaml", "--bogus").returncode == 2


def test_bench_batch_shape_and_a_batch_that_does_not_divide():
    cfg = load_config("configs/default.yaml")
    o = bench_overrides(cfg, BenchSettings(prompts=8, generations=16, max_tokens=512), backend="graph",
                        name="b", output_root="out")
    assert o["grpo.per_device_train_batch_size"] * o["grpo.gradient_accumulation_steps"] == 128
    assert o["grpo.max_completion_length"] == 512 and o["generation.backend"] == "graph"
    with pytest.raises(ConfigError, match=r"must divide the bench batch \(3 prompts x 2 completions = 6\)"):
        bench_overrides(cfg, BenchSettings(prompts=3, generations=2), backend="hf", name="b", output_root="o")


def test_summary_excludes_warmup_and_splits_the_step():
    steps = [
        {"step_seconds": 30.0, "generation_seconds": 29.0, "reward_seconds": 0.1, "generated_tokens": 100.0},
        {"step_seconds": 4.0, "generation_seconds": 3.0, "reward_seconds": 0.2, "generated_tokens": 600.0,
         "reward": 0.5, "rewards/accuracy/mean": 0.25, "peak_reserved_gib": 2.0},
        {"step_seconds": 6.0, "generation_seconds": 5.0, "reward_seconds": 0.2, "generated_tokens": 1000.0,
         "reward": 0.7, "rewards/accuracy/mean": 0.75, "peak_reserved_gib": 3.0},
    ]
    s = summarize_case(steps, warmup=1, completions_per_step=10)
    assert s["measured_steps"] == 2 and s["warmup_step_seconds"] == [30.0]
    assert s["tokens_per_second"] == 200.0  # 1600 tokens / 8 s
    assert s["generation_share"] == 0.8 and s["reward_share"] == 0.04 and s["update_share"] == 0.16
    assert s["mean_completion_tokens"] == 80.0
    assert s["reward"] == 0.6 and s["rewards/accuracy/mean"] == 0.5 and s["peak_reserved_gib"] == 3.0


def test_bench_runs_each_case_and_writes_json(tmp_path, tiny_model_dir):
    out = tmp_path / "bench" / "r.json"  # scratch runs go to bench/r-runs/
    result = ahazero("bench", "configs/smoke.yaml", "--backends", "hf,graph", "--presets", "lora",
                     "--prompts", "2", "--generations", "4", "--max-tokens", "12", "--steps", "2",
                     "--out", str(out), timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(out.read_text())
    assert [c["case"] for c in report["cases"]] == ["hf", "graph", "auto-lora"]
    assert report["settings"] == {"prompts": 2, "generations": 4, "max_tokens": 12, "steps": 2, "warmup": 1}
    for case in report["cases"]:
        assert case["status"] == "ok"
        assert len(case["steps"]) == 3 and all(s["generated_tokens"] >= 8 for s in case["steps"])
        assert case["summary"]["tokens_per_second"] > 0
    assert report["cases"][0]["summary"]["speedup_vs_hf"] == 1.0
    assert report["cases"][2]["resolved_backend"] == "hf"  # auto on a machine without a GPU
    assert "tok/s" in result.stdout
    assert sorted(p.name for p in (tmp_path / "bench" / "r-runs").iterdir()) == ["auto-lora", "graph", "hf"]


def test_a_failing_case_is_reported_not_fatal(tmp_path, tiny_model_dir):
    out = tmp_path / "r.json"
    result = ahazero("bench", "configs/smoke.yaml", "--backends", "vllm", "--steps", "1", "--warmup", "0",
                     "--prompts", "2", "--generations", "4", "--out", str(out), timeout=300)
    assert result.returncode == 1
    case = json.loads(out.read_text())["cases"][0]
    assert case["status"].startswith("error: ConfigError") and "vllm" in case["status"]


def test_bench_never_replaces_a_folder_it_did_not_create(tmp_path, tiny_model_dir):
    from pathlib import Path

    from ahazero.bench import run_case
    from ahazero.config.schema import ConfigError
    from ahazero.observe.rundir import RunDirError

    settings = BenchSettings(prompts=2, generations=4, max_tokens=8, steps=1, warmup=0)
    mine = tmp_path / "hf"
    mine.mkdir()
    (mine / "notes.txt").write_text("a user's own files")
    with pytest.raises(ConfigError, match="is a folder that holds no run"):  # refused by the config check
        run_case("configs/smoke.yaml", [], backend="hf", presets=[], settings=settings, out_dir=tmp_path)
    assert (mine / "notes.txt").read_text() == "a user's own files"
    (mine / "config.yaml").write_text("name: a run of the user's\n")  # a run, but not the bench's
    with pytest.raises(RunDirError, match="was not written by `ahazero bench`"):
        run_case("configs/smoke.yaml", [], backend="hf", presets=[], settings=settings, out_dir=tmp_path)
    assert (mine / "notes.txt").read_text() == "a user's own files"
    # a bench's own scratch run is replaced by the next bench of the same case
    first = run_case("configs/smoke.yaml", [], backend="graph", presets=[], settings=settings, out_dir=tmp_path)
    again = run_case("configs/smoke.yaml", [], backend="graph", presets=[], settings=settings, out_dir=tmp_path)
    assert first["status"] == again["status"] == "ok"
    assert Path(tmp_path / "graph" / ".ahazero-bench").is_file()
