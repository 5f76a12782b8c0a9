"""``auto`` micro-batch sizes: ``grpo.per_device_train_batch_size`` and ``generation.max_rows`` from the GPU's memory.

``grpo.per_device_train_batch_size: auto`` splits each optimizer step's completions
(``grpo.generation_batch_size``) into the fewest micro-batches whose update fits the memory,
and sets ``gradient_accumulation_steps`` to match; ``generation.max_rows: auto`` generates as
many rows at once as fit (0: the whole batch). Both are chosen for the worst case (every
completion ``max_completion_length`` long) from :mod:`ahazero.config.memory_model`, with:

- the model's shape from its ``config.json`` (no weights are loaded),
- the longest prompt among the first :data:`PROMPT_SAMPLE` training prompts, rendered and tokenized,
- the memory: ``update.memory_gib`` when set, else the GPU's free memory when training starts
  (without a GPU: the machine's available memory).

:func:`resolve_auto_sizes` returns the config with numbers in place of ``auto`` and the
:class:`MemoryPlan` behind them; training logs the plan, writes the numbers to the run's
``config.yaml`` and the plan to ``run.json`` (``auto_sizes``), and a resumed run reuses them.

Example:
    >>> from ahazero.config.memory_model import ModelShape
    >>> shape = ModelShape(hidden=896, intermediate=4864, layers=24, heads=14, kv_heads=2, head_dim=64,
    ...                    vocab=151936, parameters=630_167_424)
    >>> from ahazero.config.schema import validate_dict
    >>> cfg = validate_dict({"name": "x", "model": {"name_or_path": "tiny"}, "task": {"name": "arithmetic"},
    ...     "rewards": [{"name": "accuracy"}], "update": {"packing": True, "share_prompts": True},
    ...     "grpo": {"per_device_train_batch_size": "auto", "generation_batch_size": 512, "num_generations": 16,
    ...              "max_completion_length": 256, "gradient_checkpointing": False}})
    >>> plan = plan_memory(cfg, shape, prompt_tokens=114, memory_bytes=79 * 2**30, cuda=True)
    >>> plan.per_device_train_batch_size, plan.gradient_accumulation_steps, plan.max_rows
    (128, 4, 0)
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ahazero.config.memory_model import (
    OVERHEAD_BYTES,
    OVERHEAD_SHARE,
    ModelShape,
    RowShape,
    choose_max_rows,
    choose_micro_batch,
    generation_bytes_per_row,
    persistent_bytes,
    update_bytes_per_row,
)
from ahazero.config.schema import ConfigError, ExperimentConfig, apply_overrides

__all__ = ["PROMPT_SAMPLE", "MemoryPlan", "auto_keys", "estimate_for_card", "local_model_folder", "longest_prompt",
           "model_shape", "plan_memory", "plan_record", "recorded_plan", "resolve_auto_sizes"]

logger = logging.getLogger("ahazero.training.auto_sizes")

#: Training prompts rendered and tokenized to find the longest.
PROMPT_SAMPLE = 256
GIB = 2**30


@dataclass
class MemoryPlan:
    """The sizes chosen (or given) and the memory estimate behind them, in GiB."""

    per_device_train_batch_size: int
    gradient_accumulation_steps: int
    max_rows: int
    memory_gib: float
    persistent_gib: float
    update_row_gib: float
    generation_row_gib: float
    update_peak_gib: float
    generation_peak_gib: float
    prompt_tokens: int
    completion_tokens: int
    source: str  # where the memory number came from

    @property
    def peak_gib(self) -> float:
        return max(self.update_peak_gib, self.generation_peak_gib)

    def describe(self) -> str:
        rows = "the whole batch" if self.max_rows == 0 else f"{self.max_rows} rows"
        return (f"micro-batches of {self.per_device_train_batch_size} x {self.gradient_accumulation_steps}, "
                f"generation {rows} at once; estimated peak {self.peak_gib:.1f} GiB (update "
                f"{self.update_peak_gib:.1f}, generation {self.generation_peak_gib:.1f}) of {self.memory_gib:.1f} GiB "
                f"({self.source}; rows of up to {self.prompt_tokens} + {self.completion_tokens} tokens)")


def auto_keys(cfg: ExperimentConfig) -> list[str]:
    """The settings of ``cfg`` that say ``auto``.

    Example:
        >>> from ahazero.config.schema import validate_dict
        >>> auto_keys(validate_dict({"name": "x", "model": {"name_or_path": "tiny"}, "task": {"name": "arithmetic"},
        ...     "rewards": [{"name": "accuracy"}], "generation": {"max_rows": "auto"}}))
        ['generation.max_rows']
    """
    keys = ["grpo.per_device_train_batch_size"] if cfg.grpo.get("per_device_train_batch_size") == "auto" else []
    return keys + (["generation.max_rows"] if cfg.generation.max_rows == "auto" else [])


def _weight_bytes(cfg: ExperimentConfig, cuda: bool) -> int:
    dtype = cfg.model.dtype
    return 4 if dtype == "float32" or (dtype == "auto" and not cuda) else 2


def _processes() -> int:
    return int(os.environ.get("WORLD_SIZE", "1") or 1)


def plan_memory(cfg: ExperimentConfig, shape: ModelShape, *, prompt_tokens: int, memory_bytes: float, cuda: bool,
                processes: int = 1, source: str = "given") -> MemoryPlan:
    """The sizes for ``cfg`` in ``memory_bytes`` (``auto`` chosen, numbers kept) and the estimated peaks.

    Raises :class:`ValueError` when not even one row fits.

    Example:
        >>> from ahazero.config.schema import validate_dict
        >>> cfg = validate_dict({"name": "x", "model": {"name_or_path": "tiny"}, "task": {"name": "arithmetic"},
        ...     "rewards": [{"name": "accuracy"}], "grpo": {"per_device_train_batch_size": 128,
        ...     "gradient_accumulation_steps": 4, "num_generations": 16, "gradient_checkpointing": False}})
        >>> shape = ModelShape(hidden=896, intermediate=4864, layers=24, heads=14, kv_heads=2, head_dim=64,
        ...                    vocab=151936, parameters=630_167_424)
        >>> round(plan_memory(cfg, shape, prompt_tokens=114, memory_bytes=80 * 2**30, cuda=True).update_peak_gib)
        79
    """
    grpo = cfg.grpo
    weight_bytes = _weight_bytes(cfg, cuda)
    generations = int(grpo.get("num_generations", 8))
    row = RowShape(prompt_tokens, int(grpo.get("max_completion_length", 256)), generations)
    lora = cfg.model.lora is not None
    persistent = persistent_bytes(shape, weight_bytes=weight_bytes, lora=lora)
    budget = memory_bytes * (1 - OVERHEAD_SHARE) - OVERHEAD_BYTES - persistent
    per_row = update_bytes_per_row(shape, row, weight_bytes=weight_bytes, packing=cfg.update.packing,
                                   share_prompts=cfg.update.share_prompts,
                                   checkpointing=bool(grpo.get("gradient_checkpointing", True)), lora=lora)
    if grpo.get("per_device_train_batch_size") == "auto":
        step = int(grpo["generation_batch_size"]) // processes
        micro = choose_micro_batch(step, budget=budget, per_row=per_row, generations=generations)
        accumulation = step // micro
    else:
        micro = int(grpo.get("per_device_train_batch_size", 8))
        accumulation = int(grpo.get("gradient_accumulation_steps", 1))
    generated = int(grpo.get("generation_batch_size") or micro * accumulation * processes) // processes
    gen_row = generation_bytes_per_row(shape, row, weight_bytes=weight_bytes, prompt_bucket=cfg.generation.prompt_bucket)
    # generation runs between updates: the optimizer state stays, the gradients are freed
    gen_persistent = persistent_bytes(shape, weight_bytes=weight_bytes, lora=True) + (
        0 if lora else 2 * shape.parameters * weight_bytes)
    if cfg.generation.max_rows == "auto":
        gen_budget = memory_bytes * (1 - OVERHEAD_SHARE) - OVERHEAD_BYTES - gen_persistent
        max_rows = choose_max_rows(generated, budget=gen_budget, per_row=gen_row, generations=generations)
    else:
        max_rows = int(cfg.generation.max_rows)
    at_once = max_rows or generated
    return MemoryPlan(
        per_device_train_batch_size=micro, gradient_accumulation_steps=accumulation, max_rows=max_rows,
        memory_gib=round(memory_bytes / GIB, 2), persistent_gib=round(persistent / GIB, 2),
        update_row_gib=round(per_row / GIB, 4), generation_row_gib=round(gen_row / GIB, 4),
        update_peak_gib=round((persistent + OVERHEAD_BYTES + micro * per_row) / GIB, 1),
        generation_peak_gib=round((gen_persistent + OVERHEAD_BYTES + at_once * gen_row) / GIB, 1),
        prompt_tokens=prompt_tokens, completion_tokens=row.completion_tokens, source=source)


def model_shape(name_or_path: str, *, local_only: bool = False) -> ModelShape | None:
    """The shape of a model from its ``config.json``; with ``local_only``, None unless it is already on disk.

    Example:
        >>> model_shape("tiny").layers
        2
    """
    from ahazero.models.loading import resolve_model_path

    folder = local_model_folder(name_or_path) if local_only else Path(resolve_model_path(name_or_path))
    if folder is not None and (folder / "config.json").is_file():
        return ModelShape.from_config(json.loads((folder / "config.json").read_text(encoding="utf-8")))
    return _hub_shape(name_or_path) if folder is None or not local_only else None


def local_model_folder(name_or_path: str) -> Path | None:
    """Where a model already on disk is, without fetching or converting anything: a named model's cache
    folder, or a local folder; None for a hub id (its files, if any, are in the hub's own cache).

    Example:
        >>> local_model_folder("Qwen/Qwen2.5-0.5B-Instruct") is None
        True
    """
    from ahazero.models.registry import NAMED_MODELS

    if name_or_path in NAMED_MODELS:
        from ahazero.cache.paths import cache_dir

        return cache_dir() / "models" / name_or_path
    path = Path(name_or_path).expanduser()
    return path if path.exists() or name_or_path.startswith((".", "/", "~")) else None


def _hub_shape(name_or_path: str) -> ModelShape | None:
    """A hub model's shape from the local hub cache (None when it is not there)."""
    try:
        from transformers import AutoConfig

        return ModelShape.from_config(AutoConfig.from_pretrained(name_or_path, local_files_only=True))
    except Exception:  # not cached, not a model id, or a config without the usual fields
        return None


def longest_prompt(cfg: ExperimentConfig, *, local_only: bool = False) -> int:
    """The longest of the first :data:`PROMPT_SAMPLE` training prompts, in tokens (the model's tokenizer).

    With ``local_only`` the tokenizer must already be on disk (nothing is fetched or converted:
    ``ahazero check`` loads no model); else :class:`FileNotFoundError`.

    Example:
        >>> from ahazero.config.schema import validate_dict
        >>> cfg = validate_dict({"name": "x", "model": {"name_or_path": "tiny"}, "task": {"name": "arithmetic"},
        ...                      "rewards": [{"name": "accuracy"}]})
        >>> 100 < longest_prompt(cfg) < 1000
        True
    """
    from transformers import AutoTokenizer

    from ahazero.config.validate import resolve_task
    from ahazero.models.loading import resolve_model_path
    from ahazero.tasks.prompts import render_prompt

    task = resolve_task(cfg)
    name = cfg.model.name_or_path
    if local_only:
        folder = local_model_folder(name)
        if folder is not None and not (folder / "config.json").is_file():
            raise FileNotFoundError(f"the model {name} is not on disk yet")
        source, kwargs = (str(folder), {}) if folder is not None else (name, {"local_files_only": True})
    else:
        source, kwargs = resolve_model_path(name), {}
    tokenizer = AutoTokenizer.from_pretrained(source, revision=cfg.model.revision,
                                              trust_remote_code=cfg.model.trust_remote_code, **kwargs)
    rows = task.load("train")
    longest = 1
    for i in range(min(len(rows), PROMPT_SAMPLE)):
        text, _ = render_prompt(rows[i]["problem"], template=cfg.prompt.template, tokenizer=tokenizer,
                                system_prompt=cfg.prompt.system_prompt, prefill_think=cfg.prompt.prefill_think)
        longest = max(longest, len(tokenizer(text, add_special_tokens=False)["input_ids"]))
    return longest


def _memory(cfg: ExperimentConfig, cuda: bool) -> tuple[float, str]:
    if cfg.update.memory_gib is not None:
        return cfg.update.memory_gib * GIB, "update.memory_gib"
    if cuda:
        import torch

        free, _ = torch.cuda.mem_get_info()
        return float(free), "free GPU memory"
    pages = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    return float(pages), "available memory (no GPU)"


def resolve_auto_sizes(cfg: ExperimentConfig, *, cuda: bool, previous: dict[str, Any] | None = None,
                       quiet: bool = False) -> tuple[ExperimentConfig, MemoryPlan | None]:
    """``cfg`` with its ``auto`` sizes chosen (unchanged when it has none) and the plan behind them.

    ``previous`` is a plan this run recorded before (``run.json``'s ``auto_sizes``): a resumed
    run keeps its sizes (``quiet``: without saying so again). Not even one row fitting is a
    :class:`~ahazero.config.schema.ConfigError`.

    Example:
        >>> cfg2, plan = resolve_auto_sizes(cfg, cuda=True)   # doctest: +SKIP
        >>> cfg2.grpo["per_device_train_batch_size"]          # doctest: +SKIP
        128
    """
    keys = auto_keys(cfg)
    if not keys:
        return cfg, None
    if previous:
        plan = MemoryPlan(**{k: previous[k] for k in MemoryPlan.__dataclass_fields__})
        if not quiet:
            logger.info("auto sizes as this run first chose them: %s", plan.describe())
    else:
        shape = model_shape(cfg.model.name_or_path)
        if shape is None:
            raise ConfigError(f"{keys[0]}: 'auto' needs the model's config.json ({cfg.model.name_or_path} has none); "
                              "give a number instead")
        memory, source = _memory(cfg, cuda)
        try:
            plan = plan_memory(cfg, shape, prompt_tokens=longest_prompt(cfg), memory_bytes=memory, cuda=cuda,
                               processes=_processes(), source=source)
        except ValueError as err:
            raise ConfigError(f"{keys[0]} 'auto': {err}; use gradient checkpointing, LoRA, shorter completions or "
                              "a smaller step, or free GPU memory") from None
        logger.info("auto sizes: %s", plan.describe())
    changes: dict[str, Any] = {}
    if "grpo.per_device_train_batch_size" in keys:
        changes["grpo.per_device_train_batch_size"] = plan.per_device_train_batch_size
        changes["grpo.gradient_accumulation_steps"] = plan.gradient_accumulation_steps
    if "generation.max_rows" in keys:
        changes["generation.max_rows"] = plan.max_rows
    return apply_overrides(cfg, changes), plan


def estimate_for_card(cfg: ExperimentConfig, *, card_gib: float, prompt_tokens: int | None = None,
                      cuda: bool = True) -> MemoryPlan | str:
    """The plan ``cfg`` gets on a card of ``card_gib`` (its ``auto`` sizes chosen there), or why there is none.

    Only what is already on disk is read (the model's ``config.json``, its tokenizer);
    ``prompt_tokens`` skips measuring the prompts (:func:`longest_prompt`).

    Example:
        >>> from ahazero.config.schema import validate_dict
        >>> cfg = validate_dict({"name": "x", "model": {"name_or_path": "tiny"}, "task": {"name": "arithmetic"},
        ...     "rewards": [{"name": "accuracy"}], "grpo": {"per_device_train_batch_size": "auto",
        ...     "generation_batch_size": 64, "num_generations": 4}})
        >>> plan = estimate_for_card(cfg, card_gib=80, prompt_tokens=300)
        >>> plan.per_device_train_batch_size, plan.peak_gib < 80
        (64, True)
    """
    shape = model_shape(cfg.model.name_or_path, local_only=True)
    if shape is None:
        return f"the model {cfg.model.name_or_path} is not on disk yet (`ahazero fetch-model` or a first run reads it)"
    if prompt_tokens is None:
        try:
            prompt_tokens = longest_prompt(cfg, local_only=True)
        except Exception as err:  # the tokenizer or the task data are not readable here
            return f"the prompts could not be measured ({type(err).__name__}: {err})"
    try:
        return plan_memory(cfg, shape, prompt_tokens=prompt_tokens, memory_bytes=card_gib * GIB, cuda=cuda,
                           processes=_processes(), source=f"a {card_gib:g} GiB card")
    except ValueError as err:
        return f"does not fit: {err}"


def recorded_plan(info: Path) -> dict[str, Any] | None:
    """The ``auto_sizes`` a run's ``run.json`` recorded (None when there is none or the file is unreadable).

    Example:
        >>> import tempfile
        >>> recorded_plan(Path(tempfile.mkdtemp()) / "run.json") is None
        True
    """
    try:
        plan = json.loads(info.read_text(encoding="utf-8")).get("auto_sizes")
    except (OSError, ValueError, AttributeError):
        return None
    return plan if isinstance(plan, dict) and set(MemoryPlan.__dataclass_fields__) <= set(plan) else None


def plan_record(plan: MemoryPlan | None) -> dict[str, Any]:
    """``{"auto_sizes": ...}`` for ``run.json`` (empty without a plan).

    Example:
        >>> plan_record(None)
        {}
    """
    return {"auto_sizes": asdict(plan)} if plan is not None else {}
