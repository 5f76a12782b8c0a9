"""Presets: named bundles of config overrides (memory for speed, exact speed-ups, a big-batch recipe).

``ahazero train CONFIG --preset NAME`` (repeatable) applies a preset's overrides on top
of the config and before any ``key=value`` overrides on the command line, so a preset is
just a shorthand a user can read and undo. The peak memory and speed each one reaches is
measured by ``make bench`` (see the tables in docs/results.md).

Memory: ``full-bf16``, ``gradient-checkpointing``, ``lora``, ``lora-24gb``, ``liger``.
Speed: ``fast-rollouts`` turns on the exact big-batch paths (one prefill per distinct
prompt, compacted decode batches, length-sorted micro-batches). ``ahazero check CONFIG
--all-presets`` estimates each preset's peak memory (:mod:`ahazero.training.auto_sizes`). Recipe: ``big-batch``
trains with 4x the completions per step (512 with 16 per prompt), twice the learning rate
and a third of the default recipe's 60 steps; ``one-minute`` is big-batch in micro-batches
of 128, stopped before a step would end past 58 s of training; ``fast`` is one-minute with
packed micro-batches that share each prompt, micro-batches and generation rows sized to the
GPU's memory (``auto``), stopped before a step would end past 40 s.

Example:
    >>> sorted(PRESETS)  # doctest: +NORMALIZE_WHITESPACE
    ['big-batch', 'fast', 'fast-rollouts', 'full-bf16', 'gradient-checkpointing', 'liger', 'lora', 'lora-24gb',
     'one-minute']
    >>> preset_overrides(["lora"])["model.lora"]
    {'r': 16, 'alpha': 32, 'dropout': 0.0, 'target_modules': 'all-linear'}
"""

from __future__ import annotations

import difflib
from typing import Any

from ahazero.config.schema import ConfigError, ExperimentConfig
from ahazero.config.yaml_load import flow_yaml

__all__ = [
    "LORA_LEARNING_RATE",
    "PRESETS",
    "describe_presets",
    "preset_changes",
    "preset_override_strings",
    "preset_overrides",
]

_LORA = {"r": 16, "alpha": 32, "dropout": 0.0, "target_modules": "all-linear"}

#: The LoRA presets' learning rate: 10x the default recipe's full fine-tune rate (5e-6), as a
#: rank-16 adapter moves far fewer weights. A ``grpo.learning_rate=...`` override after the
#: preset (or in a later preset) wins.
LORA_LEARNING_RATE = 5.0e-5

#: name -> (one-line description, dotted overrides)
PRESETS: dict[str, tuple[str, dict[str, Any]]] = {
    "full-bf16": (
        "full fine-tune in bfloat16 (the default on a GPU with bf16)",
        {"model.dtype": "bfloat16"},
    ),
    "gradient-checkpointing": (
        "recompute activations in the backward pass: less memory, slower update",
        {"grpo.gradient_checkpointing": True},
    ),
    "lora": (
        "train a rank-16 LoRA adapter on every linear layer instead of all weights, with a LoRA-sized learning rate",
        {"model.lora": dict(_LORA), "grpo.learning_rate": LORA_LEARNING_RATE},
    ),
    "liger": (
        "Liger's fused layer kernels (needs `pip install liger-kernel`; TRL already computes "
        "log-probs with a chunked, fused LM head)",
        {"grpo.use_liger_kernel": True},
    ),
    "lora-24gb": (
        "LoRA + gradient checkpointing + 8-completion micro-batches: the default batch on a 24 GB card",
        {
            "model.dtype": "bfloat16",
            "model.lora": dict(_LORA),
            "grpo.learning_rate": LORA_LEARNING_RATE,
            "grpo.gradient_checkpointing": True,
            "grpo.per_device_train_batch_size": 8,
            "grpo.gradient_accumulation_steps": 16,
        },
    ),
    "fast-rollouts": (
        "exact speed-ups for big batches: one prefill per distinct prompt and compacted decode batches "
        "('graph' backend), length-sorted micro-batches without padding in the update",
        {"generation.share_prefill": True, "generation.compact_rows": True, "update.sort_by_length": True},
    ),
    "big-batch": (
        "512 completions per step (32 prompts x 16; 16 micro-batches of 32), learning rate 1e-5, 20 steps, shared "
        "prefills and length-sorted micro-batches: the default recipe's learning in fewer, bigger steps",
        {
            "grpo.per_device_train_batch_size": 32,
            "grpo.gradient_accumulation_steps": 16,
            "grpo.learning_rate": 1.0e-5,
            "grpo.max_steps": 20,
            "grpo.warmup_steps": 1,
            "generation.share_prefill": True,
            "update.sort_by_length": True,
        },
    ),
    "one-minute": (
        "big-batch in micro-batches of 128 for at most 58 s of training (max_train_seconds): the default recipe's "
        "learning in a minute on an H200-class GPU (about 72 GiB at the peak); a slower GPU trains fewer steps",
        {
            "grpo.per_device_train_batch_size": 128,
            "grpo.gradient_accumulation_steps": 4,
            "grpo.learning_rate": 1.0e-5,
            "grpo.max_steps": 20,
            "grpo.warmup_steps": 1,
            "generation.share_prefill": True,
            "update.sort_by_length": True,
            "grpo.save_steps": 20,
            "max_train_seconds": 58,
        },
    ),
    "fast": (
        "one-minute's recipe (512 completions a step, learning rate 1e-5, 20 steps) with packed micro-batches that "
        "compute each prompt once, micro-batches and generation rows sized to the GPU's memory ('auto'), for at "
        "most 40 s of training; half one-minute's memory (34.5 GiB on an H100), but its packed update is slower, "
        "so it trains fewer steps (6 in 38.3 s, +11 points): one-minute learns quicker",
        {
            "grpo.per_device_train_batch_size": "auto",
            "grpo.generation_batch_size": 512,
            "grpo.learning_rate": 1.0e-5,
            "grpo.max_steps": 20,
            "grpo.warmup_steps": 1,
            "generation.share_prefill": True,
            "generation.max_rows": "auto",
            "update.packing": True,
            "update.share_prompts": True,
            "grpo.save_steps": 20,
            "max_train_seconds": 40,
        },
    ),
}


