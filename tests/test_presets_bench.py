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


def test_big_batch_and_fast_rollouts_presets():
    from ahazero.config.validate import check_config

    cfg = load_config("configs/default.yaml", preset_override_strings(["big-batch"]))
    per_step = cfg.grpo["per_device_train_batch_size"] * cfg.grpo["gradient_accumulation_steps"]
    assert per_step == 512 and per_step // cfg.grpo["num_generations"] == 32  # 32 prompts x 16
    assert (cfg.grpo["learning_rate"], cfg.grpo["max_steps"], cfg.grpo["warmup_steps"]) == (1e-5, 20, 1)
    assert cfg.generation.share_prefill and not cfg.generation.compact_rows and cfg.update.sort_by_length
    assert check_config(cfg, cuda=True).backend == "graph"
    fast = load_config("configs/default.yaml", preset_override_strings(["fast-rollouts"]))
    assert fast.generation.share_prefill and fast.generation.compact_rows and fast.update.sort_by_length
    assert fast.grpo == load_config("configs/default.yaml").grpo  # speed only: the recipe is untouched
    # a later override still wins, and a named non-graph backend is refused before any model loads
    cfg = load_config("configs/default.yaml", [*preset_override_strings(["big-batch"]), "generation.backend=hf"])
    with pytest.raises(ConfigError, match="generation.share_prefill applies to the 'graph' backend only"):
        check_config(cfg, cuda=True)


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


#: What every measured case's summary holds (the JSON schema the README's tables are made from).
SUMMARY_KEYS = {
    "measured_steps", "tokens_per_second", "completions_per_second", "mean_completion_tokens", "step_seconds",
    "generation_seconds", "reward_seconds", "generation_share", "reward_share", "update_share",
    "warmup_step_seconds", "warmup_generation_seconds", "decode_timing", "decode_step_ms", "decode_rows_per_step",
    "decode_tbps", "decode_tflops", "decode_steps_per_step", "prefill_seconds", "prefill_rows_per_row",
    "compactions_per_step", "decode_bandwidth_pct", "decode_flops_pct", "peak_allocated_gib", "peak_reserved_gib",
    "reward",
}


