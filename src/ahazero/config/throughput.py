"""Checks for the throughput settings: the graph sampler's options and length-sorted micro-batches.

``generation.share_prefill``, ``generation.compact_rows``, ``generation.max_rows``,
``generation.graph_mode`` and ``generation.grouped_attention`` belong
to the ``graph`` backend. Set with another backend named in the config, they are an error;
when ``auto`` picked another backend on this machine (``hf`` without a GPU), a warning says
they are not used.

``update.sort_by_length`` regroups an optimizer step's completions into micro-batches by
length, ``update.share_prompts`` by prompt. That leaves the gradient unchanged only when no
part of the loss is normalised per micro-batch; :func:`sort_by_length_blocker` names the
setting that prevents it. ``update.packing`` changes how a micro-batch is computed, not what
it holds, and is exact under every loss; ``update.share_prompts`` needs it.

Example:
    >>> from types import SimpleNamespace as NS
    >>> args = NS(loss_type="dapo", top_entropy_quantile=1.0, entropy_coef=0.0, use_adaptive_entropy=False,
    ...           steps_per_generation=4, gradient_accumulation_steps=4)
    >>> sort_by_length_blocker(args) is None
    True
    >>> sort_by_length_blocker(NS(**{**vars(args), "loss_type": "bnpo"}))
    "grpo.loss_type 'bnpo' normalises each micro-batch by its own token count"
"""

from __future__ import annotations

import logging
from typing import Any

from ahazero.config.schema import ConfigError, ExperimentConfig

__all__ = ["GRAPH_ONLY", "check_throughput_settings", "graph_settings_in_use", "sort_by_length_blocker"]

logger = logging.getLogger("ahazero.config.throughput")

#: ``generation`` settings only the ``graph`` backend reads, with their neutral values.
GRAPH_ONLY = {"share_prefill": False, "compact_rows": False, "max_rows": 0, "grouped_attention": True,
              "graph_mode": "capture"}


def graph_settings_in_use(cfg: ExperimentConfig) -> list[str]:
    """The graph-only ``generation`` settings this config changes from their defaults.

    Example:
        >>> from ahazero.config.schema import validate_dict
        >>> cfg = validate_dict({"name": "x", "model": {"name_or_path": "tiny"}, "task": {"name": "arithmetic"},
        ...     "rewards": [{"name": "accuracy"}], "generation": {"share_prefill": True}})
        >>> graph_settings_in_use(cfg)
        ['generation.share_prefill']
    """
    return [f"generation.{key}" for key, neutral in GRAPH_ONLY.items() if getattr(cfg.generation, key) != neutral]


def sort_by_length_blocker(args: Any) -> str | None:
    """Why regrouping micro-batches by length would change the gradient under these GRPO arguments, or None."""
    if args.loss_type == "bnpo":
        return "grpo.loss_type 'bnpo' normalises each micro-batch by its own token count"
    if getattr(args, "top_entropy_quantile", 1.0) < 1.0:
        return "grpo.top_entropy_quantile < 1 picks tokens by a quantile of each micro-batch"
    if getattr(args, "entropy_coef", 0.0) or getattr(args, "use_adaptive_entropy", False):
        return "the entropy bonus (grpo.entropy_coef, grpo.use_adaptive_entropy) averages over each micro-batch"
    if args.steps_per_generation % args.gradient_accumulation_steps:
        return (f"grpo.steps_per_generation ({args.steps_per_generation}) is not a multiple of "
                f"grpo.gradient_accumulation_steps ({args.gradient_accumulation_steps})")
    return None


def check_throughput_settings(cfg: ExperimentConfig, *, backend: str, grpo_args: Any) -> None:
    """Raise :class:`ConfigError` for a setting that cannot apply; warn when ``auto`` leaves one unused.

    Example:
        >>> from ahazero.config.schema import validate_dict
        >>> cfg = validate_dict({"name": "x", "model": {"name_or_path": "tiny"}, "task": {"name": "arithmetic"},
        ...     "rewards": [{"name": "accuracy"}], "generation": {"backend": "hf", "compact_rows": True}})
        >>> check_throughput_settings(cfg, backend="hf", grpo_args=None)
        Traceback (most recent call last):
        ...
        ahazero.config.schema.ConfigError: generation.compact_rows applies to the 'graph' backend only; \
generation.backend is 'hf' (use 'graph' or 'auto', or drop the setting)
    """
    used = graph_settings_in_use(cfg)
    if used and backend != "graph":
        if cfg.generation.backend != "auto":
            raise ConfigError(f"{used[0]} applies to the 'graph' backend only; generation.backend is "
                              f"'{cfg.generation.backend}' (use 'graph' or 'auto', or drop the setting)")
        logger.warning("%s: generation.backend 'auto' picked '%s' here, which does not use %s",
                       ", ".join(used), backend, "it" if len(used) == 1 else "them")
    if cfg.update.share_prompts and not cfg.update.packing:
        raise ConfigError("update.share_prompts shares prompts inside packed micro-batches: set update.packing: true "
                          "too, or drop update.share_prompts")
    for key in ("sort_by_length", "share_prompts"):
        reason = sort_by_length_blocker(grpo_args) if getattr(cfg.update, key) else None
        if reason:
            raise ConfigError(f"update.{key} would change the gradient: {reason}; "
                              f"drop update.{key} or change that setting")
