"""A fixed-shape sampling loop for rollouts: static KV cache + one compiled decode step.

At GRPO batch sizes a small model's decode step is bound by per-token overhead (Python,
mask building, logits processors, kernel launches), not by the GPU. ``GraphSampler`` keeps
every tensor of the loop at a fixed shape, so the whole decode step — the model forward
*and* sampling — compiles once into one CUDA graph (``torch.compile`` with
``mode="reduce-overhead"``) and each new token costs one graph replay plus a few tiny
copies. It is what the ``graph`` generation backend runs.

What it supports: temperature, top-k and top-p sampling (or greedy), several EOS ids, left
padding. Sampling uses the Gumbel-max trick, which draws from exactly the softmax of the
(filtered, temperature-scaled) logits. Each row stops at its first EOS; the loop ends when
every row has, checked every ``check_every`` tokens so the GPU is not synchronised per token.

Without a GPU (or with ``compile=False``) the same loop runs eagerly, which is how the
tests check it against ``model.generate``. Where ``torch.compile`` cannot run (no working
Triton), the first call warns and the sampler decodes eagerly from then on.

Example:
    >>> sampler = GraphSampler(compile=False)
    >>> ids = sampler.generate(model, input_ids, attention_mask, max_new_tokens=16,   # doctest: +SKIP
    ...                        eos_token_ids=[tok.eos_token_id], pad_token_id=tok.pad_token_id)
    >>> len(ids) == input_ids.shape[0]                                                 # doctest: +SKIP
    True
"""

from __future__ import annotations

import inspect
import logging
from typing import Any

import torch

__all__ = ["GraphSampler", "error_summary", "sample_next"]

logger = logging.getLogger("ahazero.rollout.graph_sampler")


def sample_next(logits: torch.Tensor, *, temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0,
                do_sample: bool = True) -> torch.Tensor:
    """Pick one token per row from ``logits`` (``[B, V]``); returns ``[B]`` token ids.

    Greedy when ``do_sample`` is false; otherwise samples from softmax(logits / temperature)
    restricted to the top-k tokens and the top-p nucleus, with fixed-shape operations only.

    Example:
        >>> logits = torch.tensor([[0.0, 5.0, 1.0], [3.0, 0.0, 0.0]])
        >>> sample_next(logits, do_sample=False).tolist()
        [1, 0]
        >>> sample_next(logits, top_k=1).tolist()
        [1, 0]
    """
    if not do_sample:
        return logits.argmax(dim=-1)
    scores = logits.float() / max(temperature, 1e-5)
    if top_k and 0 < top_k < scores.shape[-1]:
        kth = torch.topk(scores, top_k, dim=-1).values[:, -1:]
        scores = scores.masked_fill(scores < kth, float("-inf"))
    if top_p < 1.0:
        sorted_scores, order = torch.sort(scores, dim=-1, descending=True)
        probs = torch.softmax(sorted_scores, dim=-1)
        drop = (torch.cumsum(probs, dim=-1) - probs) > top_p  # keep the smallest set reaching top_p
        sorted_scores = sorted_scores.masked_fill(drop, float("-inf"))
        scores = torch.full_like(scores, float("-inf")).scatter(-1, order, sorted_scores)
    uniform = torch.rand_like(scores).clamp_(min=1e-10, max=1.0 - 1e-7)
    return (scores - torch.log(-torch.log(uniform))).argmax(dim=-1)


def error_summary(err: BaseException) -> str:
    """``"Type: first line of the message"``, for a one-line warning about a fallback.

    Example:
        >>> error_summary(RuntimeError("no Triton\\nlong traceback text"))
        'RuntimeError: no Triton'
    """
    text = str(err)
    return f"{type(err).__name__}: {text.splitlines()[0] if text else ''}"