def test_bench_runs_each_case_and_writes_json(tmp_path, tiny_model_dir):
    out = tmp_path / "bench" / "r.json"  # scratch runs go to bench/r-runs/
    result = ahazero("bench", "configs/smoke.yaml", "--backends", "hf,graph", "--presets", "lora",
                     "--batches", "8", "--generations", "4", "--max-tokens", "12", "--steps", "1",
                     "--peak-tbps", "0.05", "--peak-tflops", "2", "--update-variants", "padded,shared",
                     "--out", str(out), timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(out.read_text())
    assert [c["case"] for c in report["cases"]] == ["hf-b8", "graph-b8", "auto-lora-b8"]
    assert report["settings"] == {"prompts": 8, "generations": 4, "max_tokens": 12, "steps": 1, "warmup": 1}
    assert report["batches"] == [8]
    machine = report["machine"]
    assert machine["device"] == "cpu" and (machine["peak_tbps"], machine["peak_tflops"]) == (0.05, 2.0)
    assert machine["peak_source"] == "--peak-tbps and --peak-tflops given"
    for case in report["cases"]:
        assert case["status"] == "ok" and (case["batch"], case["prompts"]) == (8, 2)
        assert len(case["steps"]) == 2 and all(s["generated_tokens"] >= 8 for s in case["steps"])
        assert set(case["model"]) == {"parameters", "weight_bytes", "matmul_parameters", "head_parameters",
                                      "kv_bytes_per_position", "attention_flops_per_position"}
        summary = case["summary"]
        assert SUMMARY_KEYS <= set(summary), SUMMARY_KEYS - set(summary)
        assert summary["tokens_per_second"] > 0 and summary["completions_per_second"] > 0
        assert summary["decode_step_ms"] > 0 and summary["decode_tbps"] > 0 and summary["decode_tflops"] > 0
        assert summary["decode_bandwidth_pct"] == round(100 * summary["decode_tbps"] / 0.05, 1)
        # the update: timed per step, its tokens counted, its FLOP rate against the peak
        assert 0 < summary["update_forward_seconds"] < summary["update_seconds"]
        assert summary["update_tokens"] >= summary["update_loss_tokens"] > 0
        assert summary["update_mfu_pct"] == round(100 * summary["update_tflops"] / 2, 1)
        padded, shared = case["update_variants"]["padded"], case["update_variants"]["shared"]
        assert padded["status"] == shared["status"] == "ok" and padded["speedup"] == 1.0
        assert shared["update_loss_tokens"] == padded["update_loss_tokens"]  # the same completions scored
        assert shared["update_tokens"] < padded["update_tokens"] and shared["update_padding_share"] == 0.0
        assert shared["grad_rel_diff"] < 1e-4  # exact on the model being trained
    hf, graph, lora = (c["summary"] for c in report["cases"])
    assert hf["speedup_vs_hf"] == 1.0 and "speedup_vs_hf" in graph
    assert hf["decode_timing"] == lora["decode_timing"] == "estimated"  # auto is hf on a machine without a GPU
    assert graph["decode_timing"] == "measured" and graph["prefill_rows_per_row"] == 1.0
    assert report["cases"][2]["resolved_backend"] == "hf"
    assert "tok/s" in result.stdout and "TB/s (% peak)" in result.stdout and "MFU" in result.stdout
    assert "the update, each variant on the same completions" in result.stdout
    assert sorted(p.name for p in (tmp_path / "bench" / "r-runs").iterdir()) == ["auto-lora-b8", "graph-b8", "hf-b8"]


def test_bench_sweeps_every_case_over_the_batches():
    from ahazero.bench import _case_label, _cases, parse_batches

    cases = _cases(["hf", "graph"], ["fast-rollouts", "lora+gradient-checkpointing"], [128, 1024])
    assert [_case_label(*c) for c in cases] == [
        "hf-b128", "graph-b128", "auto-fast-rollouts-b128", "auto-lora-gradient-checkpointing-b128",
        "hf-b1024", "graph-b1024", "auto-fast-rollouts-b1024", "auto-lora-gradient-checkpointing-b1024"]
    assert [_case_label(*c) for c in _cases(["graph"], [], [])] == ["graph"]  # no --batches: the --prompts batch
    with pytest.raises(ConfigError, match="--batches: 'many' is not a positive whole number"):
        parse_batches("128,many", 16)


def test_a_batch_that_is_not_a_multiple_of_the_generations_is_refused(tmp_path):
    result = ahazero("bench", "configs/smoke.yaml", "--batches", "128,100", "--out", str(tmp_path / "r.json"))
    assert result.returncode == 2
    assert "--batches: 100 is not a multiple of --generations (16); e.g. 96 or 112" in result.stderr


def test_the_table_shows_the_decode_step_against_the_peaks(capsys):
    from ahazero.bench_report import add_peak_shares, print_table

    summary = {"tokens_per_second": 25000.0, "completions_per_second": 180.5, "step_seconds": 5.7,
               "generation_share": 0.6, "update_share": 0.39, "decode_step_ms": 6.1, "decode_rows_per_step": 700.0,
               "decode_timing": "measured", "decode_tbps": 1.44, "decode_tflops": 120.0,
               "peak_allocated_gib": 40.1, "peak_reserved_gib": 45.0, "reward": 0.4}
    cases = [{"case": "graph-b1024", "resolved_backend": "graph", "batch": 1024, "status": "ok", "summary": summary},
             {"case": "hf-b1024", "backend": "hf", "batch": 1024, "status": "error: OutOfMemoryError: CUDA"}]
    machine = {"device": "NVIDIA H200", "peak_tbps": 4.8, "peak_tflops": 989.5}
    add_peak_shares(cases, machine)
    print_table({"settings": {"prompts": 8, "generations": 16, "max_tokens": 512, "steps": 3},
                 "machine": machine, "cases": cases})
    text = capsys.readouterr().out
    assert "1024 completions (16 per prompt)" in text and "NVIDIA H200" in text
    for cell in ("25,000.0", "6.1 (700)", "1.44 (30.0%)", "120.0 (12.1%)", "40.1/45.0", "error: OutOfMemoryError"):
        assert cell in text, cell


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


def test_make_bench_runs_the_sweep_the_docs_show():
    import re

    from helpers import REPO

    make = (REPO / "Makefile").read_text()
    args = re.search(r"^BENCH_ARGS \?= (.+)$", make, re.MULTILINE).group(1)
    config = re.search(r"^CONFIG \?= (.+)$", make, re.MULTILINE).group(1)
    assert f"make bench        # = ahazero bench {config} {args}\n" in (REPO / "docs" / "performance.md").read_text()
    assert "--batches" in args and "fast-rollouts" in args
