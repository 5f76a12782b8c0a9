"""The ``sft:`` and ``stages:`` sections of a config (used by :mod:`ahazero.stages`).

``sft`` names the samples file ``ahazero sft`` trains on and passes every other key to
``trl.SFTConfig`` (checked against its fields before any model loads). ``stages`` is a list of
stages run in order, each in its own run directory ``<output_root>/<name>/<stage>``.

Example:
    >>> StageSpec(name="rl", kind="grpo", overrides={"grpo.max_steps": 30}).model is None
    True
    >>> StageSpec(name="s", kind="grpo", n=8)
    Traceback (most recent call last):
    ...
    pydantic_core._pydantic_core.ValidationError: 1 validation error for StageSpec
    ...
    >>> StageSpec(name="c", kind="coldstart", n=400, style="reflective", slip_kinds=["carry", "swap"]).slip_kinds
    ['carry', 'swap']
    >>> SFTSection(data="samples.jsonl", num_train_epochs=2).args()
    {'num_train_epochs': 2}
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

__all__ = ["COLDSTART_STYLES", "RESERVED_STAGE_NAMES", "SLIP_KINDS", "STAGE_KINDS", "STAGE_OWNED_KEYS", "SFTSection",
           "StageSpec", "unique_stage_names"]

#: What a stage may run.
STAGE_KINDS = ("grpo", "sft", "sample", "coldstart")

#: Names a stage may not take: what the stages run's own folder holds (its report, config and run record),
#: and what makes a folder a run (``ahazero.config.run_paths.RUN_ENTRIES``).
RESERVED_STAGE_NAMES = frozenset({"config.yaml", "run.json", "report.md", "report", "stage.json", "metrics.jsonl",
                                  "traces", "checkpoints", "model", "tensorboard", "eval", "sweep.log", "eval.log"})

#: How a cold-start set is written (see :mod:`ahazero.stages.reflective`).
COLDSTART_STYLES = ("plain", "checked", "reflective")

#: The slips a reflective cold-start set makes (and catches).
SLIP_KINDS = ("carry", "sign", "swap")

#: Stage fields that only some kinds read: field -> kinds.
_FIELD_KINDS: dict[str, tuple[str, ...]] = {
    "model": ("grpo", "sft", "sample"),
    "data": ("sft",),
    "n": ("sample", "coldstart"),
    "max_per_prompt": ("sample",),
    "prompts": ("sample",),
    "split": ("sample",),
    "min_language": ("sample",),
    "eval": ("grpo", "sft"),
    "style": ("coldstart",),
    "slip_fraction": ("coldstart",),
    "slip_kinds": ("coldstart",),
    "train_on_slips": ("coldstart",),
    "seed": ("coldstart",),
}

#: Config keys a stage's ``overrides`` may not set, and why.
STAGE_OWNED_KEYS: dict[str, str] = {
    "name": "the stage's run directory is <output_root>/<name>/<stage>",
    "output_root": "the stage's run directory is <output_root>/<name>/<stage>",
    "stages": "stages do not nest",
    "cpu_overrides": "give the CPU profile at the top level (e.g. 'stages.0.n: 2')",
    "model.name_or_path": "use the stage's 'model' (previous | base | a stage name | a model)",
    "sft.data": "use the stage's 'data' (a sample or coldstart stage, or a file)",
}


class SFTSection(BaseModel):
    """``sft:``: what ``ahazero sft`` trains on; every other key is passed through to ``trl.SFTConfig``."""

    model_config = ConfigDict(extra="allow")

    data: str | None = Field(
        None, description="Samples JSONL to train on (from `ahazero sample` or `ahazero coldstart`)."
    )

    def args(self) -> dict[str, Any]:
        """The ``trl.SFTConfig`` settings: every key but ``data``."""
        return dict(self.model_extra or {})


class StageSpec(BaseModel):
    """One stage of a ``stages:`` pipeline: what it runs, on which model, with which changes."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)

    name: str = Field(description="Stage name; its run directory is <output_root>/<name>/<stage name>.")
    kind: Literal[STAGE_KINDS] = Field(
        description="'grpo' (train with GRPO), 'sft' (supervised fine-tuning on a samples file), "
        "'sample' (rejection sampling from a model) or 'coldstart' (write the long chain-of-thought set)."
    )
    model: str | None = Field(
        None,
        description="grpo/sft/sample: 'previous' (the default: the last grpo/sft stage's model, else the "
        "config's), 'base' (the config's model), an earlier stage's name, or a model path / name.",
    )
    data: str | None = Field(
        None, description="sft: a sample or coldstart stage's name, or a samples file (default: the last one before)."
    )
    n: int | None = Field(None, gt=0, description="sample: completions per prompt (8); coldstart: examples (300).")
    max_per_prompt: int | None = Field(None, gt=0, description="sample: kept completions per prompt at most (1).")
    prompts: int | None = Field(None, gt=0, description="sample: only the first N prompts of the split (all).")
    split: Literal["train", "test"] | None = Field(None, description="sample: the task split to sample ('train').")
    min_language: float | None = Field(
        None, ge=0.0, le=1.0, description="sample: least language consistency of a kept completion (1.0)."
    )
    eval: bool | None = Field(
        None, description="grpo/sft: evaluate the stage's final model on the held-out split (default true)."
    )
    style: Literal[COLDSTART_STYLES] | None = Field(
        None,
        description="coldstart: 'checked' (the default: worked steps, a line that undoes each step, the answer), "
        "'reflective' (worked steps, the answer, then a check by a second route; in slip_fraction of the traces a "
        "slip in a step that the check catches, says in words and corrects) or 'plain' (the reflective set's "
        "steps and answer without any check: its matched control).",
    )
    slip_fraction: float | None = Field(
        None, ge=0.0, le=1.0, description="coldstart, style reflective: share of the traces with a slip (0.3)."
    )
    slip_kinds: list[Literal[SLIP_KINDS]] | None = Field(
        None, min_length=1,
        description="coldstart, style reflective: the slips to make, any of carry (a carry or borrow dropped), "
        "sign (a sign lost or flipped), swap (two digits of a result swapped); default all three, in equal shares.",
    )
    train_on_slips: bool | None = Field(
        None,
        description="coldstart, style reflective: whether SFT trains on the slipped step's line (default true). "
        "false: the line is kept in the trace but left out of the loss, so the model learns to check, catch and "
        "redo a slip without learning to write one.",
    )
    seed: int | None = Field(
        None, description="coldstart: seed of the choice of problems and of the slips (default: the config's seed)."
    )
    overrides: dict[str, Any] = Field(
        default_factory=dict, description="Dotted overrides of the config for this stage (e.g. grpo.max_steps: 30)."
    )

    @field_validator("name")
    @classmethod
    def _safe_name(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", value):
            raise ValueError("use letters, digits, '.', '_' and '-' only, starting with a letter or digit")
        if value in ("base", "previous"):
            raise ValueError(f"'{value}' is taken: 'base' and 'previous' are values of a stage's 'model'")
        if value in RESERVED_STAGE_NAMES:
            raise ValueError(f"'{value}' is taken by a file or folder of the stages run itself (<output_root>/<name>/"
                             f"{value}); reserved: {', '.join(sorted(RESERVED_STAGE_NAMES))}")
        return value

    @model_validator(mode="after")
    def _fields_fit_the_kind(self) -> StageSpec:
        for key, kinds in _FIELD_KINDS.items():
            if getattr(self, key) is not None and self.kind not in kinds:
                raise ValueError(f"'{key}' does not apply to a {self.kind} stage (only to: {', '.join(kinds)})")
        for key in self.overrides:
            reason = STAGE_OWNED_KEYS.get(key) or STAGE_OWNED_KEYS.get(key.split(".")[0])
            if reason:
                raise ValueError(f"overrides may not set '{key}': {reason}")
        for key in ("slip_fraction", "slip_kinds", "train_on_slips"):
            if getattr(self, key) is not None and self.style != "reflective":
                raise ValueError(f"'{key}' applies only to style 'reflective' (this stage's style is "
                                 f"'{self.style or 'checked'}')")
        if self.slip_kinds is not None and len(set(self.slip_kinds)) != len(self.slip_kinds):
            raise ValueError(f"slip_kinds repeats a kind: {', '.join(self.slip_kinds)}")
        return self

    @property
    def evaluates(self) -> bool:
        """Whether this stage evaluates its final model (grpo and sft stages, unless ``eval: false``)."""
        return self.kind in ("grpo", "sft") and self.eval is not False


def unique_stage_names(value: list[StageSpec]) -> list[StageSpec]:
    """Reject a stage list that repeats a name (the validator of ``ExperimentConfig.stages``).

    Example:
        >>> unique_stage_names([StageSpec(name="a", kind="grpo"), StageSpec(name="a", kind="sft")])
        Traceback (most recent call last):
        ...
        ValueError: stage names must be unique; repeated: a
    """
    names = [stage.name for stage in value]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ValueError(f"stage names must be unique; repeated: {', '.join(repeated)}")
    return value
