"""Length-sorted micro-batches: the same gradient as TRL's random split, with less padding computed."""

from __future__ import annotations

import pytest
import torch
from helpers import base_config

from ahazero.config.schema import validate_dict
from ahazero.training.assemble import build_trainer
from ahazero.training.micro_batches import regroup_by_length, split, trim_padding


@pytest.fixture(scope="module")
def trainer(tiny_model_dir, tmp_path_factory):
    cfg = validate_dict(base_config(output_root=str(tmp_path_factory.mktemp("runs")), logging={"report_to": ["none"]},
                                    grpo={"num_generations": 4, "per_device_train_batch_size": 4,
                                          "gradient_accumulation_steps": 3, "max_steps": 1,
                                          "max_completion_length": 40, "save_strategy": "no"}))
    built = build_trainer(cfg)
    built.model.train()
    built.current_gradient_accumulation_steps = 3
    return built


def step_batch(vocab: int, pad: int, rows: int = 12, prompt: int = 9, width: int = 40) -> dict:
    """A generation batch as TRL returns it: left-padded prompts, completions of 1..width tokens."""
    g = torch.Generator().manual_seed(0)
    prompt_mask = torch.ones(rows, prompt, dtype=torch.long)
    prompt_mask[::3, :3] = 0  # every third prompt is shorter
    lengths = torch.tensor([1, 40, 3, 7, 2, 25, 5, 1, 12, 4, 9, 2])[:rows]
    completion_mask = (torch.arange(width) < lengths[:, None]).long()
    prompt_ids = torch.randint(1, vocab, (rows, prompt), generator=g).masked_fill(prompt_mask == 0, pad)
    completion_ids = torch.randint(1, vocab, (rows, width), generator=g).masked_fill(completion_mask == 0, pad)
    return {"prompt_ids": prompt_ids, "prompt_mask": prompt_mask, "completion_ids": completion_ids,
            "completion_mask": completion_mask, "advantages": torch.randn(rows, generator=g),
            "num_items_in_batch": completion_mask.sum()}


def accumulated_gradient(trainer, micro_batches: list[dict]) -> torch.Tensor:
    trainer.model.zero_grad()
    for batch in micro_batches:
        trainer.compute_loss(trainer.model, batch).backward()
    return torch.cat([p.grad.flatten() for p in trainer.model.parameters() if p.grad is not None])


@pytest.mark.parametrize("loss_type", ["dapo", "grpo", "dr_grpo"])
def test_regrouped_micro_batches_give_the_same_gradient(trainer, loss_type):
    trainer.loss_type = loss_type
    batch = step_batch(trainer.model.config.vocab_size, trainer.processing_class.pad_token_id)
    shuffled = {k: v[torch.randperm(12)] if v.ndim else v for k, v in batch.items()}  # as TRL shuffles
    as_trl = split(shuffled, 3)
    sorted_ = regroup_by_length(as_trl, window=3)
    widths = [b["completion_ids"].shape[1] for b in sorted_]
    assert widths == [40, 7, 2] and [b["completion_ids"].shape[0] for b in sorted_] == [4, 4, 4]
    expected = accumulated_gradient(trainer, as_trl)
    assert torch.allclose(accumulated_gradient(trainer, sorted_), expected, rtol=1e-4, atol=1e-7)


def test_bnpo_would_change_the_gradient(trainer):
    """Why validation refuses update.sort_by_length with loss_type 'bnpo' (and the test above has power)."""
    trainer.loss_type = "bnpo"
    batch = step_batch(trainer.model.config.vocab_size, trainer.processing_class.pad_token_id)
    as_trl = split(batch, 3)
    regrouped = accumulated_gradient(trainer, regroup_by_length(as_trl, window=3))
    assert not torch.allclose(regrouped, accumulated_gradient(trainer, as_trl), rtol=1e-3, atol=1e-6)
    trainer.loss_type = "dapo"


def test_windows_are_regrouped_apart_and_odd_multiples_of_64_avoided():
    batch = step_batch(vocab=50, pad=0, width=40)
    micro = regroup_by_length(split(batch, 4), window=2)  # two optimizer steps of two micro-batches
    first_rows = set(torch.cat([split(batch, 4)[i]["advantages"] for i in (0, 1)]).tolist())
    assert set(torch.cat([micro[0]["advantages"], micro[1]["advantages"]]).tolist()) == first_rows
    out = trim_padding({"prompt_ids": torch.zeros(2, 60, dtype=torch.long), "completion_ids": torch.ones(2, 10),
                        "completion_mask": torch.tensor([[1] * 4 + [0] * 6, [1] * 2 + [0] * 8]),
                        "old_per_token_logps": torch.zeros(2, 10), "advantages": torch.ones(2)})
    assert out["completion_ids"].shape[1] == 5 and out["old_per_token_logps"].shape[1] == 5  # 60 + 4 = 64: one more
    assert out["prompt_ids"].shape[1] == 60 and out["advantages"].shape == (2,)


def test_batches_it_cannot_regroup_are_left_alone(caplog):
    batch = step_batch(vocab=50, pad=0)
    micro = split({**batch, "pixel_values": torch.zeros(30, 3)}, 3)
    with caplog.at_level("WARNING", logger="ahazero.training.micro_batches"):
        out = regroup_by_length(micro, window=3)
    assert all(a is b for a, b in zip(out, micro, strict=True))  # the same micro-batches, untouched
    assert "batches with 'pixel_values' are not regrouped" in caplog.text
    odd = split({**batch, "mystery": torch.zeros(12, 40)}, 3)
    assert [b["completion_ids"].shape[1] for b in regroup_by_length(odd, window=3)] == [40, 40, 40]
