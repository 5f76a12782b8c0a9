"""The update's log-probs: never from full logits, and packed micro-batches exact against the padded path.

The reference is the textbook computation TRL's fused LM head replaces: the model's full
``[rows, positions, vocabulary]`` logits, ``selective_log_softmax`` and ``entropy_from_logits``.
"""

from __future__ import annotations

import pytest
import torch
from helpers import base_config, loss_batch
from trl.trainer.utils import entropy_from_logits, selective_log_softmax

from ahazero.config.schema import validate_dict
from ahazero.training.assemble import build_trainer
from ahazero.training.micro_batches import regroup_by_prompt, split
from ahazero.training.packing import pack_rows

#: 3 prompts (lengths 9, 6, 3 under left padding) x 4 completions; the second prompt's group is
#: masked out of the loss (a dropped group), one completion is a single token, one fills the width.
LENGTHS = [1, 40, 3, 7, 0, 0, 0, 0, 12, 4, 9, 2]
PROMPTS = [9, 6, 3]


def make_trainer(tmp_path_factory, **grpo):
    cfg = validate_dict(base_config(output_root=str(tmp_path_factory.mktemp("runs")), logging={"report_to": ["none"]},
                                    grpo={"num_generations": 4, "per_device_train_batch_size": 4,
                                          "gradient_accumulation_steps": 3, "max_steps": 1,
                                          "max_completion_length": 40, "save_strategy": "no",
                                          "gradient_checkpointing": False, **grpo}))
    built = build_trainer(cfg)
    built.model.train()
    built.current_gradient_accumulation_steps = 3
    return built


@pytest.fixture(scope="module")
def trainer(tiny_model_dir, tmp_path_factory):
    return make_trainer(tmp_path_factory)


def batch_for(trainer, **changes):
    kwargs = {"completion_lengths": LENGTHS, "prompt_lengths": PROMPTS, "generations": 4, **changes}
    return loss_batch(trainer.model.config.vocab_size, trainer.processing_class.pad_token_id, **kwargs)


def full_logits_pass(trainer):
    """TRL's log-prob pass computed from the full logits (what the fused LM head must equal)."""

    def run(model, input_ids, attention_mask, logits_to_keep, batch_size=None, compute_entropy=False, **_):
        logits = model(input_ids=input_ids, attention_mask=attention_mask).logits  # (B, L, V): the full tensor
        logits = logits[:, -logits_to_keep - 1:-1] / trainer.temperature
        mask = attention_mask[:, -logits_to_keep:]
        logps = selective_log_softmax(logits, input_ids[:, -logits_to_keep:]) * mask
        return logps, entropy_from_logits(logits) * mask if compute_entropy else None, None

    return run


def log_probs(trainer, batch, *, packing, share_prompts=False):
    trainer.packing, trainer.share_prompts = packing, share_prompts
    ids = torch.cat([batch["prompt_ids"], batch["completion_ids"]], dim=1)
    mask = torch.cat([batch["prompt_mask"], batch["completion_mask"]], dim=1)
    with torch.no_grad():
        logps, entropy, _ = trainer._get_per_token_logps_and_entropies(
            trainer.model, ids, mask, batch["completion_ids"].shape[1], compute_entropy=True)
    trainer.packing = trainer.share_prompts = False
    return logps, entropy


def gradient(trainer, micro_batches, *, packing=False, share_prompts=False, reference=False):
    trainer.packing, trainer.share_prompts = packing, share_prompts
    if reference:
        trainer._get_per_token_logps_and_entropies = full_logits_pass(trainer)
    trainer.model.zero_grad()
    try:
        for batch in micro_batches:
            trainer.compute_loss(trainer.model, batch).backward()
            trainer._attention_back()  # as training_step does after the backward
    finally:
        trainer.__dict__.pop("_get_per_token_logps_and_entropies", None)
        trainer.packing = trainer.share_prompts = False
    return torch.cat([p.grad.flatten() for p in trainer.model.parameters() if p.grad is not None])


