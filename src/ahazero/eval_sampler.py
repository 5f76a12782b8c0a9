"""Evaluation's completions from the graph sampler, on a GPU, instead of ``model.generate``.

``ahazero eval`` decodes hundreds to thousands of held-out problems; with transformers'
``generate`` a GSM8K test split took minutes. On a GPU, when the config's generation backend
is ``auto`` or ``graph``, :func:`graph_completions` runs the same fixed-shape sampler the
training rollouts use (greedy decoding gives the same tokens as ``generate``; the tests
check that token for token), with the config's ``generation`` settings. Every batch has the
same number of rows (the last one is filled up with repeats that are thrown away), so a
compiled or recorded decode step is reused.

Example:
    >>> graph_completions(model, tok, ["1 + 1 ="], cfg.generation, max_new_tokens=32,   # doctest: +SKIP
    ...                   batch_size=64)
    [[('<think>...', 12)]]
    >>> uses_graph_sampler("cpu", "auto"), uses_graph_sampler("cuda", "hf")
    (False, False)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

__all__ = ["graph_completions", "uses_graph_sampler"]


def uses_graph_sampler(device_type: str, backend: str) -> bool:
    """Whether evaluation decodes with the graph sampler: on a GPU, with backend ``auto`` or ``graph``.

    Example:
        >>> uses_graph_sampler("cuda", "auto"), uses_graph_sampler("cuda", "graph")
        (True, True)
    """
    return device_type == "cuda" and backend in ("auto", "graph")


def graph_completions(model: Any, tokenizer: Any, prompts: Sequence[str], generation: Any, *, max_new_tokens: int,
                      batch_size: int, k: int = 1, sample: bool = False, temperature: float = 1.0,
                      top_p: float = 1.0, advance: Callable[[int], None] | None = None) -> list[list[tuple[str, int]]]:
    """``k`` completions per prompt as ``(text, tokens before the EOS)``, from the graph sampler.

    ``generation`` is the config's ``generation`` section (prompt bucket and sampler options);
    ``advance(n)`` is called after each batch with the number of prompts it finished.
    """
    from ahazero.rollout.backends import graph_sampler
    from ahazero.rollout.batching import completions_in_batches, eos_token_ids, left_pad

    sampler = graph_sampler(generation)
    eos = eos_token_ids(model, tokenizer)
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else eos[0]
    encoded = tokenizer(list(prompts), add_special_tokens=False)["input_ids"]
    width = min(max(k, batch_size // k * k), len(prompts) * k)  # whole prompts per batch; one shape for all
    device = next(model.parameters()).device
    bucket = max(1, int(generation.prompt_bucket))

    def generate(rows: list[Sequence[int]]) -> list[list[int]]:
        ids, mask = left_pad(rows + [rows[-1]] * (width - len(rows)), pad_id, bucket)
        return sampler.generate(model, ids.to(device), mask.to(device), max_new_tokens=max_new_tokens,
                                eos_token_ids=eos, pad_token_id=pad_id, temperature=temperature, top_p=top_p,
                                do_sample=sample)

    done = None if advance is None else (lambda chunk: advance(len(set(chunk))))
    completions = completions_in_batches(encoded, k, width, generate, eos=eos, limit=max_new_tokens, advance=done)
    return [[(tokenizer.decode(ids, skip_special_tokens=True), len(ids)) for ids, _ in group]
            for group in completions]
