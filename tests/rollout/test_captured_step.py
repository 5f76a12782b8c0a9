"""The decode step recorded as a CUDA graph: its 4D mask on CPU, and the recording itself where a GPU exists."""

from __future__ import annotations

import pytest
import torch
from helpers import MIXED_PROMPTS, eos_list, generate_until_eos, left_batch

from ahazero.models.loading import load_model_and_tokenizer
from ahazero.rollout.captured_step import CapturedStep, decode_mask, supports_capture
from ahazero.rollout.graph_sampler import GraphSampler


def test_decode_mask_hides_padding_and_unwritten_positions():
    mask = torch.tensor([[0, 0, 1, 1, 1, 1], [1, 1, 1, 1, 1, 1]])
    got = decode_mask(mask, torch.tensor([3]))
    assert got.shape == (2, 1, 1, 6) and got.dtype == torch.bool
    assert got[:, 0, 0].int().tolist() == [[0, 0, 1, 1, 0, 0], [1, 1, 1, 1, 0, 0]]


def test_unknown_graph_mode_is_refused():
    with pytest.raises(ValueError, match="graph_mode must be one of compile, capture"):
        GraphSampler(graph_mode="cudagraph")


def _inputs(tok, model, device="cpu"):
    return (*left_batch(tok, MIXED_PROMPTS, device), eos_list(model))


@pytest.mark.parametrize("grouped", [True, False])
def test_capture_mode_mask_gives_the_same_tokens(tiny, grouped):
    model, tok = tiny
    ids, mask, eos = _inputs(tok, model)
    assert supports_capture(model)
    kwargs = dict(max_new_tokens=24, eos_token_ids=eos, pad_token_id=tok.pad_token_id, do_sample=False)
    ours = GraphSampler(compile=False, graph_mode="capture", grouped_attention=grouped).generate(model, ids, mask,
                                                                                                 **kwargs)
    assert ours == generate_until_eos(model, tok, ids, mask, eos, 24)


def test_capture_mode_with_compaction_and_shared_prefill_matches(tiny):
    model, tok = tiny
    ids, mask, eos = _inputs(tok, model)
    ids, mask = ids.repeat_interleave(4, dim=0), mask.repeat_interleave(4, dim=0)
    kwargs = dict(max_new_tokens=40, eos_token_ids=eos, pad_token_id=tok.pad_token_id, do_sample=False)
    plain = GraphSampler(compile=False).generate(model, ids, mask, **kwargs)
    fast = GraphSampler(compile=False, graph_mode="capture", share_prefill=True, compact_rows=True,
                        compact_min_rows=1).generate(model, ids, mask, **kwargs)
    assert fast == plain


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA graphs need a GPU")
def test_recorded_graph_matches_eager_decoding_on_gpu(tiny_model_dir):
    model, tok = load_model_and_tokenizer("tiny", dtype="float32")
    model = model.to("cuda").eval()
    ids, mask, eos = _inputs(tok, model, "cuda")
    kwargs = dict(max_new_tokens=40, eos_token_ids=eos, pad_token_id=tok.pad_token_id, do_sample=False)
    eager = GraphSampler(compile=False).generate(model, ids, mask, **kwargs)
    sampler = GraphSampler(compile=True, graph_mode="capture")
    first = sampler.generate(model, ids, mask, **kwargs)
    again = sampler.generate(model, ids, mask, **kwargs)  # replays the recorded graph on a reset cache
    assert first == eager and again == eager
    steps = [s for s in sampler._steps.values() if isinstance(s, CapturedStep)]
    assert steps and len(steps[0].graphs) == 1


@pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA graphs need a GPU")
def test_a_replay_reads_this_calls_eos_and_pad_on_gpu(tiny_model_dir):
    # a recorded graph reads its inputs at fixed addresses: eos and pad of an earlier call (freed since) must
    # never be read by a later call's replay
    model, tok = load_model_and_tokenizer("tiny", dtype="float32")
    model = model.to("cuda").eval()
    ids, mask, eos = _inputs(tok, model, "cuda")
    sampler = GraphSampler(compile=True, graph_mode="capture")
    for stop, pad in ((eos, tok.pad_token_id), ([eos[0], 7], 5), (eos, 3)):
        kwargs = dict(max_new_tokens=40, eos_token_ids=stop, pad_token_id=pad, do_sample=False)
        expected = GraphSampler(compile=False).generate(model, ids, mask, **kwargs)
        torch.cuda.empty_cache()
        junk = torch.full((1 << 20,), 10**9, device="cuda")  # reuses freed blocks with out-of-vocabulary ids
        assert sampler.generate(model, ids, mask, **kwargs) == expected
        del junk


def test_graphs_of_evicted_caches_are_dropped(monkeypatch):
    # recording needs a GPU; the bookkeeping around it does not
    class Graph:
        replays = 0

        def replay(self):
            Graph.replays += 1

    class Cache:
        layers = []

    step = CapturedStep(lambda *args: None)
    monkeypatch.setattr(step, "_record", lambda inputs, cache: (Graph(), [t.clone() for t in inputs], ("out",)))
    args = [torch.zeros(2, 1, dtype=torch.long), torch.zeros(2, 1, dtype=torch.long), torch.zeros(1, dtype=torch.long),
            torch.ones(2, 8, dtype=torch.long), torch.zeros(2, dtype=torch.bool)]
    eos, pad = torch.tensor([2]), torch.tensor(0)
    first, second = Cache(), Cache()
    assert step(*args, first, eos, pad) == ("out",) and step(*args, first, eos, pad) == ("out",)
    assert len(step.graphs) == 1 and Graph.replays == 2
    step(*args, second, eos, pad)
    assert len(step.graphs) == 2
    del first  # evicted from the pool
    step(*args[:3], torch.ones(2, 9, dtype=torch.long), args[4], second, eos, pad)  # a new shape records
    assert len(step.graphs) == 2 and all(ref() is second for ref, *_ in step.graphs.values())
    static = next(iter(step.graphs.values()))[2]
    assert static[5].tolist() == [2] and static[6].item() == 0  # eos and pad are graph inputs
