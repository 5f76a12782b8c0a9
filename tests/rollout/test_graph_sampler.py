"""The fixed-shape sampling loop of the ``graph`` backend agrees with ``model.generate``."""

from __future__ import annotations

import pytest
import torch
from helpers import MIXED_PROMPTS, eos_list, generate_until_eos, left_batch

from ahazero.models.loading import load_model_and_tokenizer
from ahazero.rollout.graph_sampler import GraphSampler, sample_next


def test_greedy_matches_model_generate_with_left_padding(tiny):
    model, tok = tiny
    ids, mask = left_batch(tok, MIXED_PROMPTS)
    eos = eos_list(model)
    ours = GraphSampler(compile=False).generate(model, ids, mask, max_new_tokens=24, eos_token_ids=eos,
                                                pad_token_id=tok.pad_token_id, do_sample=False)
    assert ours == generate_until_eos(model, tok, ids, mask, eos, 24)


def test_cache_is_reused_and_reset_between_calls(tiny):
    model, tok = tiny
    ids, mask = left_batch(tok, ["2 + 2 =", "3 + 5 ="])
    sampler = GraphSampler(compile=False)
    kwargs = dict(max_new_tokens=12, eos_token_ids=eos_list(model), pad_token_id=tok.pad_token_id, do_sample=False)
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
    ids, mask = left_batch(tok, ["4 + 4 =", "9 - 3 ="])
    kwargs = dict(max_new_tokens=10, eos_token_ids=eos_list(model), pad_token_id=tok.pad_token_id, do_sample=False)
    expected = GraphSampler(compile=False).generate(model, ids, mask, **kwargs)

    def broken_compile(fn, **options):
        def run(*args, **kw):
            raise RuntimeError("Cannot find a working triton installation")
        return run

    monkeypatch.setattr(torch, "compile", broken_compile)
    sampler = GraphSampler(compile=True, graph_mode="compile")
    with caplog.at_level("WARNING", logger="ahazero.rollout.graph_sampler"):
        assert sampler.generate(model, ids, mask, **kwargs) == expected
    assert "torch.compile is unavailable here (RuntimeError: Cannot find a working triton" in caplog.text
    assert sampler.compile is False


def test_a_failing_recording_falls_back_to_eager_decoding(tiny, caplog):
    model, tok = tiny
    ids, mask = left_batch(tok, ["4 + 4 =", "9 - 3 ="])
    kwargs = dict(max_new_tokens=10, eos_token_ids=eos_list(model), pad_token_id=tok.pad_token_id, do_sample=False)
    expected = GraphSampler(compile=False).generate(model, ids, mask, **kwargs)
    sampler = GraphSampler(compile=True)  # the default graph_mode, 'capture'; this machine has no CUDA to record on
    with caplog.at_level("WARNING", logger="ahazero.rollout.graph_sampler"):
        assert sampler.generate(model, ids, mask, **kwargs) == expected
    assert "recording the decode step as a CUDA graph failed" in caplog.text and sampler.compile is False


# --- the big-batch options: shared prefill, compacted decode batches, row chunks -----------------------------


@pytest.fixture(scope="module")
def chaotic(tiny_model_dir):
    """The tiny model with larger random weights: its greedy completions vary token by token.

    With every third token id as EOS, rows stop at many different positions (or never), so
    compaction moves rows several times within a short completion.
    """
    model, tok = load_model_and_tokenizer("tiny", dtype="float32")
    torch.manual_seed(0)
    with torch.no_grad():
        for param in model.parameters():
            if param.dim() == 2:
                param.normal_(0, 0.3)
    model.eval()
    eos = [t for t in range(model.config.vocab_size) if t % 3 == 0 and t != tok.pad_token_id]
    return model, tok, eos


PROMPTS = ["1 + 2 =", "What is 17 times 3, step by step?", "x", "42 - 7 = ?", "hello there", "9*9"]