class GraphSampler:
    """Generate completions with a static cache and a compiled, fixed-shape decode step.

    One sampler is kept per trainer: it caches one KV cache per batch shape (prompt length
    bucket x batch size) and one compiled step, so shapes that repeat reuse the same graph.
    """

    def __init__(self, *, compile: bool | None = None, check_every: int = 16) -> None:
        self.compile = compile
        self.check_every = max(1, check_every)
        self._caches: dict[tuple[Any, ...], Any] = {}
        self._steps: dict[tuple[Any, ...], Any] = {}
        self._verified: set[tuple[Any, ...]] = set()

    def _cache(self, model: Any, batch: int, length: int) -> Any:
        from transformers import StaticCache

        key = (id(model), batch, length)
        cache = self._caches.get(key)
        if cache is None:
            if len(self._caches) >= 8:  # bounded: shapes beyond a few buckets are rare
                self._caches.pop(next(iter(self._caches)))
            cache = StaticCache(config=model.config, max_cache_len=length)
            self._caches[key] = cache
        else:
            cache.reset()
        return cache

    def _step_fn(self, model: Any, use_compile: bool, sampling: tuple[Any, ...]) -> Any:
        key = (id(model), use_compile, sampling)
        step = self._steps.get(key)
        if step is not None:
            return step
        temperature, top_k, top_p, do_sample = sampling

        cache_kw = _cache_keyword(model)

        def step(tokens, position_ids, cache_position, attention_mask, finished, cache, eos, pad):
            out = model(input_ids=tokens, position_ids=position_ids, cache_position=cache_position,
                        attention_mask=attention_mask, use_cache=True, **{cache_kw: cache})
            nxt = sample_next(out.logits[:, -1, :], temperature=temperature, top_k=top_k, top_p=top_p,
                              do_sample=do_sample)
            nxt = torch.where(finished, pad, nxt)
            return nxt.unsqueeze(-1), finished | torch.isin(nxt, eos)

        if use_compile:
            step = torch.compile(step, mode="reduce-overhead", dynamic=False, fullgraph=False)
        self._steps[key] = step
        return step

    @torch.no_grad()
    def generate(self, model: Any, input_ids: torch.Tensor, attention_mask: torch.Tensor, *,
                 max_new_tokens: int, eos_token_ids: list[int], pad_token_id: int, temperature: float = 1.0,
                 top_k: int = 0, top_p: float = 1.0, do_sample: bool = True) -> list[list[int]]:
        """Sample up to ``max_new_tokens`` per left-padded prompt row.

        Returns each row's completion token ids, up to and including its first EOS.

        Example:
            >>> GraphSampler(compile=False).generate(model, ids, mask, max_new_tokens=8,   # doctest: +SKIP
            ...                                      eos_token_ids=[2], pad_token_id=0)
            [[17, 9, 2], [5, 5, 5, 5, 5, 5, 5, 5]]
        """
        use_compile = self.compile if self.compile is not None else input_ids.device.type == "cuda"
        options = dict(max_new_tokens=max_new_tokens, eos_token_ids=eos_token_ids, pad_token_id=pad_token_id,
                       temperature=temperature, top_k=top_k, top_p=top_p, do_sample=do_sample)
        if not use_compile or id(model) in self._verified:
            return self._generate(model, input_ids, attention_mask, use_compile=use_compile, **options)
        try:  # the first compiled call compiles; without a working toolchain, decode eagerly instead
            result = self._generate(model, input_ids, attention_mask, use_compile=True, **options)
        except Exception as err:  # a missing compiler surfaces as many exception types
            logger.warning("graph sampler: torch.compile is unavailable here (%s); decoding without it",
                           error_summary(err))
            self.compile = False
            return self._generate(model, input_ids, attention_mask, use_compile=False, **options)
        self._verified.add(id(model))
        return result

    def _generate(self, model: Any, input_ids: torch.Tensor, attention_mask: torch.Tensor, *, use_compile: bool,
                  max_new_tokens: int, eos_token_ids: list[int], pad_token_id: int, temperature: float,
                  top_k: int, top_p: float, do_sample: bool) -> list[list[int]]:
        device = input_ids.device
        batch, prompt_len = input_ids.shape
        length = prompt_len + max_new_tokens
        cache = self._cache(model, batch, length)  # a fresh or reset cache: a retry starts clean
        eos = torch.tensor(sorted(set(eos_token_ids)), device=device)
        pad = torch.tensor(pad_token_id, device=device)
        mask = torch.cat([attention_mask.long(), attention_mask.new_ones(batch, max_new_tokens).long()], dim=1)
        position_ids = (attention_mask.long().cumsum(-1) - 1).clamp_(min=0)
        sampling = (float(temperature), int(top_k or 0), float(top_p if top_p is not None else 1.0), bool(do_sample))

        out = model(input_ids=input_ids, attention_mask=mask[:, :prompt_len], position_ids=position_ids,
                    use_cache=True, cache_position=torch.arange(prompt_len, device=device), logits_to_keep=1,
                    **{_cache_keyword(model): cache})
        tokens = sample_next(out.logits[:, -1, :], temperature=sampling[0], top_k=sampling[1], top_p=sampling[2],
                             do_sample=sampling[3]).unsqueeze(-1)
        finished = torch.isin(tokens.squeeze(-1), eos)
        generated = [tokens]
        step = self._step_fn(model, use_compile, sampling)
        position = position_ids[:, -1:].clone()
        cache_position = torch.tensor([prompt_len], device=device)
        for i in range(1, max_new_tokens):
            if i % self.check_every == 0 and bool(finished.all()):
                break
            position += 1
            tokens, finished = step(tokens, position, cache_position, mask, finished, cache, eos, pad)
            tokens, finished = tokens.clone(), finished.clone()  # graph outputs are reused by the next replay
            cache_position += 1
            generated.append(tokens)
        return _cut_at_eos(torch.cat(generated, dim=1), eos)


def _cache_keyword(model: Any) -> str:
    """``cache`` on transformers versions that renamed it, else ``past_key_values``."""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    try:
        params = inspect.signature(base.forward).parameters
    except (TypeError, ValueError):
        return "past_key_values"
    return "cache" if "cache" in params else "past_key_values"


def _cut_at_eos(ids: torch.Tensor, eos: torch.Tensor) -> list[list[int]]:
    """Rows of ``ids`` up to and including the first EOS (whole row when there is none)."""
    is_eos = torch.isin(ids, eos)
    has = is_eos.any(dim=1)
    first = torch.where(has, is_eos.int().argmax(dim=1), torch.full_like(has, ids.shape[1], dtype=torch.long))
    rows = ids.cpu().tolist()
    return [row[: int(n) + 1] if h else row for row, n, h in zip(rows, first.cpu().tolist(), has.cpu().tolist())]
