"""Evaluation's graph-sampler path gives the same greedy completions as ``model.generate``."""

from __future__ import annotations

import pytest

from ahazero.config.generation_schema import GenerationSettings
from ahazero.eval_sampler import graph_completions, uses_graph_sampler
from ahazero.evaluate import EvalSettings, _generate
from ahazero.models.loading import load_model_and_tokenizer


@pytest.fixture(scope="module")
def tiny(tiny_model_dir):
    model, tok = load_model_and_tokenizer("tiny", dtype="float32")
    model.eval()
    return model, tok


def test_only_on_a_gpu_with_auto_or_graph():
    assert uses_graph_sampler("cuda", "auto") and uses_graph_sampler("cuda", "graph")
    assert not uses_graph_sampler("cpu", "graph") and not uses_graph_sampler("cuda", "hf")
    assert not uses_graph_sampler("cuda", "vllm")


def test_greedy_completions_match_generate(tiny):
    model, tok = tiny
    prompts = ["1 + 2 =", "What is 17 times 3, step by step?", "x", "Count: 1, 2, 3,", "Why?"]
    settings = EvalSettings(batch_size=2, max_new_tokens=20)
    ref = _generate(model, tok, prompts, settings, sample=False, progress_label="ref")  # CPU: model.generate
    done = []
    ours = graph_completions(model, tok, prompts, GenerationSettings(prompt_bucket=8), max_new_tokens=20,
                             batch_size=2, advance=done.append)
    assert ours == ref
    assert sum(done) == len(prompts) and len(done) == 3  # 2 + 2 + 1 (the last batch filled up with a repeat)


def test_sampled_completions_have_k_per_prompt(tiny):
    model, tok = tiny
    out = graph_completions(model, tok, ["1 + 2 =", "3 + 4 ="], GenerationSettings(), max_new_tokens=8,
                            batch_size=3, k=2, sample=True)
    assert [len(o) for o in out] == [2, 2]
    assert all(isinstance(text, str) and 0 <= n <= 8 for o in out for text, n in o)