@pytest.mark.parametrize("options", [
    {"share_prefill": True},
    {"compact_rows": True, "compact_min_rows": 1, "check_every": 1},
    {"max_rows": 7},
    {"share_prefill": True, "compact_rows": True, "compact_min_rows": 2, "check_every": 3, "max_rows": 12},
], ids=["share_prefill", "compact_rows", "max_rows", "all"])
def test_fast_paths_greedy_match_model_generate(chaotic, options):
    """Each prompt four times, left-padded, rows ending at different steps: token for token equal."""
    model, tok, eos = chaotic
    ids, mask = left_batch(tok, PROMPTS * 4)
    ref = model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=20, do_sample=False,
                         eos_token_id=eos, pad_token_id=tok.pad_token_id)[:, ids.shape[1]:].tolist()
    expected = [row[: next((i + 1 for i, t in enumerate(row) if t in eos), len(row))] for row in ref]
    assert len({len(row) for row in expected}) >= 4  # the rows really do stop at different steps
    sampler = GraphSampler(compile=False, **options)
    out = sampler.generate(model, ids, mask, max_new_tokens=20, eos_token_ids=eos, pad_token_id=tok.pad_token_id,
                           do_sample=False)
    assert out == expected
    stats = sampler.last_stats
    assert stats["rows"] == 24
    if options.get("share_prefill"):
        assert stats["prefill_rows"] == 6 * (2 if options.get("max_rows") else 1)  # once per prompt (per chunk)
    if options.get("compact_rows"):
        assert stats["compactions"] >= 1 and stats["decode_rows"] < 24 * stats["decode_steps"]
    if options.get("max_rows") == 7:
        assert stats["decode_steps"] > 19  # four chunks of six rows, each decoded on its own


def test_compacted_and_shared_sampling_matches_generate_in_distribution(tiny):
    """Completion lengths: GraphSampler with both options vs model.generate, as far apart as two generate seeds.

    EOS is every token but the most likely first one, so a quarter of the rows stop after one
    token and most within eight: the batch is compacted several times, and the lengths follow
    from the probability of that one token at each step, which a small change of temperature moves.
    """
    model, tok = tiny
    n, steps = 800, 10
    ids, mask = left_batch(tok, ["12 + 7 ="] * n)
    keep = int(model(input_ids=ids[:1], attention_mask=mask[:1]).logits[0, -1].argmax())
    eos = [t for t in range(model.config.vocab_size) if t != keep]

    def lengths(rows):
        return torch.bincount(torch.tensor([len(r) for r in rows]), minlength=steps + 1).float() / n

    def reference(seed):
        torch.manual_seed(seed)
        out = model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=steps, do_sample=True,
                             temperature=0.15, top_k=0, top_p=1.0, eos_token_id=eos,
                             pad_token_id=tok.pad_token_id)[:, ids.shape[1]:].tolist()
        return lengths([r[: next((i + 1 for i, t in enumerate(r) if t in eos), len(r))] for r in out])

    def ours(temperature):
        torch.manual_seed(3)
        sampler = GraphSampler(compile=False, share_prefill=True, compact_rows=True, compact_min_rows=8,
                               check_every=1)
        out = sampler.generate(model, ids, mask, max_new_tokens=steps, eos_token_ids=eos,
                               pad_token_id=tok.pad_token_id, temperature=temperature)
        return lengths(out), sampler.last_stats

    a, b = reference(1), reference(2)
    mine, stats = ours(0.15)
    assert stats["prefill_rows"] == 1 and stats["compactions"] >= 2
    tvd = lambda p, q: 0.5 * (p - q).abs().sum().item()  # noqa: E731
    assert tvd(mine, a) < 1.5 * tvd(a, b) + 0.02
    hot, _ = ours(0.2)  # and the check has power
    assert tvd(hot, a) > 1.5 * tvd(a, b) + 0.02


