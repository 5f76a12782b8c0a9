"""What a decode step costs: bytes read and FLOPs per step, from a model's shape and the step counts.

A decode step reads every weight once and, for each row, the KV cache up to the attention
length; it does ``2 x parameters`` FLOPs per row for the matrix products (the LM head
included, the embedding lookup not) plus ``4 x layers x heads x head_dim`` per row and
attended position for attention. The graph sampler counts its steps, rows and attended
positions (:attr:`~ahazero.rollout.graph_sampler.GraphSampler.last_stats`); for TRL's
``generate`` (``hf``, ``compiled``) :func:`estimate_decode_stats` derives the same counts from
the batch's shape, as such a batch decodes every row until its longest completion ends.

Example:
    >>> facts = {"weight_bytes": 1e9, "matmul_parameters": 5e8, "kv_bytes_per_position": 12288,
    ...          "attention_flops_per_position": 4 * 24 * 896}
    >>> stats = {"decode_steps": 100, "decode_rows": 12800, "decode_kv_positions": 12800 * 640,
    ...          "decode_seconds": 0.5}
    >>> r = decode_rates(stats, facts)
    >>> r["step_ms"], round(r["tbps"], 2)
    (5.0, 0.4)
"""

from __future__ import annotations

from typing import Any

__all__ = ["decode_rates", "estimate_decode_stats", "model_facts"]


def model_facts(model: Any) -> dict[str, float]:
    """The sizes that set a decode step's cost: weight bytes, matmul parameters (the LM head's apart), KV bytes per position.

    Example:
        >>> from transformers import Qwen2Config, Qwen2ForCausalLM
        >>> m = Qwen2ForCausalLM(Qwen2Config(vocab_size=64, hidden_size=32, intermediate_size=64,
        ...     num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=True))
        >>> f = model_facts(m)
        >>> f["kv_bytes_per_position"], f["attention_flops_per_position"], f["head_parameters"]
        (256.0, 256.0, 2048.0)
    """
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    config = base.config.get_text_config() if hasattr(base.config, "get_text_config") else base.config
    params = list(model.parameters())
    weight_bytes = sum(p.numel() * p.element_size() for p in params)
    total = sum(p.numel() for p in params)
    embedding = base.get_input_embeddings().weight.numel()
    output = base.get_output_embeddings()
    tied = bool(getattr(config, "tie_word_embeddings", False))
    layers = int(config.num_hidden_layers)
    heads = int(config.num_attention_heads)
    head_dim = int(getattr(config, "head_dim", None) or config.hidden_size // heads)
    kv_heads = int(getattr(config, "num_key_value_heads", None) or heads)
    dtype_bytes = next((p.element_size() for p in params if p.is_floating_point()), 4)
    return {
        "parameters": float(total),
        "weight_bytes": float(weight_bytes),
        # the input embedding is a lookup; tied, the same matrix is the LM head's product
        "matmul_parameters": float(total if tied else total - embedding),
        # the LM head's share of them (the update projects only the scored tokens through it)
        "head_parameters": float(output.weight.numel() if output is not None else 0),
        "kv_bytes_per_position": float(2 * layers * kv_heads * head_dim * dtype_bytes),
        "attention_flops_per_position": float(4 * layers * heads * head_dim),
    }


def estimate_decode_stats(*, rows: int, prompt_width: int, longest: int, max_new_tokens: int,
                          static_cache: bool) -> dict[str, float]:
    """Decode counts of one ``model.generate`` call, which decodes all rows until the longest ends.

    With a dynamic cache, step ``t`` attends ``prompt_width + t`` positions; with a static
    cache, always ``prompt_width + max_new_tokens``. ``decode_estimated`` marks the counts.

    Example:
        >>> s = estimate_decode_stats(rows=2, prompt_width=10, longest=4, max_new_tokens=8, static_cache=False)
        >>> s["decode_steps"], s["decode_rows"], s["decode_kv_positions"]
        (3.0, 6.0, 72.0)
    """
    steps = max(longest - 1, 0)  # the first token comes from the prefill
    if static_cache:
        positions = rows * steps * (prompt_width + max_new_tokens)
    else:
        positions = rows * (steps * prompt_width + steps * (steps + 1) // 2)
    return {"decode_steps": float(steps), "decode_rows": float(rows * steps),
            "decode_kv_positions": float(positions), "decode_estimated": 1.0}


def decode_rates(stats: dict[str, float], facts: dict[str, float]) -> dict[str, float] | None:
    """Mean decode step time (ms), rows per step, achieved TB/s and TFLOP/s; None without decode timing.

    ``stats`` needs ``decode_seconds``, ``decode_steps``, ``decode_rows`` and
    ``decode_kv_positions`` (summed over any number of calls).

    Example:
        >>> decode_rates({"decode_steps": 0}, {}) is None
        True
    """
    seconds, steps = stats.get("decode_seconds") or 0.0, stats.get("decode_steps") or 0.0
    if seconds <= 0 or steps <= 0 or not facts:
        return None
    rows, positions = stats.get("decode_rows", 0.0), stats.get("decode_kv_positions", 0.0)
    read = steps * facts["weight_bytes"] + positions * facts["kv_bytes_per_position"]
    flops = 2 * facts["matmul_parameters"] * rows + facts["attention_flops_per_position"] * positions
    return {
        "step_ms": round(1000 * seconds / steps, 3),
        "rows_per_step": round(rows / steps, 1),
        "tbps": read / seconds / 1e12,
        "tflops": flops / seconds / 1e12,
    }
