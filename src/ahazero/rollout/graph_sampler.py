"""A fixed-shape sampling loop for rollouts: static KV cache + one CUDA graph per decode step.

At GRPO batch sizes a small model's decode step is bound by per-token overhead (Python,
mask building, logits processors, kernel launches), not by the GPU. ``GraphSampler`` keeps
every tensor of the loop at a fixed shape, so the whole decode step — the model forward
*and* sampling — becomes one CUDA graph (recorded from the eager step, or compiled with
``torch.compile(mode="reduce-overhead")``: ``graph_mode`` below) and each new token costs
one graph replay plus a few tiny copies. It is what the ``graph`` generation backend runs.

What it supports: temperature, top-k and top-p sampling (or greedy), several EOS ids, left
padding. Sampling uses the Gumbel-max trick, which draws from exactly the softmax of the
(filtered, temperature-scaled) logits. Each row stops at its first EOS; the loop ends when
every row has, checked every ``check_every`` tokens so the GPU is not synchronised per token.

Three options for big batches, each exact (the same tokens greedily, the same distribution
sampled) and off by default:

``share_prefill``
    A GRPO batch holds each prompt ``num_generations`` times. Prefill each distinct prompt
    once and copy its KV cache into its completions' rows (:func:`~ahazero.rollout.static_cache.copy_rows`).
``compact_rows``
    A batch decodes until its longest completion ends, while most rows finished long
    before. At each check, when at most a quarter of the rows are still generating, they
    move into a batch a quarter the size (not below ``compact_min_rows``), which has its own
    compiled graph, so the long tail decodes a small batch.
``max_rows``
    Generate at most this many rows at once (the batch in consecutive chunks), which bounds
    the KV cache's memory.

``graph_mode``
    ``"capture"`` (the default) records the eager decode step as a CUDA graph directly
    (:mod:`ahazero.rollout.captured_step`), about a second per batch shape; ``"compile"``
    compiles it with ``torch.compile`` (kernel fusion, about half a minute per shape).

One more exact option is on by default: ``grouped_attention`` decodes grouped-query models
(Qwen2.5: 14 query heads, 2 key/value heads) without transformers' per-head copy of the
cache (:mod:`ahazero.rollout.grouped_attention`), which at large batches was most of the
decode step.

Each call leaves its counts in :attr:`GraphSampler.last_stats`: prefill and decode seconds
(the GPU synchronised between them), decode steps, rows decoded summed over steps, and
KV-cache positions read summed over steps, from which the bench derives the decode step's
time, memory bandwidth and FLOP rate.

Without a GPU (or with ``compile=False``) the same loop runs eagerly, which is how the
tests check it against ``model.generate``. Where the step cannot be recorded or compiled (no
CUDA graphs, no working Triton), the first call warns and the sampler decodes eagerly from
then on.

Example:
    >>> sampler = GraphSampler(compile=False, share_prefill=True)
    >>> ids = sampler.generate(model, input_ids, attention_mask, max_new_tokens=16,   # doctest: +SKIP
    ...                        eos_token_ids=[tok.eos_token_id], pad_token_id=tok.pad_token_id)
    >>> len(ids) == input_ids.shape[0]                                                 # doctest: +SKIP
    True
"""

from __future__ import annotations

import inspect
import logging
import time
from collections import defaultdict
from typing import Any

import torch

from ahazero.rollout.captured_step import CapturedStep, decode_mask, supports_capture
from ahazero.rollout.grouped_attention import grouped_decode
from ahazero.rollout.static_cache import CachePool, copy_rows, movable, prompt_groups

__all__ = ["GraphSampler", "error_summary", "sample_next"]

logger = logging.getLogger("ahazero.rollout.graph_sampler")

#: Rows still generating at or under this share of the batch move into a smaller batch (``compact_rows``).
COMPACT_FACTOR = 4