def test_shared_prefill_first_token_distribution(tiny_model_dir):
    """The existing first-token check, with every row's first token drawn from one shared prefill."""
    model, tok = load_model_and_tokenizer("tiny", dtype="float32")
    model.eval()
    n = 3000
    ids, mask = left_batch(tok, ["12 + 7 ="] * n)
    vocab = model.config.vocab_size

    def reference(seed):
        torch.manual_seed(seed)
        out = model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=1, do_sample=True, temperature=0.15,
                             top_k=0, top_p=1.0, pad_token_id=tok.pad_token_id)
        return torch.bincount(out[:, -1], minlength=vocab).float() / n

    def ours(temperature):
        torch.manual_seed(3)
        sampler = GraphSampler(compile=False, share_prefill=True)
        out = sampler.generate(model, ids, mask, max_new_tokens=1, eos_token_ids=eos_list(model),
                               pad_token_id=tok.pad_token_id, temperature=temperature)
        assert sampler.last_stats["prefill_rows"] == 1
        return torch.bincount(torch.tensor([row[0] for row in out]), minlength=vocab).float() / n

    a, b = reference(1), reference(2)
    tvd = lambda p, q: 0.5 * (p - q).abs().sum().item()  # noqa: E731
    assert tvd(ours(0.15), a) < 1.5 * tvd(a, b) + 0.02
    assert tvd(ours(0.2), a) > 1.5 * tvd(a, b) + 0.02


def test_sliding_window_caches_are_decoded_without_moving_rows(tiny_model_dir, caplog):
    """A cache whose layers this version cannot move: a one-line warning, then the plain path, still exact."""
    from transformers import Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(0)
    config = Qwen2Config(vocab_size=40, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, use_sliding_window=True, sliding_window=4,
                         max_window_layers=1, layer_types=["full_attention", "sliding_attention"])
    model = Qwen2ForCausalLM(config).eval()
    ids = torch.tensor([[0, 5, 6, 7], [3, 4, 5, 6], [0, 5, 6, 7]])
    mask = torch.tensor([[0, 1, 1, 1], [1, 1, 1, 1], [0, 1, 1, 1]])
    sampler = GraphSampler(compile=False, share_prefill=True, compact_rows=True, compact_min_rows=1, check_every=1)
    with caplog.at_level("WARNING", logger="ahazero.rollout.graph_sampler"):
        out = sampler.generate(model, ids, mask, max_new_tokens=6, eos_token_ids=[2], pad_token_id=0,
                               do_sample=False)
    assert "share_prefill and compact_rows need full-attention static cache layers" in caplog.text
    assert sampler.last_stats["prefill_rows"] == 3  # every row prefilled
    ref = GraphSampler(compile=False).generate(model, ids, mask, max_new_tokens=6, eos_token_ids=[2],
                                               pad_token_id=0, do_sample=False)
    assert out == ref


def test_cache_pool_keeps_within_its_count_and_bytes(tiny):
    from ahazero.rollout.static_cache import CachePool, cache_bytes

    model, tok = tiny
    ids, mask = left_batch(tok, ["1 + 1 =", "2 + 2 ="])
    kwargs = dict(eos_token_ids=eos_list(model), pad_token_id=tok.pad_token_id, do_sample=False)
    sampler = GraphSampler(compile=False)
    sampler.pool = CachePool(max_entries=2)
    for new in (4, 5, 6):  # three lengths: three shapes
        sampler.generate(model, ids, mask, max_new_tokens=new, **kwargs)
    assert len(sampler.pool) == 2
    one = cache_bytes(next(iter(sampler.pool._caches.values())))
    sampler.pool = CachePool(budget_bytes=one)  # room for about one cache: the older ones go
    for new in (4, 5, 6):
        sampler.generate(model, ids, mask, max_new_tokens=new, **kwargs)
    assert len(sampler.pool) == 1 and sampler.pool.bytes() > 0
