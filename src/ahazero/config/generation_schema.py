"""The ``generation:`` and ``update:`` sections of a config: how rollouts are generated and micro-batched.

Split from :mod:`ahazero.config.schema`, which re-exports both classes.

Example:
    >>> GenerationSettings().backend, GenerationSettings().grouped_attention
    ('auto', True)
    >>> UpdateSettings(sort_by_length=True).sort_by_length
    True
    >>> GenerationSettings(max_rows="auto").max_rows, UpdateSettings(packing=True, share_prompts=True).share_prompts
    ('auto', True)
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from ahazero.config.backend_choice import BACKENDS

__all__ = ["GenerationSettings", "UpdateSettings"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class GenerationSettings(_Strict):
    """Which code path generates the rollouts (see :mod:`ahazero.rollout.backends`)."""

    backend: Literal[BACKENDS] = Field(
        "auto",
        description=(
            "'auto' (fastest available: vllm if installed, else graph on a GPU, else hf), "
            "'hf' (TRL's default generate), 'compiled' (transformers' static cache + torch.compile), "
            "'graph' (ahazero's fixed-shape loop: one CUDA graph per token), "
            "'paged' (transformers continuous batching) or 'vllm' (colocated)."
        ),
    )
    prompt_bucket: int = Field(
        64,
        gt=0,
        description="'compiled'/'graph': left-pad prompts to a multiple of this many tokens for generation "
        "(not for the loss) so shapes repeat.",
    )
    share_prefill: bool = Field(
        False,
        description="'graph': prefill each distinct prompt once and copy its KV cache to its completions' rows "
        "(exact; saves prefill work when num_generations > 1).",
    )
    compact_rows: bool = Field(
        False,
        description="'graph': when at most a quarter of the rows are still generating, move them into a batch a "
        "quarter the size (exact), so long completions do not keep the whole batch decoding; each smaller "
        "batch compiles its own graph once.",
    )
    max_rows: int | Literal["auto"] = Field(
        0,
        description="'graph': generate at most this many rows at once, the batch in chunks (bounds the KV "
        "cache's memory; 0: the whole batch at once; 'auto': as many as the GPU's memory holds, chosen when "
        "training starts and written to the run's config).",
    )
    graph_mode: Literal["compile", "capture"] = Field(
        "capture",
        description="'graph': how the decode step becomes one CUDA graph per batch shape: 'capture' (recorded "
        "from the eager step, about a second per shape; needs sdpa attention, else it compiles) or 'compile' "
        "(torch.compile, fused kernels, ~30 s per shape).",
    )
    grouped_attention: bool = Field(
        True,
        description="'graph': decode steps of grouped-query models (e.g. Qwen2.5) read each key/value head once "
        "instead of transformers' sdpa copying it for every query head under a padding mask (exact; false: "
        "transformers' attention, for comparison).",
    )


    @field_validator("max_rows", mode="before")
    @classmethod
    def _rows_or_auto(cls, value: object) -> object:
        if value == "auto" or (isinstance(value, int) and not isinstance(value, bool) and value >= 0):
            return value
        raise ValueError("give 0 (the whole batch at once), a positive number of rows, or 'auto'")


class UpdateSettings(_Strict):
    """How the policy update's micro-batches are formed and computed (the loss itself is TRL's)."""

    sort_by_length: bool = Field(
        False,
        description="Sort each optimizer step's completions by length into its micro-batches and cut each "
        "micro-batch's padding columns: the same gradient with less padding computed (for losses that do "
        "not normalise per micro-batch).",
    )
    packing: bool = Field(
        False,
        description="Compute each log-prob pass on its micro-batch's tokens laid end to end in one row, each "
        "completion attending only to its own prompt and earlier tokens: no padding computed (exact).",
    )
    share_prompts: bool = Field(
        False,
        description="With packing: the completions of one prompt share one copy of it in a micro-batch, and each "
        "optimizer step's completions are grouped into micro-batches by prompt (exact; for losses that do not "
        "normalise per micro-batch).",
    )
    memory_gib: float | None = Field(
        None,
        gt=0.0,
        allow_inf_nan=False,
        description="GPU memory (GiB) that 'auto' sizes (grpo.per_device_train_batch_size, generation.max_rows) "
        "may plan with; default: the GPU's free memory when training starts. Set it when runs share a GPU.",
    )