@pytest.mark.parametrize("share_prompts", [False, True])
def test_packed_log_probs_equal_the_padded_pass_and_the_full_logits(trainer, share_prompts):
    batch = batch_for(trainer)
    mask = batch["completion_mask"].bool()
    reference = full_logits_pass(trainer)(
        trainer.model, torch.cat([batch["prompt_ids"], batch["completion_ids"]], 1),
        torch.cat([batch["prompt_mask"], batch["completion_mask"]], 1), 40, compute_entropy=True)
    padded = log_probs(trainer, batch, packing=False)
    packed = log_probs(trainer, batch, packing=True, share_prompts=share_prompts)
    for ours in (padded, packed):
        assert torch.allclose(ours[0][mask], reference[0][mask], rtol=1e-5, atol=1e-5)
        assert torch.allclose(ours[1][mask], reference[1][mask], rtol=1e-5, atol=1e-5)
        assert ours[0][~mask].abs().max() == 0  # positions outside the loss are 0, as TRL leaves them
    assert torch.allclose(packed[0], padded[0], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("loss_type", ["dapo", "grpo", "dr_grpo"])
def test_the_loss_gradient_is_the_same_padded_packed_and_from_full_logits(trainer, loss_type):
    trainer.loss_type = loss_type
    batch = batch_for(trainer)
    shuffled = {k: v[torch.randperm(12, generator=torch.Generator().manual_seed(1))] if v.ndim else v
                for k, v in batch.items()}
    as_trl = split(shuffled, 3)  # TRL's random micro-batches
    reference = gradient(trainer, as_trl, reference=True)
    assert torch.allclose(gradient(trainer, as_trl), reference, rtol=1e-4, atol=1e-6)
    assert torch.allclose(gradient(trainer, as_trl, packing=True), reference, rtol=1e-4, atol=1e-6)
    by_prompt = regroup_by_prompt(as_trl, window=3)
    assert [len(set(b["prompt_ids"][:, -1].tolist())) for b in by_prompt] == [1, 1, 1]  # one prompt each
    shared = gradient(trainer, by_prompt, packing=True, share_prompts=True)
    assert torch.allclose(shared, reference, rtol=1e-4, atol=1e-6)
    trainer.loss_type = "dapo"


@pytest.mark.parametrize("setting", ["lora", "gradient_checkpointing", "cast_lm_head_to_fp32"])
def test_no_setting_builds_the_full_logits_and_packing_stays_exact(tmp_path_factory, tiny_model_dir, setting):
    if setting == "lora":
        from ahazero.config.schema import apply_overrides
        from ahazero.config.validate import check_config

        cfg = validate_dict(base_config(output_root=str(tmp_path_factory.mktemp("runs")),
                                        logging={"report_to": ["none"]},
                                        model={"name_or_path": "tiny", "dtype": "float32",
                                               "lora": {"r": 4, "alpha": 8, "dropout": 0.0}},
                                        grpo={"num_generations": 4, "per_device_train_batch_size": 4,
                                              "gradient_accumulation_steps": 3, "max_steps": 1,
                                              "max_completion_length": 40, "save_strategy": "no",
                                              "gradient_checkpointing": False}))
        check_config(apply_overrides(cfg, {}))
        built = build_trainer(cfg)
        built.model.train()
        built.current_gradient_accumulation_steps = 3
    else:
        built = make_trainer(tmp_path_factory, **{setting: True})
    if setting == "gradient_checkpointing":  # what Trainer.train() turns on
        enable = getattr(built.model, "activation_checkpointing_enable", built.model.gradient_checkpointing_enable)
        enable({"use_reentrant": False})
        assert all(layer.gradient_checkpointing for layer in built.model.model.layers)
    calls = []
    head = built.model.get_output_embeddings()
    handle = head.register_forward_hook(lambda *args: calls.append(1))
    try:
        micro = regroup_by_prompt(split(batch_for(built), 3), window=3)
        padded = gradient(built, micro)
        packed = gradient(built, micro, packing=True, share_prompts=True)
    finally:
        handle.remove()
    assert calls == []  # the LM head's module never ran: no [tokens, vocabulary] logits
    assert torch.allclose(packed, padded, rtol=1e-4, atol=1e-6)
    assert built.model.config._attn_implementation == "sdpa"  # switched back after each backward


def test_a_packed_row_holds_each_prompt_once_at_the_padded_positions():
    ids = torch.tensor([[0, 5, 6, 7, 8, 0],    # prompt [5, 6] (columns 1-2), completion [7, 8]
                        [0, 5, 6, 9, 0, 0],    # the same prompt, completion [9]
                        [4, 5, 6, 0, 0, 0],    # a longer prompt, no completion: not scored
                        [0, 0, 3, 1, 2, 0]])   # prompt [3], completion [1, 2]
    mask = (ids != 0).long()
    mask[2] = torch.tensor([1, 1, 1, 0, 0, 0])
    shared = pack_rows(ids, mask, completion_width=3, share_prompts=True)
    assert shared.input_ids.tolist() == [[5, 6, 7, 8, 6, 9, 3, 1, 2]]
    assert shared.position_ids.tolist() == [[1, 2, 3, 4, 2, 3, 2, 3, 4]]
    assert shared.shift_labels.tolist() == [[-100, 7, 8, -100, 9, -100, 1, 2, -100]]
    assert shared.counts["scored_rows"] == 3 and shared.counts["prompt_groups"] == 2
    own = pack_rows(ids, mask, completion_width=3)
    assert own.input_ids.tolist() == [[5, 6, 7, 8, 5, 6, 9, 3, 1, 2]]  # each row with its own prompt
    logps = torch.arange(9.0)[None]
    assert shared.rows == 4 and torch.equal(
        logps[0].index_select(0, shared.unpack_index).view(4, 3),
        torch.tensor([[1.0, 2.0, 8.0], [4.0, 8.0, 8.0], [8.0, 8.0, 8.0], [6.0, 7.0, 8.0]]))  # 8: a label-less token
    holes = mask.clone()
    holes[0, 4] = 0
    holes[0, 5] = 1
    with pytest.raises(ValueError, match="one left-padded prompt followed by one right-padded completion"):
        pack_rows(ids, holes, completion_width=3)


def test_grouping_by_prompt_keeps_each_window_and_micro_batch_size():
    batch = loss_batch(50, 0, completion_lengths=[3, 5, 2, 4, 1, 6, 7, 2], prompt_lengths=[4, 2], generations=4)
    shuffled = {k: v[torch.tensor([0, 4, 1, 5, 2, 6, 3, 7])] if v.ndim else v for k, v in batch.items()}
    micro = regroup_by_prompt(split(shuffled, 4), window=2)  # two optimizer steps of two micro-batches
    assert [b["completion_ids"].shape[0] for b in micro] == [2, 2, 2, 2]
    first = torch.cat([micro[0]["advantages"], micro[1]["advantages"]])
    assert sorted(first.tolist()) == sorted(torch.cat([shuffled["advantages"][:4]]).tolist())  # the same rows
    assert [len(set(b["prompt_mask"].sum(1).tolist())) for b in micro] == [1, 1, 1, 1]  # one prompt each
