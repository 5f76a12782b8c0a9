"""A LoRA stage after a LoRA stage trains on the first stage's result and keeps it in its saved model."""

from __future__ import annotations

import torch

from ahazero.cli import main
from ahazero.models.loading import MERGED_ADAPTER, is_adapter_folder, load_model_and_tokenizer

LORA = "model.lora={r: 8, alpha: 16, dropout: 0.0, target_modules: all-linear}"


def distance(a, b) -> float:
    return sum((p - q).abs().sum().item() for p, q in zip(a.parameters(), b.parameters(), strict=True))


def test_grpo_after_lora_sft_starts_from_and_saves_the_sft_model(tmp_path, tiny_model_dir):
    # SFT moves the adapter far (lr 1e-2); GRPO's rate is ~0, so its model must be the SFT model, not the base
    assert main(["stages", "configs/coldstart.yaml", "model.name_or_path=tiny", "model.dtype=float32", LORA,
                 f"output_root={tmp_path}", "sft.learning_rate=0.01", "grpo.learning_rate=1e-30",
                 "stages.1.eval=false", "stages.2.eval=false"]) == 0
    run = tmp_path / "coldstart-cpu"
    assert is_adapter_folder(run / "sft" / "model")  # a LoRA run from a full model saves its adapter
    assert not is_adapter_folder(run / "grpo" / "model") and (run / "grpo" / "model" / "config.json").is_file()
    base, _ = load_model_and_tokenizer("tiny", dtype="float32")
    sft, _ = load_model_and_tokenizer(str(run / "sft" / "model"), dtype="float32")
    grpo, _ = load_model_and_tokenizer(str(run / "grpo" / "model"), dtype="float32")
    assert getattr(sft, MERGED_ADAPTER) == str(run / "sft" / "model")  # loaded merged, no adapter layers left
    assert not any("lora" in name for name, _ in sft.named_parameters())
    moved = distance(sft, base)
    assert moved > 1.0
    assert distance(grpo, sft) < 1e-3 * moved  # the SFT stage's training is in the GRPO stage's model
    with torch.no_grad():
        ids = torch.tensor([[1, 2, 3, 4]])
        assert torch.allclose(grpo(ids).logits, sft(ids).logits, atol=1e-4)
