"""`ahazero eval` says what limited it: the token limit and where it came from, the dtype, the profile,
a warning when many answers hit the limit, and progress lines on long evaluations."""

from __future__ import annotations

import io
import json
import logging

from helpers import REPO, base_config
from rich.console import Console

from ahazero.config.schema import load_config, validate_dict
from ahazero.eval_report import DecodingOrigin, ProgressLog, decoding_origin, limit_warning, render_markdown
from ahazero.evaluate import EvalSettings, evaluate
from ahazero.training.assemble import load_for_device

DEFAULT = REPO / "configs" / "default.yaml"


def test_the_default_recipe_on_a_cpu_names_the_cpu_profile_and_the_recipes_longer_limit():
    cpu = load_for_device(DEFAULT, cuda=False)
    origin = decoding_origin(load_config(DEFAULT), cpu, cuda=False, flag=None)
    assert origin == DecodingOrigin("CPU profile (cpu_overrides)", "grpo.max_completion_length of the CPU profile",
                                    256)
    gpu = load_for_device(DEFAULT, cuda=True)
    assert decoding_origin(load_config(DEFAULT), gpu, cuda=True, flag=None) == DecodingOrigin(
        "GPU recipe", "grpo.max_completion_length", None)
    assert decoding_origin(load_config(DEFAULT), cpu, cuda=False, flag=512).max_new_tokens_from == "--max-new-tokens"
    # a command-line override of the length is the config's, not the profile's
    longer = load_for_device(DEFAULT, cuda=False, overrides=["grpo.max_completion_length=96"])
    assert decoding_origin(load_config(DEFAULT), longer, cuda=False, flag=None) == DecodingOrigin(
        "CPU profile (cpu_overrides)", "grpo.max_completion_length", 256)


def test_the_warning_starts_above_a_fifth_of_the_answers_and_says_how_to_raise_the_limit():
    results = {"n": 200, "max_new_tokens": 48}
    assert limit_warning({**results, "truncation_rate": 0.2}) is None
    origin = DecodingOrigin("CPU profile (cpu_overrides)", "grpo.max_completion_length of the CPU profile", 256)
    text = limit_warning({**results, "truncation_rate": 0.69}, origin)
    assert text.startswith("69% of the answers (138 of 200) stopped at max_new_tokens=48 (grpo.max_completion_"
                           "length of the CPU profile)")
    assert text.endswith("--max-new-tokens 256 (the GPU recipe's grpo.max_completion_length)")
    # sampled answers count too; without a longer recipe value the hint doubles the limit
    sampled = {**results, "truncation_rate": 0.0, "sampled": {"behaviour/truncation_rate": 0.5}}
    assert "--max-new-tokens 96 (or grpo.max_completion_length=" in limit_warning(sampled)


def test_an_eval_that_hits_its_limit_says_so_in_its_results_files_and_log(tmp_path, tiny_model_dir, caplog):
    cfg = validate_dict(base_config(output_root=str(tmp_path)))
    origin = DecodingOrigin("CPU, no cpu_overrides", "--max-new-tokens")
    with caplog.at_level(logging.INFO, logger="ahazero.eval"):
        results = evaluate(cfg, model="base", settings=EvalSettings(limit=4, batch_size=2, max_new_tokens=3),
                           origin=origin)
    assert results["truncation_rate"] == 1.0  # the random tiny model never stops within 3 tokens
    assert (results["dtype"], results["profile"], results["max_new_tokens_from"]) == (
        "float32", "CPU, no cpu_overrides", "--max-new-tokens")
    assert results["limit_warning"].startswith("100% of the answers (4 of 4) stopped at max_new_tokens=3")
    saved = json.loads((tmp_path / "t" / "eval" / "base.json").read_text())
    assert saved["limit_warning"] == results["limit_warning"] and saved["dtype"] == "float32"
    md = (tmp_path / "t" / "eval" / "base.md").read_text()
    assert "decoding: greedy, max_new_tokens=3 (--max-new-tokens), float32, CPU, no cpu_overrides" in md
    assert f"**Warning:** {results['limit_warning']}" in md
    messages = [r.getMessage() for r in caplog.records]
    assert "greedy (base): 4 problems x 1 completion(s) in batches of 2 problems, up to 3 new tokens each, on CPU" \
        in messages
    assert any(m.startswith("greedy (base): 4/4 problems after ") for m in messages)  # the last progress line
    assert results["limit_warning"] in messages


def test_the_eval_command_prints_what_limited_it(tiny_model_dir, capsys):
    from ahazero.cli import main

    code = main(["eval", "configs/default.yaml", "--model", "base", "model.name_or_path=tiny", "--limit", "4",
                 "--batch-size", "4"])
    assert code == 0, capsys.readouterr().err
    out = " ".join(capsys.readouterr().out.split())  # whatever the wrapping
    assert ("decoding: greedy, max_new_tokens=48 (grpo.max_completion_length of the CPU profile), float32, "
            "CPU profile (cpu_overrides)") in out
    assert "**Warning:** 100% of the answers (4 of 4) stopped at max_new_tokens=48" in out
    assert "raise the limit with --max-new-tokens 256 (the GPU recipe's grpo.max_completion_length)" in out


def test_progress_lines_come_at_most_every_interval_and_at_the_end():
    now, lines = [0.0], []
    log = ProgressLog("sampled k=8 (final)", 200, every=30, clock=lambda: now[0], say=lines.append)
    for t in (10, 20, 35, 50, 70, 100, 110):
        now[0] = float(t)
        log.advance(25)
    now[0] = 400.0
    log.advance(25)
    assert lines == ["sampled k=8 (final): 75/200 problems after 35 s, about 58 s left",
                     "sampled k=8 (final): 125/200 problems after 70 s, about 42 s left",
                     "sampled k=8 (final): 150/200 problems after 1.7 min, about 33 s left",
                     "sampled k=8 (final): 200/200 problems after 6.7 min"]


def test_the_summary_at_80_columns_keeps_every_number_whole():
    results = {"model": "runs/default-cpu/model", "tag": "final", "task": "arithmetic", "split": "test", "n": 200,
               "pass@1": 0.095, "pass@1_in_tags": 0.0125, "format_rate": 0.4, "truncation_rate": 0.69,
               "max_new_tokens": 48, "max_new_tokens_from": "grpo.max_completion_length of the CPU profile",
               "dtype": "float32", "profile": "CPU profile (cpu_overrides)",
               "base": {"pass@1": 0.2851, "pass@1_in_tags": 0.0233, "format_rate": 0.5}}
    results["limit_warning"] = limit_warning(results, DecodingOrigin(results["profile"],
                                                                     results["max_new_tokens_from"], 256))
    console = Console(width=80, file=io.StringIO(), markup=False, highlight=False)
    console.print(render_markdown(results))
    text = console.file.getvalue()
    assert max(len(line) for line in text.splitlines()) <= 80
    words = set(text.split())
    for number in ("0.095", "0.013", "0.285", "0.023", "0.400", "0.500", "0.690", "n=200", "max_new_tokens=48",
                   "69%", "(138", "256"):
        assert number in words, number