def preset_overrides(names: list[str]) -> dict[str, Any]:
    """The merged overrides of ``names`` (later presets win on shared keys).

    Example:
        >>> preset_overrides(["full-bf16", "gradient-checkpointing"])
        {'model.dtype': 'bfloat16', 'grpo.gradient_checkpointing': True}
        >>> preset_overrides(["lora-8gb"])
        Traceback (most recent call last):
        ...
        ahazero.config.schema.ConfigError: unknown preset 'lora-8gb' (did you mean 'lora-24gb'?); valid choices: ...
    """
    merged: dict[str, Any] = {}
    for name in names:
        if name not in PRESETS:
            close = difflib.get_close_matches(name, list(PRESETS), n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise ConfigError(f"unknown preset '{name}'{hint}; valid choices: {', '.join(sorted(PRESETS))}")
        if name == "liger":
            _require_liger()
        merged.update({key: _copy(value) for key, value in PRESETS[name][1].items()})
    return merged


def preset_override_strings(names: list[str]) -> list[str]:
    """The presets as ``key=value`` command-line overrides (YAML values), in order.

    Example:
        >>> preset_override_strings(["gradient-checkpointing"])
        ['grpo.gradient_checkpointing=true']
    """
    return [f"{key}={flow_yaml(value)}" for key, value in preset_overrides(names).items()]


def preset_changes(cfg: ExperimentConfig, names: list[str]) -> list[str]:
    """The settings ``names`` would change in ``cfg`` (values the config already sets otherwise).

    Example:
        >>> from ahazero.config.schema import validate_dict
        >>> cfg = validate_dict({"name": "x", "model": {"name_or_path": "tiny"}, "task": {"name": "arithmetic"},
        ...                      "rewards": [{"name": "accuracy"}], "grpo": {"learning_rate": 5e-6}})
        >>> preset_changes(cfg, ["lora"])
        ['grpo.learning_rate 5e-06 -> 5e-05']
    """
    data = cfg.model_dump(mode="python")
    changes = []
    for key, value in preset_overrides(names).items():
        current: Any = data
        for part in key.split("."):
            current = current.get(part) if isinstance(current, dict) else None
        if current is not None and current != value:
            changes.append(f"{key} {current!r} -> {value!r}")
    return changes


def describe_presets() -> list[tuple[str, str]]:
    """``(name, description)`` for every preset, for ``ahazero presets``.

    Example:
        >>> describe_presets()[0][0]
        'full-bf16'
    """
    return [(name, description) for name, (description, _) in PRESETS.items()]


def _require_liger() -> None:
    import importlib.util

    if importlib.util.find_spec("liger_kernel") is None:
        raise ConfigError("preset 'liger' needs the liger-kernel package (pip install liger-kernel)")


def _copy(value: Any) -> Any:
    return dict(value) if isinstance(value, dict) else value
