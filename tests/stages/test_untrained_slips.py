"""``train_on_slips: false``: a reflective cold start's slipped lines are read by SFT but left out of its loss."""

from __future__ import annotations

import json

import pytest
from helpers import base_config

from ahazero.cli import main
from ahazero.config.schema import ConfigError, validate_dict
from ahazero.config.stage_schema import StageSpec
from ahazero.models.loading import load_model_and_tokenizer
from ahazero.observe.rundir import RunDir
from ahazero.stages.coldstart import coldstart, coldstart_request
from ahazero.stages.samples import SamplesError
from ahazero.stages.sft import build_sft_trainer, check_sft, load_sft_records, sft_dataset
from ahazero.stages.sft_masks import UNTRAINED_SPANS

SFT = {"max_steps": 1, "per_device_train_batch_size": 2, "learning_rate": 1e-4, "gradient_checkpointing": False}


def arithmetic_cfg(tmp_path, name="cs", **extra):
    return validate_dict(base_config(
        name=name, output_root=str(tmp_path), logging={"report_to": []},
        task={"name": "arithmetic", "num_train": 40, "num_test": 2, "min_terms": 2, "max_terms": 3, "max_value": 99},
        rewards=[{"name": "accuracy"}, {"name": "think_format", "require_answer_tags": True}], **extra))


def reflective_set(tmp_path, train_on_slips, name="cs"):
    request = coldstart_request(n=20, style="reflective", slip_fraction=0.5, train_on_slips=train_on_slips)
    summary = coldstart(arithmetic_cfg(tmp_path, name), request)
    return summary, [json.loads(line) for line in open(summary["files"][0])]


def test_each_slipped_record_marks_its_slipped_line_and_nothing_else(tmp_path):
    summary, records = reflective_set(tmp_path, train_on_slips=False)
    assert summary["coldstart"]["train_on_slips"] is False
    slipped = [r for r in records if r["slip"]]
    assert len(slipped) == summary["coldstart"]["slipped"] == 10
    assert all(UNTRAINED_SPANS not in r for r in records if not r["slip"])
    for record in slipped:
        [[start, end]] = record[UNTRAINED_SPANS]
        line = record["completion"][start:end]
        assert line.startswith("Step ") and "\n" not in line  # one whole step line
        assert record["completion"][end] == "\n" and record["completion"][start - 1] == "\n"
        wrong = line.rsplit("= ", 1)[1]
        assert f"not {wrong}. Let me redo it." in record["completion"]  # the line the check catches
    _, default = reflective_set(tmp_path, train_on_slips=None, name="cs-default")
    assert any(r["slip"] for r in default) and all(UNTRAINED_SPANS not in r for r in default)


def test_sft_leaves_the_slipped_line_out_of_the_loss_and_trains_the_catch(tmp_path, tiny_model_dir):
    _, records = reflective_set(tmp_path, train_on_slips=False)
    cfg = arithmetic_cfg(tmp_path, "student", sft={"data": str(tmp_path / "cs" / "coldstart.jsonl"), **SFT})
    _, tok = load_model_and_tokenizer("tiny")
    rows = sft_dataset(records, tok, cfg)
    plain = sft_dataset([{k: v for k, v in r.items() if k != UNTRAINED_SPANS} for r in records], tok, cfg)
    for record, row, text_row in zip(records, rows, plain):
        full = text_row["prompt"] + text_row["completion"]
        assert tok.decode(row["input_ids"]) == full + tok.eos_token  # the same text, tokenized whole
        trained = tok.decode([t for t, label in zip(row["input_ids"], row["labels"]) if label != -100])
        assert text_row["prompt"].split("<|im_start|>user")[-1][:20] not in trained  # the prompt is masked
        assert trained.endswith(f"<answer>{record['answer']}</answer>" + tok.eos_token)
        if record["slip"]:
            [[start, end]] = record[UNTRAINED_SPANS]
            slip_line = record["completion"][start:end]
            assert slip_line not in trained
            assert "Let me redo it." in trained and "but " in trained  # the check and the catch are trained
        else:
            assert trained == text_row["completion"] + tok.eos_token
    trainer = build_sft_trainer(cfg, check_sft(cfg, cuda=False), RunDir(cfg.run_dir))
    first_slipped = next(i for i, r in enumerate(records) if r["slip"])
    assert trainer.train_dataset[first_slipped]["labels"] == rows[first_slipped]["labels"]  # used as given
    trainer.train()


def test_spans_follow_a_prefill_cut_and_full_loss(tmp_path, tiny_model_dir):
    _, tok = load_model_and_tokenizer("tiny")
    record = {"problem": "Compute: 2 + 3", "prefill": "", "completion": "<think>\nStep 1: 2 + 3 = 6\nWait, 5."
              "\n</think>\n<answer>5</answer>", UNTRAINED_SPANS: [[8, 25]]}
    cfg = validate_dict(base_config(sft={"completion_only_loss": False}))
    row = sft_dataset([record], tok, cfg)[0]  # the prompt ends in "<think>\n": the completion starts after it
    hidden = tok.decode([t for t, label in zip(row["input_ids"], row["labels"]) if label == -100])
    assert hidden.strip() == "Step 1: 2 + 3 = 6"  # only the span: completion_only_loss false trains the prompt


@pytest.mark.parametrize(("spans", "message"), [
    ([[0, 999]], "is not inside its"),
    ([[5, 5]], "is not inside its"),
    ("0-5", "must be a list of [start, end] pairs"),
    ([[0, 2.5]], "each entry is [start, end]"),
])
def test_bad_spans_fail_before_a_model_loads(tmp_path, spans, message):
    path = tmp_path / "s.jsonl"
    path.write_text(json.dumps({"problem": "Compute: 1 + 1", "prefill": "<think>\n",
                                "completion": "1 + 1 = 2</think><answer>2</answer>", UNTRAINED_SPANS: spans}) + "\n")
    with pytest.raises(SamplesError) as err:
        load_sft_records(path)
    assert "kept record 1: untrained_spans" in str(err.value) and message in str(err.value)
    cfg = validate_dict(base_config(output_root=str(tmp_path), sft={"data": str(path)}))
    with pytest.raises(ConfigError, match="untrained_spans"):
        check_sft(cfg, cuda=False)


def test_train_on_slips_is_a_reflective_option_of_a_stage_and_of_the_command(tmp_path, capsys):
    with pytest.raises(ValueError, match="'train_on_slips' applies only to style 'reflective'"):
        StageSpec(name="c", kind="coldstart", style="plain", train_on_slips=False)
    with pytest.raises(ValueError, match="'train_on_slips' does not apply to a sft stage"):
        StageSpec(name="s", kind="sft", train_on_slips=False)
    with pytest.raises(ConfigError, match="'train_on_slips' applies only to style 'reflective'"):
        coldstart_request(style="plain", train_on_slips=False)
    out = tmp_path / "set.jsonl"
    assert main(["coldstart", "configs/aha-reflect.yaml", "--n", "40", "--no-train-on-slips", "--out", str(out),
                 f"output_root={tmp_path}"]) == 0
    assert "slipped lines left out of SFT's loss" in capsys.readouterr().out
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert sum(UNTRAINED_SPANS in r for r in records) == sum(bool(r["slip"]) for r in records) > 0