#: How the decode step becomes one CUDA graph: a graph recorded from the eager step (about a second
#: per shape; the default) or torch.compile (fused kernels, ~30 s to compile per shape).
GRAPH_MODES = ("compile", "capture")


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

    One sampler is kept per trainer: it keeps one KV cache per batch shape (rows x prompt
    bucket + new tokens, in a :class:`~ahazero.rollout.static_cache.CachePool` holding at most
    ``cache_budget`` of the GPU's memory) and one compiled step, so shapes that repeat reuse
    the same graph. See the module docstring for ``share_prefill``, ``compact_rows`` and
    ``max_rows``.
    """

    def __init__(self, *, compile: bool | None = None, check_every: int = 16, share_prefill: bool = False,
                 compact_rows: bool = False, compact_min_rows: int = 32, max_rows: int = 0,
                 cache_budget: float = 0.25, grouped_attention: bool = True, graph_mode: str = "capture") -> None:
        if graph_mode not in GRAPH_MODES:
            raise ValueError(f"graph_mode must be one of {', '.join(GRAPH_MODES)}, got {graph_mode!r}")
        self.compile = compile
        self.check_every = max(1, check_every)
        self.share_prefill = share_prefill
        self.compact_rows = compact_rows
        self.compact_min_rows = max(1, compact_min_rows)
        self.max_rows = max(0, max_rows)
        self.cache_budget = cache_budget
        self.grouped_attention = grouped_attention
        self.graph_mode = graph_mode
        self.pool = CachePool()
        #: Counts of the last :meth:`generate` call (see the module docstring).
        self.last_stats: dict[str, float] = {}
        self._steps: dict[tuple[Any, ...], Any] = {}
        self._verified: set[int] = set()
        self._warned_unmovable = False

    def _step_fn(self, model: Any, use_compile: bool, sampling: tuple[Any, ...]) -> Any:
        key = (id(model), use_compile, sampling)
        step = self._steps.get(key)
        if step is not None:
            return step
        temperature, top_k, top_p, do_sample = sampling

        cache_kw = _cache_keyword(model)
        mask_4d = self.graph_mode == "capture" and supports_capture(model)
        capture = use_compile and mask_4d
        if use_compile and self.graph_mode == "capture" and not capture:
            logger.warning("graph sampler: graph_mode 'capture' needs sdpa attention and full-attention layers; "
                           "this model (%s attention) is compiled instead",
                           getattr(model.config, "_attn_implementation", None))

        def step(tokens, position_ids, cache_position, attention_mask, finished, cache, eos, pad):
            if mask_4d:  # transformers then does no mask work that reads GPU values on the host
                attention_mask = decode_mask(attention_mask, cache_position)
            out = model(input_ids=tokens, position_ids=position_ids, cache_position=cache_position,
                        attention_mask=attention_mask, use_cache=True, **{cache_kw: cache})
            nxt = sample_next(out.logits[:, -1, :], temperature=temperature, top_k=top_k, top_p=top_p,
                              do_sample=do_sample)
            nxt = torch.where(finished, pad, nxt)
            return nxt.unsqueeze(-1), finished | torch.isin(nxt, eos)

        if capture:
            step = CapturedStep(step)
        elif use_compile:
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
            return self._generate_chunks(model, input_ids, attention_mask, use_compile=use_compile, **options)
        try:  # the first call compiles or records; where that cannot work, decode eagerly instead
            result = self._generate_chunks(model, input_ids, attention_mask, use_compile=True, **options)
        except Exception as err:  # a missing compiler or CUDA graph support surfaces as many exception types
            what = ("recording the decode step as a CUDA graph failed" if self.graph_mode == "capture"
                    else "torch.compile is unavailable here")
            logger.warning("graph sampler: %s (%s); decoding without it", what, error_summary(err))
            self.compile = False
            return self._generate_chunks(model, input_ids, attention_mask, use_compile=False, **options)
        self._verified.add(id(model))
        return result

    def _generate_chunks(self, model: Any, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                         **options: Any) -> list[list[int]]:
        """The batch in consecutive chunks of at most ``max_rows`` rows (all at once when 0)."""
        if self.grouped_attention:
            with grouped_decode(model):
                return self._chunks(model, input_ids, attention_mask, **options)
        return self._chunks(model, input_ids, attention_mask, **options)

    def _chunks(self, model: Any, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                **options: Any) -> list[list[int]]:
        rows = input_ids.shape[0]
        chunks = -(-rows // self.max_rows) if self.max_rows else 1
        size = -(-rows // chunks)  # equal chunks: a divisor of the batch keeps one shape
        stats: defaultdict[str, float] = defaultdict(float)
        self.last_stats = {}
        out: list[list[int]] = []
        for start in range(0, rows, size):
            out += self._generate(model, input_ids[start:start + size], attention_mask[start:start + size],
                                  stats=stats, **options)
        self.last_stats = dict(stats)
        return out

    def _generate(self, model: Any, input_ids: torch.Tensor, attention_mask: torch.Tensor, *,
                  stats: defaultdict[str, float], use_compile: bool, max_new_tokens: int, eos_token_ids: list[int],
                  pad_token_id: int, temperature: float, top_k: int, top_p: float,
                  do_sample: bool) -> list[list[int]]:
        device = input_ids.device
        batch, prompt_len = input_ids.shape
        length = prompt_len + max_new_tokens
        self._set_budget(device)
        eos = torch.tensor(sorted(set(eos_token_ids)), device=device)
        pad = torch.tensor(pad_token_id, device=device)
        sampling = (float(temperature), int(top_k or 0), float(top_p if top_p is not None else 1.0), bool(do_sample))

        started = time.perf_counter()
        cache, logits = self._prefill(model, input_ids, attention_mask, length, stats)  # a fresh or reset cache
        tokens = sample_next(logits, temperature=sampling[0], top_k=sampling[1], top_p=sampling[2],
                             do_sample=sampling[3]).unsqueeze(-1)  # (B, 1)
        finished = torch.isin(tokens.squeeze(-1), eos)  # (B,)
        mask = torch.cat([attention_mask.long(), attention_mask.new_ones(batch, max_new_tokens).long()], dim=1)
        position = (attention_mask.long().sum(-1, keepdim=True) - 1).clamp_(min=0)  # (B, 1) last prompt position
        _sync(device)
        decode_start = time.perf_counter()
        stats["prefill_seconds"] += decode_start - started

        step = self._step_fn(model, use_compile, sampling)
        out = torch.full((batch, max_new_tokens), pad_token_id, dtype=tokens.dtype, device=device)
        rows: torch.Tensor | None = None  # each current row's row in `out`, once compacted
        block: list[torch.Tensor] = [tokens]  # tokens since `block_start`, one (rows, 1) tensor per position
        block_start = 0
        cache_position = torch.tensor([prompt_len], device=device)
        for i in range(1, max_new_tokens):
            if i % self.check_every == 0:
                live = int((~finished).sum())
                if live == 0:
                    break
                target = self._compact_target(tokens.shape[0], live, cache)
                if target < tokens.shape[0]:
                    _write(out, rows, block_start, block)
                    keep = torch.argsort(finished.int(), stable=True)[:target]  # the live rows first
                    smaller = self.pool.get(model, target, length, reset=False)
                    copy_rows(cache, smaller, keep)
                    cache = smaller
                    tokens, finished, position, mask = (t.index_select(0, keep)
                                                        for t in (tokens, finished, position, mask))
                    rows = keep if rows is None else rows.index_select(0, keep)
                    block, block_start = [], i
                    stats["compactions"] += 1
            position += 1
            tokens, finished = step(tokens, position, cache_position, mask, finished, cache, eos, pad)
            tokens, finished = tokens.clone(), finished.clone()  # graph outputs are reused by the next replay
            cache_position += 1
            block.append(tokens)
            stats["decode_steps"] += 1
            stats["decode_rows"] += tokens.shape[0]
            stats["decode_kv_positions"] += tokens.shape[0] * length  # attention reads the whole static cache
        _write(out, rows, block_start, block)
        result = _cut_at_eos(out[:, :block_start + len(block)], eos)  # to the host: the decode loop has finished
        stats["decode_seconds"] += time.perf_counter() - decode_start
        stats["rows"] += batch
        return result

    def _prefill(self, model: Any, input_ids: torch.Tensor, attention_mask: torch.Tensor, length: int,
                 stats: defaultdict[str, float]) -> tuple[Any, torch.Tensor]:
        """Fill a ``batch x length`` cache with the prompts; return it and each row's last logits ``(B, V)``."""
        batch = input_ids.shape[0]
        if self.share_prefill:
            unique_ids, unique_mask, inverse = prompt_groups(input_ids, attention_mask)
            if unique_ids.shape[0] < batch:
                shared = self.pool.get(model, unique_ids.shape[0], length)
                if movable(shared):
                    logits = self._prompt_forward(model, unique_ids, unique_mask, shared)
                    cache = self.pool.get(model, batch, length, reset=False)
                    copy_rows(shared, cache, inverse)  # each row gets its prompt's keys and values
                    stats["prefill_rows"] += unique_ids.shape[0]
                    return cache, logits.index_select(0, inverse)
                self._warn_unmovable(shared)
        cache = self.pool.get(model, batch, length)
        stats["prefill_rows"] += batch
        return cache, self._prompt_forward(model, input_ids, attention_mask, cache)

    @staticmethod
    def _prompt_forward(model: Any, input_ids: torch.Tensor, attention_mask: torch.Tensor, cache: Any) -> torch.Tensor:
        mask = attention_mask.long()
        position_ids = (mask.cumsum(-1) - 1).clamp_(min=0)
        out = model(input_ids=input_ids, attention_mask=mask, position_ids=position_ids, use_cache=True,
                    cache_position=torch.arange(input_ids.shape[1], device=input_ids.device), logits_to_keep=1,
                    **{_cache_keyword(model): cache})
        return out.logits[:, -1, :]

    def _compact_target(self, rows: int, live: int, cache: Any) -> int:
        """The batch the ``live`` rows move into: ``rows`` / 4^k, at least ``compact_min_rows``."""
        if not self.compact_rows:
            return rows
        target = rows
        while target // COMPACT_FACTOR >= self.compact_min_rows and live <= target // COMPACT_FACTOR:
            target //= COMPACT_FACTOR
        if target < rows and not movable(cache):
            self._warn_unmovable(cache)
            return rows
        return target

    def _set_budget(self, device: torch.device) -> None:
        if device.type == "cuda" and self.pool.budget_bytes is None:
            self.pool.budget_bytes = int(torch.cuda.get_device_properties(device).total_memory * self.cache_budget)

    def _warn_unmovable(self, cache: Any) -> None:
        if not self._warned_unmovable:
            kinds = sorted({type(layer).__name__ for layer in getattr(cache, "layers", None) or []})
            logger.warning("graph sampler: share_prefill and compact_rows need full-attention static cache layers; "
                           "this model's cache has %s, so every row is prefilled and decoded in the full batch",
                           ", ".join(kinds) or "none")
            self._warned_unmovable = True


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _write(out: torch.Tensor, rows: torch.Tensor | None, start: int, block: list[torch.Tensor]) -> None:
    """Write a block of generated positions into ``out`` (``rows``: each block row's row in ``out``)."""
    if not block:
        return
    tokens = torch.cat(block, dim=1)  # (rows, n)
    end = start + tokens.shape[1]
    if rows is None:
        out[:, start:end] = tokens
    else:
        out[rows, start:end] = tokens


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
