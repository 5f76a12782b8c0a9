"""K sampled completions per prompt, batched, with a progress bar: the graph sampler or ``generate``.

On a GPU with the ``graph`` backend, :class:`~ahazero.rollout.graph_sampler.GraphSampler` runs
the whole decode step as one CUDA graph (prompts left-padded to a multiple of the prompt
bucket, and every batch the same size, so one graph serves them all); if it cannot run the
model, the first batch warns and everything is generated with ``model.generate``, which is
also the path on a CPU.

Example:
    >>> from ahazero.models.loading import load_model_and_tokenizer
    >>> model, tok = load_model_and_tokenizer("tiny", dtype="float32")
    >>> out = sample_completions(model, tok, ["Compute: 1 + 1"], Sampling(n=2, max_new_tokens=4), quiet=True)
    >>> len(out), len(out[0]), sorted(out[0][0])
    (1, 2, ['text', 'tokens', 'truncated'])
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from ahazero.rollout.batching import completions_in_batches, eos_token_ids, left_pad
from ahazero.rollout.graph_sampler import GraphSampler, error_summary

__all__ = ["Sampling", "sample_completions"]

logger = logging.getLogger("ahazero.stages.generate")


@dataclass(frozen=True)
class Sampling:
    """How to sample: ``n`` completions per prompt with these decoding settings."""

    n: int = 8
    max_new_tokens: int = 256
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0
    batch_size: int = 256  #: sequences per batch (prompts x completions)
    use_graph: bool = False  #: the graph sampler (a GPU with the 'graph' backend)
    prompt_bucket: int = 64


class _Generator:
    """One batch of prompts -> completion token ids, by the graph sampler or ``model.generate``."""

    def __init__(self, model: Any, tokenizer: Any, sampling: Sampling, width: int) -> None:
        self.model, self.tokenizer, self.sampling, self.width = model, tokenizer, sampling, width
        self.eos = eos_token_ids(model, tokenizer)
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else self.eos[0]
        self.sampler = GraphSampler() if sampling.use_graph else None
        self.device = next(model.parameters()).device

    def __call__(self, rows: Sequence[Sequence[int]]) -> list[list[int]]:
        if self.sampler is not None:
            try:
                return self._graph(rows)
            except Exception as err:  # a model the loop cannot run: warn once, then use generate
                logger.warning("graph sampler cannot run this model (%s); sampling with generate instead",
                               error_summary(err))
                self.sampler = None
        return self._generate(rows)

    def _graph(self, rows: Sequence[Sequence[int]]) -> list[list[int]]:
        s = self.sampling
        rows = [*rows] + [rows[-1]] * (self.width - len(rows))  # the recorded graph needs every batch's shape
        ids, mask = left_pad(rows, self.pad_id, s.prompt_bucket)
        return self.sampler.generate(self.model, ids.to(self.device), mask.to(self.device),
                                     max_new_tokens=s.max_new_tokens, eos_token_ids=self.eos,
                                     pad_token_id=self.pad_id, temperature=s.temperature, top_k=s.top_k,
                                     top_p=s.top_p, do_sample=True)

    def _generate(self, rows: Sequence[Sequence[int]]) -> list[list[int]]:
        import torch

        s = self.sampling
        ids, mask = left_pad(rows, self.pad_id, 1)
        with torch.inference_mode():
            out = self.model.generate(input_ids=ids.to(self.device), attention_mask=mask.to(self.device),
                                      max_new_tokens=s.max_new_tokens, do_sample=True, temperature=s.temperature,
                                      top_p=s.top_p, top_k=s.top_k or None, eos_token_id=self.eos,
                                      pad_token_id=self.pad_id)
        return out[:, ids.shape[1]:].cpu().tolist()


def sample_completions(model: Any, tokenizer: Any, prompts: Sequence[str], sampling: Sampling, *,
                       quiet: bool = False) -> list[list[dict[str, Any]]]:
    """``sampling.n`` completions per prompt: per prompt a list of ``{text, tokens, truncated}``.

    ``tokens`` counts the generated tokens before the EOS; ``truncated`` is true when the
    completion reached ``max_new_tokens`` without one. With the graph sampler every batch has
    ``batch_size`` sequences (the last one is filled up with repeats that are thrown away), so
    the compiled graph sees one shape.
    """
    from rich.progress import Progress

    model.eval()
    encoded = tokenizer(text=list(prompts))["input_ids"]  # as GRPOTrainer and SFTTrainer tokenize them
    width = max(1, min(sampling.batch_size, len(prompts) * sampling.n))
    generate = _Generator(model, tokenizer, sampling, width)
    with Progress(transient=False, disable=quiet) as progress:
        bar = progress.add_task(f"sampling {len(prompts)} prompts x {sampling.n}", total=len(prompts) * sampling.n)
        completions = completions_in_batches(encoded, sampling.n, width, generate, eos=set(generate.eos),
                                             limit=sampling.max_new_tokens,
                                             advance=lambda chunk: progress.advance(bar, len(chunk)))
    return [[{"text": tokenizer.decode(ids, skip_special_tokens=True), "tokens": len(ids), "truncated": truncated}
             for ids, truncated in group] for group in completions]
