"""Decode attention without per-head key/value copies: the same attention, switched on only while sampling."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
import torch
from helpers import MIXED_PROMPTS, eos_list, generate_until_eos, left_batch

from ahazero.rollout import grouped_attention as ga
from ahazero.rollout.graph_sampler import GraphSampler


def _repeated_reference(query, key, value, mask, scale):
    """Attention as transformers' sdpa computes it under a mask: every query head gets its own key/value copy."""
    groups = query.shape[1] // key.shape[1]
    key = key.repeat_interleave(groups, dim=1)
    value = value.repeat_interleave(groups, dim=1)
    out = torch.nn.functional.scaled_dot_product_attention(query, key, value, attn_mask=mask, scale=scale)
    return out.transpose(1, 2)


@pytest.mark.parametrize("mask_kind", ["bool", "float", "none"])
def test_grouped_decode_attention_equals_repeated_heads(mask_kind):
    gen = torch.Generator().manual_seed(0)
    batch, heads, kv_heads, length, dim = 3, 14, 2, 11, 8
    query = torch.randn(batch, heads, 1, dim, generator=gen, dtype=torch.float64)
    key = torch.randn(batch, kv_heads, length, dim, generator=gen, dtype=torch.float64)
    value = torch.randn(batch, kv_heads, length, dim, generator=gen, dtype=torch.float64)
    keep = torch.ones(batch, 1, 1, length, dtype=torch.bool)
    keep[0, ..., :4] = False  # left padding
    keep[1, ..., -3:] = False  # positions not written yet
    mask = {"bool": keep, "float": torch.zeros_like(keep, dtype=torch.float64).masked_fill(~keep, -1e9),
            "none": None}[mask_kind]
    module = SimpleNamespace(num_key_value_groups=heads // kv_heads, is_causal=True)
    ours, weights = ga.grouped_decode_attention(module, query, key, value, mask, scaling=0.3)
    assert weights is None and ours.shape == (batch, 1, heads, dim)
    assert torch.allclose(ours, _repeated_reference(query, key, value, mask, 0.3), atol=1e-12)


def test_prompts_and_per_head_masks_go_to_transformers_sdpa(monkeypatch):
    calls = []
    import transformers.integrations.sdpa_attention as sdpa

    monkeypatch.setattr(sdpa, "sdpa_attention_forward", lambda *a, **k: calls.append(a[1].shape) or ("x", None))
    module = SimpleNamespace(num_key_value_groups=2, is_causal=True)
    prompt = torch.zeros(1, 4, 5, 8)
    kv = torch.zeros(1, 2, 5, 8)
    assert ga.grouped_decode_attention(module, prompt, kv, kv, None)[0] == "x"
    per_head = torch.ones(1, 4, 1, 5, dtype=torch.bool)
    assert ga.grouped_decode_attention(module, prompt[:, :, :1], kv, kv, per_head)[0] == "x"
    assert len(calls) == 2


def test_switch_is_scoped_and_restored_on_error():
    cfg = SimpleNamespace(_attn_implementation="sdpa", num_attention_heads=4, num_key_value_heads=2)
    model = SimpleNamespace(config=cfg)
    with pytest.raises(RuntimeError), ga.grouped_decode(model) as switched:
        assert switched and cfg._attn_implementation == ga.ATTENTION_NAME
        raise RuntimeError("sampling failed")
    assert cfg._attn_implementation == "sdpa"
    for other in (SimpleNamespace(_attn_implementation="flash_attention_2", num_attention_heads=4,
                                  num_key_value_heads=2),
                  SimpleNamespace(_attn_implementation="sdpa", num_attention_heads=4, num_key_value_heads=4)):
        with ga.grouped_decode(SimpleNamespace(config=other)) as switched:
            assert not switched
    with ga.grouped_decode(SimpleNamespace()) as switched:  # no config at all
        assert not switched


def test_sampler_uses_it_and_matches_generate(tiny, monkeypatch):
    model, tok = tiny
    assert model.config._attn_implementation == "sdpa" and ga.uses_grouped_heads(model.config)
    seen = []
    real = ga.grouped_decode_attention

    def spy(module, query, *args, **kwargs):
        seen.append(query.shape[2])
        return real(module, query, *args, **kwargs)

    ga._register()
    from transformers.modeling_utils import AttentionInterface

    monkeypatch.setitem(AttentionInterface._global_mapping, ga.ATTENTION_NAME, spy)
    ids, mask = left_batch(tok, MIXED_PROMPTS)
    eos = eos_list(model)
    kwargs = dict(max_new_tokens=20, eos_token_ids=eos, pad_token_id=tok.pad_token_id, do_sample=False)
    grouped = GraphSampler(compile=False).generate(model, ids, mask, **kwargs)
    assert 1 in seen and model.config._attn_implementation == "sdpa"
    seen.clear()
    plain = GraphSampler(compile=False, grouped_attention=False).generate(model, ids, mask, **kwargs)
    assert not seen and grouped == plain
    assert grouped == generate_until_eos(model, tok, ids, mask, eos, 20)
