"""The commands as a careless user types them: clear one-line errors, before any model loads."""

from __future__ import annotations

import json

import pytest
import yaml
from helpers import REPO, base_config

from ahazero.cli import main


def write_config(tmp_path, **changes):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(base_config(output_root=str(tmp_path / "runs"), logging={"report_to": []},
                                               **changes)))
    return str(path)


@pytest.mark.parametrize(("argv", "message"), [
    (["sample", "{cfg}", "--from-traces", "runs/x", "--n", "4"], "--n: not with --from-traces"),
    (["sample", "{cfg}", "--steps", "3:5"], "--steps: only with --from-traces"),
    (["sample", "{cfg}", "--split", "dev"], "sample: unknown split 'dev'; valid choices: train, test"),
    (["sample", "{cfg}", "--max-per-prompt", "0"], "max_per_prompt must be at least 1"),
    (["sample", "{cfg}", "--model", "final"], "--model final: "),
    (["sample", "{cfg}", "rewards.0.name=think_format", "rewards.1.name=language_consistency"],
     "needs a correctness reward"),
    (["sft", "{cfg}"], "sft.data: missing"),
    (["coldstart", "{cfg}", "--n", "0"], "coldstart: n must be between 1 and the 32 train problems"),
    (["stages", "{cfg}"], "stages: the config has no stages"),
])
def test_mistakes_exit_2_with_the_reason(tmp_path, capsys, argv, message):
    cfg = write_config(tmp_path)
    assert main([a.replace("{cfg}", cfg) for a in argv]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()


def test_a_stages_config_says_which_command_runs_it(tmp_path, capsys):
    cfg = write_config(tmp_path, stages=[{"name": "a", "kind": "grpo"}], sft={"data": "x.jsonl"})
    assert main(["sft", cfg]) == 2
    assert "this config has stages; `ahazero sft` runs one step: use `ahazero stages CONFIG`" in capsys.readouterr().err
    assert main(["train", cfg, "--gpus", "2"]) == 2
    assert "--gpus / --num-machines: a stages config runs in one process" in capsys.readouterr().err
    assert main(["stages", cfg, "--stop-after", "b"]) == 2
    assert "--stop-after: no stage 'b'; the stages are: a" in capsys.readouterr().err


def test_check_checks_every_stage(tmp_path, capsys):
    assert main(["check", str(REPO / "configs" / "coldstart.yaml"), "--device", "cpu"]) == 0
    bad = ["check", str(REPO / "configs" / "coldstart.yaml"), "--device", "cpu", "stages.2.overrides={grpo.beta: x}"]
    assert main(bad) == 2
    assert "stages.2 (grpo): grpo.beta: expected float, got 'x'" in capsys.readouterr().err


def test_sample_command_writes_the_files_and_says_what_it_kept(tmp_path, capsys, tiny_model_dir):
    cfg = write_config(tmp_path, grpo={"max_completion_length": 4})
    out = tmp_path / "s.jsonl"
    assert main(["sample", cfg, "--model", "base", "--n", "2", "--prompts", "3", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "of 6 completions" in printed and "rejected:" in printed
    summary = json.loads((tmp_path / "s.summary.json").read_text())
    assert summary["sampled"] == 6 and summary["prompts"] == 3 and summary["model"] == "tiny"
    assert len((tmp_path / "s.rejected.jsonl").read_text().splitlines()) + summary["kept"] == 6


def test_sft_command_on_any_config_with_the_data_given_on_the_command_line(tmp_path, capsys, tiny_model_dir):
    data = tmp_path / "cold.jsonl"
    assert main(["coldstart", write_config(tmp_path), "--n", "4", "--out", str(data)]) == 0
    cfg = write_config(tmp_path)  # no sft section: TRL's SFTConfig defaults apart from these overrides
    argv = ["sft", cfg, f"sft.data={data}", "sft.max_steps=1", "sft.per_device_train_batch_size=2",
            "sft.gradient_checkpointing=false", "name=cold-sft"]
    assert main(argv) == 0
    assert "run directory:" in capsys.readouterr().out
    assert (tmp_path / "runs" / "cold-sft" / "model" / "config.json").is_file()
