"""How much GPU memory training needs: a per-token cost model, and the micro-batch sizes that fit.

Arithmetic only (no model is loaded): a :class:`ModelShape` from the model's ``config.json``
numbers, a :class:`RowShape` (the longest prompt, ``max_completion_length``), and the
settings that change what a row costs. The estimates are for one process:

- **persistent**: the weights, and for a full fine-tune their gradients and AdamW's two
  moments (in the weights' dtype); a LoRA adapter's are negligible. Plus TRL's fused LM head's
  float32 weight gradient and tiles, and a fixed allowance for the CUDA context and the
  allocator's fragmentation (:data:`OVERHEAD_BYTES`, :data:`OVERHEAD_SHARE`).
- **per token of the update**: what a decoder layer keeps for its backward pass,
  ``layers x (32 x hidden + 8 x intermediate)`` bytes at 2-byte activations (twice that in
  float32). The constants were set from the ``one-minute`` preset on an H200 (micro-batches of
  128 rows of at most 114 + 256 tokens, Qwen2.5-0.5B, peak 72.3 GiB allocated); this model
  gives 78.7 GiB there, so it errs high. With gradient checkpointing a layer keeps only its
  input, and one layer's activations are alive at a time. A LoRA adapter's layers keep
  :data:`LORA_ACTIVATIONS` times as much (measured: 32.2 GiB against a full fine-tune's 26.0
  at the same micro-batch).
- **per row of the update**: the padded path computes ``prompt + completion`` positions; a
  packed micro-batch computes ``1 + completion`` tokens and a share of the prompt (the whole
  prompt, or ``1 / generations`` of it when prompts are shared), plus its attention blocks'
  gathered keys and values (:mod:`ahazero.training.packed_attention`).
- **per row of generation** (the ``graph`` sampler): its static KV cache over the bucketed
  prompt and ``max_completion_length``, and the sampling's per-row vocabulary buffers.

Sizes are chosen for the worst case (every completion ``max_completion_length`` long).

Example:
    >>> shape = ModelShape(hidden=896, intermediate=4864, layers=24, heads=14, kv_heads=2, head_dim=64,
    ...                    vocab=151936, parameters=630_000_000)
    >>> row = RowShape(prompt_tokens=114, completion_tokens=256, generations=16)
    >>> round(update_bytes_per_row(shape, row, weight_bytes=2) / 2**20)
    572
    >>> choose_micro_batch(512, budget=75 * 2**30, per_row=update_bytes_per_row(shape, row, weight_bytes=2),
    ...                    generations=16)
    128
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

__all__ = [
    "LORA_ACTIVATIONS",
    "OVERHEAD_BYTES",
    "OVERHEAD_SHARE",
    "ModelShape",
    "RowShape",
    "choose_max_rows",
    "choose_micro_batch",
    "generation_bytes_per_row",
    "persistent_bytes",
    "update_bytes_per_row",
]

#: Bytes a decoder layer keeps per token for its backward pass, per hidden and intermediate unit (2-byte activations).
PER_HIDDEN, PER_INTERMEDIATE = 32, 8
#: LoRA's activations against a full fine-tune's at the same micro-batch.
LORA_ACTIVATIONS = 1.25
#: Held back from the card for the CUDA context, cuBLAS workspaces and the allocator's fragmentation.
OVERHEAD_BYTES = int(1.5 * 2**30)
OVERHEAD_SHARE = 0.05
#: TRL's fused LM head works in tiles of this many tokens x vocabulary entries (trl.kernels.chunked_logprob).
_HEAD_TOKENS, _HEAD_VOCAB = 4096, 32768


@dataclass(frozen=True)
class ModelShape:
    """The numbers of a decoder-only transformer that set its memory (from its ``config.json``)."""

    hidden: int
    intermediate: int
    layers: int
    heads: int
    kv_heads: int
    head_dim: int
    vocab: int
    parameters: int

    @classmethod
    def from_config(cls, config: Any, parameters: int | None = None) -> ModelShape:
        """From a transformers config (or its ``config.json`` as a dict); parameters counted if not given.

        Example:
            >>> s = ModelShape.from_config({"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2,
            ...     "num_attention_heads": 4, "num_key_value_heads": 2, "vocab_size": 512, "tie_word_embeddings": True})
            >>> s.head_dim, s.parameters
            (16, 107072)
        """
        get = config.get if isinstance(config, dict) else lambda key, default=None: getattr(config, key, default)
        if get("text_config") is not None:  # a vision-language config: the language model's numbers
            return cls.from_config(get("text_config"), parameters)
        hidden, heads = int(get("hidden_size")), int(get("num_attention_heads"))
        shape = cls(hidden=hidden, intermediate=int(get("intermediate_size") or 4 * hidden),
                    layers=int(get("num_hidden_layers")), heads=heads,
                    kv_heads=int(get("num_key_value_heads") or heads),
                    head_dim=int(get("head_dim") or hidden // heads), vocab=int(get("vocab_size")), parameters=0)
        if parameters is None:
            parameters = shape.count_parameters(tied=bool(get("tie_word_embeddings", False)))
        return cls(**{**shape.__dict__, "parameters": int(parameters)})

    def count_parameters(self, *, tied: bool) -> int:
        """Parameters of a Llama/Qwen2-style decoder (attention biases included)."""
        q, kv = self.heads * self.head_dim, self.kv_heads * self.head_dim
        layer = self.hidden * (q + 2 * kv) + (q + 2 * kv) + q * self.hidden + 3 * self.hidden * self.intermediate
        embeddings = self.vocab * self.hidden * (1 if tied else 2)
        return self.layers * (layer + 2 * self.hidden) + self.hidden + embeddings


@dataclass(frozen=True)
class RowShape:
    """One completion row at its longest: prompt tokens, completion tokens, completions per prompt."""

    prompt_tokens: int
    completion_tokens: int
    generations: int = 1


def persistent_bytes(shape: ModelShape, *, weight_bytes: int, lora: bool = False) -> int:
    """Memory held through training: weights (+ gradients and AdamW moments for a full fine-tune), LM-head scratch.

    Example:
        >>> s = ModelShape(hidden=896, intermediate=4864, layers=24, heads=14, kv_heads=2, head_dim=64,
        ...                vocab=151936, parameters=630_000_000)
        >>> round(persistent_bytes(s, weight_bytes=2) / 2**30, 1), round(persistent_bytes(s, weight_bytes=2, lora=True) / 2**30, 1)
        (5.7, 1.7)
    """
    states = 1.05 if lora else 4.0  # weights; + gradients + two moments, each in the weights' dtype
    head = 2 * _HEAD_TOKENS * min(_HEAD_VOCAB, shape.vocab) * weight_bytes + (0 if lora else 4 * shape.vocab * shape.hidden)
    return int(shape.parameters * weight_bytes * states + head)


def _per_token(shape: ModelShape, weight_bytes: int, checkpointing: bool, lora: bool) -> float:
    layer = (PER_HIDDEN * shape.hidden + PER_INTERMEDIATE * shape.intermediate) * weight_bytes / 2
    layer *= LORA_ACTIVATIONS if lora else 1.0
    if checkpointing:
        return shape.layers * shape.hidden * weight_bytes + layer
    return shape.layers * layer


def update_bytes_per_row(shape: ModelShape, row: RowShape, *, weight_bytes: int, packing: bool = False,
                         share_prompts: bool = False, checkpointing: bool = False, lora: bool = False) -> int:
    """Activation memory of one completion row in the update's forward and backward (worst case).

    Example:
        >>> s = ModelShape(hidden=896, intermediate=4864, layers=24, heads=14, kv_heads=2, head_dim=64,
        ...                vocab=151936, parameters=630_000_000)
        >>> row = RowShape(prompt_tokens=114, completion_tokens=256, generations=16)
        >>> [round(update_bytes_per_row(s, row, weight_bytes=2, packing=p, share_prompts=sp) / 2**20)
        ...  for p, sp in ((False, False), (True, False), (True, True))]
        [572, 626, 462]
    """
    per_token = _per_token(shape, weight_bytes, checkpointing, lora)
    prompt, completion = row.prompt_tokens, row.completion_tokens
    if not packing:
        return int((prompt + completion) * per_token)
    prompt_share = (prompt - 1) / max(row.generations, 1) if share_prompts else prompt - 1
    tokens = 1 + completion + prompt_share
    queries, keys = completion + 1, prompt + completion
    width = shape.heads * shape.head_dim
    gathered = (2 * width * (2 * queries + 2 * keys) * weight_bytes / 2 + queries * keys)
    layers_alive = 1 if checkpointing else shape.layers
    return int(tokens * per_token + layers_alive * gathered)


def generation_bytes_per_row(shape: ModelShape, row: RowShape, *, weight_bytes: int, prompt_bucket: int = 64) -> int:
    """Memory of one row in the ``graph`` sampler: static KV cache, vocabulary buffers, the prefill's activations.

    Example:
        >>> s = ModelShape(hidden=896, intermediate=4864, layers=24, heads=14, kv_heads=2, head_dim=64,
        ...                vocab=151936, parameters=630_000_000)
        >>> round(generation_bytes_per_row(s, RowShape(114, 256), weight_bytes=2) / 2**20, 1)
        10.1
    """
    prompt = -(-row.prompt_tokens // prompt_bucket) * prompt_bucket
    kv = 2 * shape.layers * shape.kv_heads * shape.head_dim * weight_bytes * (prompt + row.completion_tokens)
    vocab = 16 * shape.vocab  # logits, float32 scores, sampling noise
    prefill = prompt * (4 * shape.hidden + 2 * shape.intermediate) * weight_bytes
    return int(kv + vocab + prefill)


def _budget_rows(budget: float, per_row: int) -> int:
    return int(budget // per_row) if per_row > 0 else 0


def choose_micro_batch(rows: int, *, budget: float, per_row: int, generations: int = 1) -> int:
    """The largest micro-batch that divides ``rows`` (one process's completions per step) and fits ``budget``.

    Multiples of ``generations`` are preferred (whole prompt groups). Raises :class:`ValueError`
    when not even one row fits.

    Example:
        >>> choose_micro_batch(512, budget=10e9, per_row=100e6, generations=16)   # 100 rows fit: 96 is no divisor
        64
        >>> choose_micro_batch(48, budget=1e9, per_row=100e6, generations=16)     # no multiple of 16 fits
        8
    """
    fit = _budget_rows(budget, per_row)
    if fit < 1:
        raise ValueError(f"one completion row needs {per_row / 2**30:.2f} GiB in the update and "
                         f"{max(budget, 0) / 2**30:.2f} GiB are left for it")
    divisors = [d for d in range(1, rows + 1) if rows % d == 0 and d <= fit]
    whole = [d for d in divisors if d % generations == 0]
    return max(whole or divisors)


def choose_max_rows(rows: int, *, budget: float, per_row: int, generations: int = 1) -> int:
    """``generation.max_rows`` for ``rows`` completions per generation: 0 when all fit at once, else what fits.

    A chunk holds whole prompt groups (a multiple of ``generations``) where one fits.

    Example:
        >>> choose_max_rows(512, budget=60e9, per_row=12e6, generations=16)
        0
        >>> choose_max_rows(4096, budget=30e9, per_row=12e6, generations=16)
        2496
    """
    fit = _budget_rows(budget, per_row)
    if fit >= rows:
        return 0
    if fit < 1:
        raise ValueError(f"one generation row needs {per_row / 2**30:.2f} GiB and "
                         f"{max(budget, 0) / 2**30:.2f} GiB are left for generation")
    return fit - fit % generations if fit >= generations else fit
