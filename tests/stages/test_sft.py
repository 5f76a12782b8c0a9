"""``ahazero sft``: loss on the completion only, an ordinary run directory, resume, eval, clear errors."""

from __future__ import annotations

import json

import pytest
from helpers import base_config

from ahazero.config.schema import ConfigError, validate_dict
from ahazero.evaluate import EvalSettings, evaluate
from ahazero.models.loading import load_model_and_tokenizer
from ahazero.observe.rundir import RunDir, RunDirError, read_metrics
from ahazero.stages.samples import SamplesError
from ahazero.stages.sft import build_sft_trainer, check_sft, completion_after_prefill, sft_dataset, train_sft

SFT = {"max_steps": 2, "per_device_train_batch_size": 2, "learning_rate": 1e-4, "save_steps": 1,
       "gradient_checkpointing": False}


def write_samples(path, n=4, **extra):
    lines = [json.dumps({"id": f"p{i}", "problem": f"Compute: {i} + 2", "prefill": "<think>\n",
                         "completion": f"Add: {i} + 2 = {i + 2}\n</think>\n<answer>{i + 2}</answer>", **extra})
             for i in range(n)]
    path.write_text("\n".join(lines) + "\n")
    return path


def sft_cfg(tmp_path, data, **sft):
    return validate_dict(base_config(output_root=str(tmp_path), logging={"report_to": []},
                                     sft={"data": str(data), **SFT, **sft}))


def test_loss_is_on_the_completion_and_its_eos_only(tmp_path, tiny_model_dir):
    cfg = sft_cfg(tmp_path, write_samples(tmp_path / "s.jsonl"))
    trainer = build_sft_trainer(cfg, check_sft(cfg, cuda=False), RunDir(cfg.run_dir))
    tok = trainer.processing_class
    _, raw_tok = load_model_and_tokenizer("tiny")
    example = sft_dataset([json.loads((tmp_path / "s.jsonl").read_text().splitlines()[0])], raw_tok, cfg)[0]
    row = trainer.train_dataset[0]
    prompt_ids = tok(text=example["prompt"])["input_ids"]
    completion_ids = tok(text=example["prompt"] + example["completion"] + tok.eos_token)["input_ids"][len(prompt_ids):]
    n_prompt = len(prompt_ids)
    assert row["input_ids"][:n_prompt] == prompt_ids
    assert row["labels"][:n_prompt] == [-100] * n_prompt  # the prompt (system, problem, "<think>\n") is masked
    assert row["labels"][n_prompt:] == completion_ids == row["input_ids"][n_prompt:]
    assert tok.decode(row["labels"][n_prompt:]).endswith("<answer>2</answer>" + tok.eos_token)


def test_full_loss_when_the_config_asks_for_it(tmp_path, tiny_model_dir):
    cfg = sft_cfg(tmp_path, write_samples(tmp_path / "s.jsonl"), completion_only_loss=False)
    trainer = build_sft_trainer(cfg, check_sft(cfg, cuda=False), RunDir(cfg.run_dir))
    assert -100 not in trainer.train_dataset[0]["labels"]


def test_prompts_are_rendered_for_the_student_and_prefills_reconciled(tmp_path, tiny_model_dir):
    _, tok = load_model_and_tokenizer("tiny")
    record = {"problem": "Compute: 1 + 1", "prefill": "<think>\n", "completion": "1 + 1 = 2</think><answer>2</answer>"}
    r1 = validate_dict(base_config(prompt={"template": "r1_zero"}))
    row = sft_dataset([record], tok, r1)[0]
    assert row["prompt"].endswith("User: Compute: 1 + 1. Assistant: <think>")
    assert row["completion"] == "\n1 + 1 = 2</think><answer>2</answer>"
    no_prefill = validate_dict(base_config(prompt={"prefill_think": False}))
    assert sft_dataset([record], tok, no_prefill)[0]["completion"].startswith("<think>\n1 + 1 = 2")
    assert completion_after_prefill({"prefill": "", "completion": "  <think>\nx"}, "<think>\n") == "x"
    with pytest.raises(SamplesError, match="does not start with the prompt's prefill"):
        completion_after_prefill({"completion": "x</think>"}, "<think>\n")


def test_train_writes_an_ordinary_run_directory_that_eval_and_resume_understand(tmp_path, tiny_model_dir):
    data = write_samples(tmp_path / "s.jsonl")
    run_dir = train_sft(sft_cfg(tmp_path, data, max_steps=1), cuda=False)
    assert (run_dir / "model" / "config.json").is_file() and (run_dir / "model" / "tokenizer.json").is_file()
    assert [r["step"] for r in read_metrics(run_dir / "metrics.jsonl") if "loss" in r] == [1]
    info = json.loads((run_dir / "run.json").read_text())
    assert info["trainer"] == "sft" and info["data"] == str(data)
    assert not (run_dir / "traces").exists()

    with pytest.raises(RunDirError, match="--resume"):
        train_sft(sft_cfg(tmp_path, data), cuda=False)
    run_dir = train_sft(sft_cfg(tmp_path, data), resume=True, cuda=False)
    assert [r["step"] for r in read_metrics(run_dir / "metrics.jsonl") if "loss" in r] == [1, 2]
    assert json.loads((run_dir / "run.json").read_text())["resumed_from_step"] == 1

    results = evaluate(sft_cfg(tmp_path, data), model="final", settings=EvalSettings(limit=2, max_new_tokens=4))
    assert results["tag"] == "final" and results["n"] == 2 and (run_dir / "eval" / "final.json").is_file()
    # the fine-tuned model is a model like any other
    model, _ = load_model_and_tokenizer(str(run_dir / "model"))
    assert type(model).__name__ == "Qwen2ForCausalLM"


@pytest.mark.parametrize(("sft", "samples", "message"), [
    ({"data": None}, None, "sft.data: missing; give a samples file"),
    ({"num_train_epoch": 2}, "ok", "unknown key 'sft.num_train_epoch' (did you mean 'num_train_epochs'"),
    ({"output_dir": "x"}, "ok", "sft.output_dir is set by ahazero"),
    ({"data": "nowhere.jsonl"}, None, "sft.data: samples file not found: nowhere.jsonl"),
    ({}, "rejected", "has no kept examples (4 record(s) marked kept: false)"),
    ({}, "garbage", "s.jsonl:1 is not a JSON object"),
])
def test_mistakes_fail_before_a_model_loads(tmp_path, sft, samples, message):
    path = tmp_path / "s.jsonl"
    if samples == "ok":
        write_samples(path)
    elif samples == "rejected":
        write_samples(path, kept=False)
    elif samples == "garbage":
        path.write_text("prompt,completion\n")
    cfg = validate_dict(base_config(output_root=str(tmp_path), sft={"data": str(path), **sft}))
    with pytest.raises(ConfigError) as err:
        train_sft(cfg, cuda=False)
    assert message in str(err.value)
    assert not (tmp_path / "t").exists()
