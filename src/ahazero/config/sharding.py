"""Whether training shards the model's parameters, and which rollout backends survive it.

Under FSDP and DeepSpeed ZeRO-3 no process holds the whole model between forward passes:
FSDP gathers each layer's shards inside its own forward hooks, ZeRO-3 gathers every
parameter into freshly allocated memory for each rollout. The ``graph`` and ``compiled``
backends capture the decode step in a CUDA graph, which replays the memory addresses it saw
when it was captured; it cannot follow parameters that move. So under those strategies they
give way to ``hf`` (TRL's ``generate``, which runs inside the gathered model each time).
DDP and ZeRO-1/2 keep a whole, fixed copy of the parameters on every GPU and change nothing.

The strategy is read from what ``accelerate launch`` exports to each process
(``ACCELERATE_USE_FSDP``, ``ACCELERATE_USE_DEEPSPEED``, ``ACCELERATE_DEEPSPEED_ZERO_STAGE``,
``ACCELERATE_DEEPSPEED_CONFIG_FILE``) and from the ``grpo`` section's own ``fsdp`` and
``deepspeed`` fields.

Example:
    >>> sharding_in_use({}, env={"ACCELERATE_USE_DEEPSPEED": "true", "ACCELERATE_DEEPSPEED_ZERO_STAGE": "3"})
    'zero3'
    >>> backend_under_sharding("graph", "zero3")[0]
    'hf'
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = ["SHARDED", "backend_under_sharding", "sharding_in_use"]

#: Strategies whose parameters move between rollouts (``deepspeed``: a ZeRO stage that could not be read).
SHARDED = ("fsdp", "zero3", "deepspeed")

#: Backends that capture the decode step in a CUDA graph.
_CAPTURING = ("graph", "compiled")

_WHY = {
    "fsdp": "FSDP gathers the sharded parameters anew inside every forward and frees them after it",
    "zero3": "DeepSpeed ZeRO-3 gathers the sharded parameters into new memory for every rollout",
    "deepspeed": "DeepSpeed runs with a ZeRO stage that could not be read (ZeRO-3 would move the parameters)",
}


def _flag(value: str | None) -> bool:
    return str(value or "").strip().lower() in ("1", "true", "yes")


def _zero_stage(source: Any) -> str | None:
    """The ``zero_optimization.stage`` of a DeepSpeed config (a dict or a JSON file), else None."""
    if isinstance(source, (str, Path)) and str(source):
        try:
            source = json.loads(Path(source).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
    if isinstance(source, Mapping):
        stage = (source.get("zero_optimization") or {}).get("stage")
        return str(stage) if stage is not None else None
    return None


def sharding_in_use(grpo: Mapping[str, Any] | None = None, *, env: Mapping[str, str] | None = None) -> str | None:
    """The data-parallel strategy this process trains under: ``fsdp``, ``zero0``-``zero3``, ``deepspeed`` or None.

    ``None`` means plain data parallelism (DDP) or a single process.

    Example:
        >>> sharding_in_use({}, env={}) is None
        True
        >>> sharding_in_use({}, env={"ACCELERATE_USE_FSDP": "true"})
        'fsdp'
        >>> sharding_in_use({"deepspeed": {"zero_optimization": {"stage": 2}}}, env={})
        'zero2'
    """
    env = os.environ if env is None else env
    grpo = grpo or {}
    if _flag(env.get("ACCELERATE_USE_FSDP")) or grpo.get("fsdp"):
        return "fsdp"
    if _flag(env.get("ACCELERATE_USE_DEEPSPEED")) or grpo.get("deepspeed"):
        stage = env.get("ACCELERATE_DEEPSPEED_ZERO_STAGE") or _zero_stage(
            grpo.get("deepspeed") or env.get("ACCELERATE_DEEPSPEED_CONFIG_FILE"))
        return f"zero{stage}" if stage in ("0", "1", "2", "3") else "deepspeed"
    return None


def backend_under_sharding(backend: str, sharding: str | None) -> tuple[str, str | None]:
    """The rollout backend that works under ``sharding``, and a one-line warning when it changed.

    Example:
        >>> backend_under_sharding("graph", None), backend_under_sharding("graph", "zero2")
        (('graph', None), ('graph', None))
        >>> backend, why = backend_under_sharding("compiled", "fsdp")
        >>> backend, why.split(":")[0]
        ('hf', "generation.backend 'compiled' cannot run under FSDP")
    """
    if sharding not in SHARDED or backend not in _CAPTURING:
        return backend, None
    label = "FSDP" if sharding == "fsdp" else "ZeRO-3" if sharding == "zero3" else "DeepSpeed"
    return "hf", (f"generation.backend '{backend}' cannot run under {label}: {_WHY[sharding]}, so the CUDA "
                  "graph it captures would read stale memory; rollouts use 'hf' (TRL's generate) instead "
                  "(DDP and ZeRO-2 keep the fast backends)")
