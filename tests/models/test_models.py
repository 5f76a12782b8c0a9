"""Model loading: named tiny model, local folders, hub ids, and GGUF files made trainable."""

from __future__ import annotations

import json

import pytest
import torch
from gguf_fixture import write_tiny_gguf

from ahazero.models.gguf import convert_gguf, gguf_special_token_ids
from ahazero.models.loading import load_model_and_tokenizer, resolve_dtype, resolve_model_path
from ahazero.models.registry import NAMED_MODELS, NamedModel, prepare_named_model


def test_tiny_model_is_deterministic(tmp_path):
    from ahazero.models.tiny import build_tiny_model

    a = build_tiny_model(tmp_path / "a")
    b = build_tiny_model(tmp_path / "b")
    assert (a / "model.safetensors").read_bytes() == (b / "model.safetensors").read_bytes()
    assert (a / "tokenizer.json").read_text() == (b / "tokenizer.json").read_text()


def test_load_named_model_ready_for_grpo(tiny_model_dir):
    model, tok = load_model_and_tokenizer("tiny", dtype="float32")
    assert tok.padding_side == "left" and tok.pad_token is not None
    assert model.dtype == torch.float32
    assert model.generation_config.eos_token_id == tok.convert_tokens_to_ids("<|im_end|>")
    # the same folder loads as a local path
    assert resolve_model_path(str(tiny_model_dir)) == str(tiny_model_dir)


def test_hub_ids_pass_through_and_bad_paths_fail(tmp_path):
    assert resolve_model_path("Qwen/Qwen2.5-0.5B-Instruct") == "Qwen/Qwen2.5-0.5B-Instruct"
    with pytest.raises(FileNotFoundError, match="GGUF file not found"):
        resolve_model_path(str(tmp_path / "missing.gguf"))
    with pytest.raises(FileNotFoundError, match="not found"):
        resolve_model_path("./no/such/model")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match="no config.json"):
        resolve_model_path(str(tmp_path / "empty"))


def test_resolve_dtype():
    assert resolve_dtype("bfloat16") is torch.bfloat16
    assert resolve_dtype("auto") is torch.float32  # no GPU here
    with pytest.raises(ValueError, match="valid choices"):
        resolve_dtype("int4")


def test_failed_named_build_leaves_nothing_behind(monkeypatch, _offline_cache):
    def broken(target):
        (target / "partial.bin").write_bytes(b"x")
        raise RuntimeError("disk full")

    monkeypatch.setitem(NAMED_MODELS, "broken", NamedModel(description="x", build=broken))
    with pytest.raises(RuntimeError, match="disk full"):
        prepare_named_model("broken")
    leftovers = [p.name for p in (_offline_cache / "models").iterdir() if "broken" in p.name]
    assert leftovers == []
    with pytest.raises(ValueError, match="valid choices: .*tiny"):
        prepare_named_model("nope")


def test_gguf_file_becomes_a_trainable_model(tiny_model_dir, tmp_path):
    gguf_path = write_tiny_gguf(tiny_model_dir, tmp_path / "tiny-q.gguf")
    assert gguf_special_token_ids(gguf_path) == {"eos": 2, "bos": 0, "pad": 0}

    out = convert_gguf(gguf_path, out_root=tmp_path / "converted")
    assert convert_gguf(gguf_path, out_root=tmp_path / "converted") == out  # cached by content hash
    config = json.loads((out / "config.json").read_text())
    assert "quantization_config" not in config
    assert config["eos_token_id"] == 2

    from transformers import AutoModelForCausalLM, AutoTokenizer

    ref = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    got = AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32)
    tok = AutoTokenizer.from_pretrained(out)
    assert tok.eos_token == "<|im_end|>"
    ids = torch.tensor([tok("Compute: 12 + 3")["input_ids"]])
    assert torch.allclose(ref(ids).logits, got(ids).logits, atol=0.05)  # bf16 storage

    # trainable: one optimizer step changes the weights and the model saves again
    got.train()
    loss = got(ids, labels=ids).loss
    loss.backward()
    torch.optim.SGD(got.parameters(), lr=0.1).step()
    got.save_pretrained(tmp_path / "resaved")
    assert (tmp_path / "resaved" / "model.safetensors").is_file()


def test_gguf_path_in_config_resolves(tiny_model_dir, tmp_path):
    gguf_path = write_tiny_gguf(tiny_model_dir, tmp_path / "m.gguf")
    model, tok = load_model_and_tokenizer(str(gguf_path), dtype="float32")
    assert type(model).__name__ == "Qwen2ForCausalLM" and tok.eos_token == "<|im_end|>"
