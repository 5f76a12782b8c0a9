"""A count given on the command line is used or refused, never swapped for the default: `--n 0` is not `--n 8`."""

from __future__ import annotations

import re

import pytest
import yaml
from helpers import REPO, base_config

from ahazero.cli import main

SMOKE = str(REPO / "configs" / "smoke.yaml")


@pytest.fixture
def no_model(monkeypatch):
    """Fail the test if a model is loaded: every refusal here comes before that."""
    import ahazero.models.loading as loading

    def refuse(*args, **kwargs):
        raise AssertionError("a model was loaded")

    monkeypatch.setattr(loading, "load_model_and_tokenizer", refuse)


def run(capsys, *argv) -> tuple[int, str]:
    code = main(list(argv))
    return code, capsys.readouterr().err


@pytest.mark.parametrize(("argv", "message"), [
    (["sample", SMOKE, "--n", "0"], "config error: sample: n (0), batch size (256) and prompts (None) must be at "
                                    "least 1"),
    (["sample", SMOKE, "--n", "-3"], "config error: sample: n (-3)"),
    (["sample", SMOKE, "--batch-size", "0"], "config error: sample: n (8), batch size (0) and prompts (None)"),
    (["sample", SMOKE, "--prompts", "0"], "prompts (0) must be at least 1"),
    (["eval", SMOKE, "--model", "base", "--max-new-tokens", "0"], "eval error: --max-new-tokens must be at least 1 "
                                                                  "(got 0)"),
    (["eval", SMOKE, "--model", "base", "--max-new-tokens", "-1"], "--max-new-tokens must be at least 1 (got -1)"),
    (["eval", SMOKE, "--model", "base", "--batch-size", "0"], "eval error: --batch-size must be at least 1 (got 0)"),
    (["eval", SMOKE, "--model", "base", "--samples", "-2"], "--samples must be 0 (greedy only) or at least 2"),
    (["coldstart", SMOKE, "--n", "0"], "coldstart: n must be between 1 and"),
    (["bench", SMOKE, "--steps", "0"], "config error: --steps must be at least 1 (got 0)"),
    (["bench", SMOKE, "--warmup", "-1"], "config error: --warmup must be at least 0 (got -1)"),
    (["sweep", SMOKE, "--seeds", "0", "--dry-run"], "config error: --seeds must be at least 1 (got 0)"),
    (["sweep", SMOKE, "--parallel", "0", "--dry-run"], "config error: --parallel must be at least 1 (got 0)"),
])
def test_zero_and_negative_counts_are_refused_on_one_line(capsys, no_model, tmp_path, monkeypatch, argv, message):
    monkeypatch.chdir(tmp_path)
    code, err = run(capsys, *argv)
    assert code == 2 and message in err
    assert len(err.strip().splitlines()) == 1, err
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize(("argv", "message"), [
    (["--limit", "0"], "config error: --limit must be at least 1 (got 0)"),
    (["--limit", "-5", "--compare-first-last"], "config error: --limit must be at least 1 (got -5)"),
    (["--max-chars", "-1"], "config error: --max-chars must be at least 0 (got -1)"),
])
def test_traces_counts(capsys, tmp_path, argv, message):
    assert run(capsys, "traces", str(tmp_path), *argv) == (2, message + "\n")


def test_report_examples(capsys, tmp_path):
    assert run(capsys, "report", str(tmp_path), "--examples", "-1") == (
        2, "config error: --examples must be at least 0 (got -1)\n")


def test_a_stages_config_refuses_zero_gpus(capsys, tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(base_config(stages=[{"name": "a", "kind": "grpo"}])))
    assert run(capsys, "train", str(path), "--gpus", "0") == (2, "config error: --gpus must be at least 1 (got 0)\n")


def test_a_count_left_out_gets_its_default(monkeypatch, capsys, tmp_path):
    """eval without --max-new-tokens decodes up to grpo.max_completion_length; with it, exactly that many."""
    import ahazero.evaluate as evaluate

    seen = []

    def fake_evaluate(cfg, *, model, settings, out_dir):
        seen.append(settings.max_new_tokens)
        return {"files": []}

    monkeypatch.setattr(evaluate, "evaluate", fake_evaluate)
    monkeypatch.setattr(evaluate, "render_markdown", lambda results: "")
    monkeypatch.chdir(tmp_path)
    assert main(["eval", SMOKE, "--model", "base"]) == 0
    assert main(["eval", SMOKE, "--model", "base", "--max-new-tokens", "7"]) == 0
    assert seen == [32, 7]  # configs/smoke.yaml: grpo.max_completion_length 32


def test_no_command_swaps_a_given_count_for_its_default():
    """`args.n or 8` turns --n 0 into 8; the commands write `8 if args.n is None else args.n`."""
    pattern = re.compile(r"\b(?:args|spec|settings)\.\w+ or \d")
    offenders = [f"{path.relative_to(REPO)}:{number}: {line.strip()}"
                 for path in sorted((REPO / "src" / "ahazero").rglob("*.py"))
                 for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
                 if pattern.search(line)]
    assert offenders == []
