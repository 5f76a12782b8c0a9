"""The fixed-shape sampling loop of the ``graph`` backend agrees with ``model.generate``."""

from __future__ import annotations

import pytest
import torch

from ahazero.models.loading import load_model_and_tokenizer
from ahazero.rollout.graph_sampler import GraphSampler, sample_next


@pytest.fixture(scope="module")
def tiny(tiny_model_dir):
    model, tok = load_model_and_tokenizer("tiny", dtype="float32")
    model.eval()
    return model, tok


def _batch(tok, texts):
    enc = tok(texts, return_tensors="pt", padding=True, padding_side="left")
    return enc["input_ids"], enc["attention_mask"]


def _eos(tok, model):
    eos = model.generation_config.eos_token_id
    return list(eos) if isinstance(eos, list | tuple) else [eos]


def test_greedy_matches_model_generate_with_left_padding(tiny):
    model, tok = tiny
    ids, mask = _batch(tok, ["1 + 2 =", "What is 17 times 3, step by step?", "x"])
    eos = _eos(tok, model)
    ours = GraphSampler(compile=False).generate(model, ids, mask, max_new_tokens=24, eos_token_ids=eos,
                                                pad_token_id=tok.pad_token_id, do_sample=False)
    ref = model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=24, do_sample=False,
                         eos_token_id=eos, pad_token_id=tok.pad_token_id)[:, ids.shape[1]:]
    for row, ref_row in zip(ours, ref.tolist()):
        cut = next((i + 1 for i, t in enumerate(ref_row) if t in eos), len(ref_row))
        assert row == ref_row[:cut]


def test_cache_is_reused_and_reset_between_calls(tiny):
    model, tok = tiny
    ids, mask = _batch(tok, ["2 + 2 =", "3 + 5 ="])
    sampler = GraphSampler(compile=False)
    kwargs = dict(max_new_tokens=12, eos_token_ids=_eos(tok, model), pad_token_id=tok.pad_token_id, do_sample=False)
    first = sampler.generate(model, ids, mask, **kwargs)
    second = sampler.generate(model, ids, mask, **kwargs)
    assert first == second and len(sampler.pool) == 1


def test_rows_stop_at_their_first_eos():
    # a fake model: row 0 says 7 until cache position 4, row 1 until 5, then EOS (2) forever
    class Fake(torch.nn.Module):
        config = None
        calls = 0

        def forward(self, input_ids, **kwargs):
            Fake.calls += 1
            batch, n = input_ids.shape
            logits = torch.zeros(batch, n, 10)
            pos = int(kwargs["cache_position"][-1])
            for row, stop in enumerate((4, 5)):
                logits[row, :, 7 if pos < stop else 2] = 10.0
            return type("Out", (), {"logits": logits})()

    sampler = GraphSampler(compile=False, check_every=2)
    sampler.pool.get = lambda model, rows, length, reset=True: None
    ids = torch.ones(2, 3, dtype=torch.long)
    out = sampler.generate(Fake(), ids, torch.ones_like(ids), max_new_tokens=10, eos_token_ids=[2], pad_token_id=0,
                           do_sample=False)
    assert out == [[7, 7, 2], [7, 7, 7, 2]]
    assert Fake.calls < 10  # the loop ended once every row had stopped


def test_sampling_follows_the_softmax_and_filters():
    torch.manual_seed(0)
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.2]])).repeat(20000, 1)
    counts = torch.bincount(sample_next(logits), minlength=3).float() / 20000
    assert torch.allclose(counts, torch.tensor([0.5, 0.3, 0.2]), atol=0.02)
    assert set(sample_next(logits, top_k=2).tolist()) == {0, 1}
    assert set(sample_next(logits, top_p=0.6).tolist()) == {0, 1}  # 0.5 alone does not reach 0.6
    assert set(sample_next(logits, top_p=0.4).tolist()) == {0}
    cold = torch.bincount(sample_next(logits, temperature=0.1), minlength=3).float() / 20000
    assert cold[0] > 0.95


def test_a_failing_compile_falls_back_to_eager_decoding(tiny, monkeypatch, caplog):
    model, tok = tiny
    ids, mask = _batch(tok, ["4 + 4 =", "9 - 3 ="])
    kwargs = dict(max_new_tokens=10, eos_token_ids=_eos(tok, model), pad_token_id=tok.pad_token_id, do_sample=False)
    expected = GraphSampler(compile=False).generate(model, ids, mask, **kwargs)

    def broken_compile(fn, **options):
        def run(*args, **kw):
            raise RuntimeError("Cannot find a working triton installation")
        return run

    monkeypatch.setattr(torch, "compile", broken_compile)
    sampler = GraphSampler(compile=True)
    with caplog.at_level("WARNING", logger="ahazero.rollout.graph_sampler"):
        assert sampler.generate(model, ids, mask, **kwargs) == expected
    assert "torch.compile is unavailable here (RuntimeError: Cannot find a working triton" in caplog.text
    assert sampler.compile is False
