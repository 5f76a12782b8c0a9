"""Experiment configuration: one typed schema, YAML loading, command-line overrides, validation.

A config is one YAML file per experiment. Everything TRL owns lives under ``grpo:`` and is
passed through to ``trl.GRPOConfig`` (unknown keys are errors); everything else is ours.

Example:
    >>> cfg = ExperimentConfig.model_validate({
    ...     "name": "demo",
    ...     "model": {"name_or_path": "tiny"},
    ...     "task": {"name": "arithmetic", "max_terms": 2},
    ...     "rewards": [{"name": "accuracy", "weight": 1.0}],
    ... })
    >>> cfg.task.options()
    {'max_terms': 2}
    >>> apply_overrides(cfg, ["grpo.learning_rate=3e-6"]).grpo
    {'learning_rate': 3e-06}
"""

from __future__ import annotations

import difflib
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from ahazero.config.generation_schema import GenerationSettings, UpdateSettings
from ahazero.config.stage_schema import SFTSection, StageSpec, unique_stage_names
from ahazero.config.yaml_load import YamlLoadError, parse_yaml_text, read_yaml_file

__all__ = [
    "CollapseSettings",
    "ConfigError",
    "ExperimentConfig",
    "GenerationSettings",
    "GroupSettings",
    "LoggingConfig",
    "LoraConfig",
    "MAX_NAME_LENGTH",
    "ModelConfig",
    "PromptConfig",
    "RewardSpec",
    "SFTSection",
    "StageSpec",
    "TaskSpec",
    "UpdateSettings",
    "apply_overrides",
    "load_config",
]


#: The longest run name (a folder name; files and folders are named after it).
MAX_NAME_LENGTH = 100


class ConfigError(ValueError):
    """A config mistake, reported with the dotted key that is wrong and what would be valid."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class LoraConfig(_Strict):
    """LoRA adapter settings (peft). Omit the section for a full fine-tune."""

    r: int = Field(16, gt=0, description="LoRA rank.")
    alpha: int = Field(32, gt=0, description="LoRA scaling numerator (lora_alpha).")
    dropout: float = Field(0.05, ge=0.0, lt=1.0, description="Dropout on the LoRA branch.")
    target_modules: list[str] | Literal["all-linear"] = Field(
        "all-linear", description="Module names to adapt, or 'all-linear'."
    )


class ModelConfig(_Strict):
    """Which model to train and how to load it."""

    name_or_path: str = Field(
        description=(
            "A hub id (Qwen/Qwen2.5-0.5B-Instruct), a local model folder, a local .gguf file, "
            "or a named model from `ahazero models` (e.g. 'tiny')."
        )
    )
    dtype: Literal["auto", "bfloat16", "float16", "float32"] = Field(
        "auto", description="Weights dtype; 'auto' is bfloat16 on a GPU that supports it, else float32."
    )
    revision: str | None = Field(None, description="Hub revision (branch, tag or commit).")
    trust_remote_code: bool = Field(False, description="Allow model code from the hub.")
    lora: LoraConfig | None = Field(None, description="LoRA settings; omit for a full fine-tune.")


class TaskSpec(BaseModel):
    """``{name, **options}``: a registered task and its options (see `ahazero tasks`)."""

    model_config = ConfigDict(extra="allow")

    name: str = Field(description="Task name from the registry (see `ahazero tasks`).")

    def options(self) -> dict[str, Any]:
        """The task options: every key but ``name``."""
        return dict(self.model_extra or {})


class RewardSpec(BaseModel):
    """``{name, weight, **kwargs}``: a registry reward or a ``module:function`` path."""

    model_config = ConfigDict(extra="allow")

    name: str = Field(description="Reward name from the registry (see `ahazero rewards`) or 'module:function'.")
    weight: float = Field(1.0, allow_inf_nan=False,
                          description="Weight of this reward in the total; 0 logs it as a diagnostic only.")

    def kwargs(self) -> dict[str, Any]:
        """The reward's own options: every key but ``name`` and ``weight``."""
        return dict(self.model_extra or {})


class PromptConfig(_Strict):
    """How a task's problem becomes the text the model continues."""

    template: Literal["chat", "r1_zero"] = Field(
        "chat",
        description=(
            "'chat': the tokenizer's chat template with a system prompt (instruct models); "
            "'r1_zero': the plain-text R1-Zero template (base models)."
        ),
    )
    system_prompt: str | None = Field(
        None, description="System prompt for 'chat'; default: the R1 instructions on <think>/<answer> tags."
    )
    prefill_think: bool = Field(
        True, description="Start the assistant turn with '<think>' so the model begins by thinking."
    )


class LoggingConfig(_Strict):
    """Where metrics go and how much of each step is traced."""

    report_to: list[str] = Field(
        default_factory=lambda: ["tensorboard"],
        description="Trackers: any of tensorboard, wandb, trackio; [] or ['none'] for none.",
    )
    traces: bool = Field(True, description="Write per-completion traces to runs/<name>/traces/.")
    trace_sample_rate: float = Field(
        1.0, gt=0.0, le=1.0, description="Share of completions traced per logged step."
    )
    reflection_phrases: list[str] | None = Field(
        None, description="Phrases counted as self-reflection; default: the R1 paper's list."
    )

    @field_validator("report_to", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value


class GroupSettings(_Strict):
    """GRPO groups (the completions of one prompt) whose reward does not vary: kept as TRL does, or dropped."""

    zero_variance: Literal["keep", "drop"] = Field(
        "keep",
        description="'keep' (TRL): every group enters the loss; 'drop' (DAPO's dynamic sampling, without "
        "resampling): a group in which every completion got the same `groups.reward` is masked out of the loss, "
        "so rewards that still vary there (format, language) cannot move the policy on their own.",
    )
    reward: str = Field(
        "accuracy",
        min_length=1,
        description="The reward whose spread decides, by its metric name (rewards/<name>/mean: a registry name "
        "or a function's name), or 'total' (the weighted sum). Its share of zero-variance groups is logged as "
        "behaviour/zero_variance_groups.",
    )


class CollapseSettings(_Strict):
    """Thresholds of the collapse alarm (see :mod:`ahazero.observe.collapse`): early steps vs the last window."""

    baseline_steps: int = Field(10, ge=2, description="The first N logged steps are the early level.")
    window: int = Field(20, ge=2, description="The last N logged steps are compared with the early level.")
    format_rise: float = Field(
        0.2, gt=0.0, le=1.0, description="Format collapse needs the format rate up by at least this (absolute)."
    )
    accuracy_drop: float = Field(
        0.25, gt=0.0, lt=1.0,
        description="...and accuracy below (1 - this) x its early level, by at least `min_z` standard errors.",
    )
    min_z: float = Field(3.0, ge=0.0, description="How many standard errors the accuracy fall must span.")
    think_drop: float = Field(
        0.5, gt=0.0, lt=1.0,
        description="Thinking collapse: closed think blocks shorter than this x their early length...",
    )
    think_answer_ratio: float = Field(
        4.0, gt=0.0, description="...and at most this many times as long as the answer after </think>."
    )


class ExperimentConfig(_Strict):
    """One experiment: model, task, prompt, rewards, logging and TRL's GRPO settings."""

    name: str = Field(description="Run name; the run directory is <output_root>/<name>.")
    output_root: str = Field(
        "runs", description="Folder that holds run directories (relative to the working folder, or absolute)."
    )
    seed: int = Field(0, description="Seed for data, sampling and initialisation.")
    model: ModelConfig
    task: TaskSpec
    prompt: PromptConfig = Field(default_factory=PromptConfig)
    rewards: list[RewardSpec] = Field(min_length=1, description="Reward functions and weights.")
    generation: GenerationSettings = Field(default_factory=GenerationSettings)
    update: UpdateSettings = Field(default_factory=UpdateSettings)
    logging: LoggingConfig = Field(default_factory=LoggingConfig)
    grpo: dict[str, Any] = Field(
        default_factory=dict, description="Passed through to trl.GRPOConfig (any of its fields)."
    )
    on_nonfinite: Literal["skip", "stop"] = Field(
        "skip", description="A NaN/inf gradient: 'skip' that update, or 'stop' the run (never applied)."
    )
    on_reward_error: Literal["stop", "skip"] = Field(
        "stop", description="A custom (module:function) reward that raises, exits or returns something other than "
        "one finite number or None per completion: 'stop' the run with 'reward error: ...' (exit code 2), or "
        "'skip': log it and score that batch None for this reward."
    )
    groups: GroupSettings = Field(default_factory=GroupSettings)
    on_collapse: Literal["warn", "stop", "off"] = Field("warn", description="Format or thinking collapse (see "
        "`collapse`): 'warn' (one WARNING line), 'stop' the run cleanly with a checkpoint, or 'off'.")
    collapse: CollapseSettings = Field(default_factory=CollapseSettings)
    max_train_seconds: float | None = Field(None, gt=0.0, allow_inf_nan=False, description="Training time budget: "
        "end cleanly (final model written) before a step would end past it (seconds of training); None: no limit.")
    cpu_overrides: dict[str, Any] = Field(
        default_factory=dict,
        description="Dotted overrides applied when no GPU is present (the recipe's CPU profile).",
    )
    sft: SFTSection = Field(
        default_factory=SFTSection, description="`ahazero sft`: the samples file; other keys go to trl.SFTConfig."
    )
    stages: list[StageSpec] = Field(
        default_factory=list, description="Stages run in order by `ahazero stages`, each in its own run directory."
    )

    @field_validator("name")
    @classmethod
    def _safe_name(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", value):
            raise ValueError("use letters, digits, '.', '_' and '-' only, starting with a letter or digit")
        if len(value) > MAX_NAME_LENGTH:
            raise ValueError(f"a run name has at most {MAX_NAME_LENGTH} characters (this one has {len(value)})")
        return value

    @field_validator("output_root")
    @classmethod
    def _plain_root(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("give a folder, e.g. 'runs'")
        if value.startswith("~"):
            raise ValueError("'~' is not expanded here; write the folder out in full (e.g. /home/me/runs)")
        if any(ord(c) < 32 or ord(c) == 127 for c in value):
            raise ValueError("a folder name cannot hold control characters")
        return value

    _unique_stage_names = field_validator("stages")(unique_stage_names)

    @property
    def run_dir(self) -> Path:
        """The run directory, ``<output_root>/<name>``."""
        return Path(self.output_root) / self.name


def _format_validation_error(err: ValidationError, model: type[BaseModel]) -> str:
    lines = []
    for item in err.errors():
        loc = ".".join(str(part) for part in item["loc"])
        if item["type"] == "extra_forbidden":
            parent = _model_at(model, item["loc"][:-1])
            valid = sorted(parent.model_fields) if parent is not None else []
            bad = str(item["loc"][-1])
            hint = difflib.get_close_matches(bad, valid, n=1)
            msg = f"unknown key '{loc}'"
            if hint:
                msg += f" (did you mean '{hint[0]}'?)"
            msg += f"; valid keys here: {', '.join(valid)}"
        elif item["type"] == "missing":
            msg = f"missing required key '{loc}'"
        elif item["type"] == "literal_error":
            msg = f"bad value for '{loc}': {item['msg']}"
        else:
            msg = f"bad value for '{loc}' ({_short_repr(item.get('input'))}): {item['msg'].removeprefix('Value error, ')}"
        lines.append(msg)
    return "; ".join(lines)


def _short_repr(value: Any, limit: int = 60) -> str:
    """``repr(value)``, its middle cut when longer than ``limit`` characters."""
    text = repr(value)
    if len(text) <= limit:
        return text
    return f"{text[: limit // 2]}...{text[-limit // 4:]}"


def _model_at(model: type[BaseModel], loc: tuple[Any, ...]) -> type[BaseModel] | None:
    """Walk a pydantic model class along a validation-error location."""
    current: Any = model
    for part in loc:
        if isinstance(part, int):
            continue
        if not (isinstance(current, type) and issubclass(current, BaseModel)):
            return None
        field = current.model_fields.get(str(part))
        if field is None:
            return None
        current = _unwrap(field.annotation)
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def _unwrap(annotation: Any) -> Any:
    for arg in getattr(annotation, "__args__", ()) or ():
        if isinstance(arg, type) and issubclass(arg, BaseModel):
            return arg
        inner = _unwrap(arg)
        if inner is not None and isinstance(inner, type) and issubclass(inner, BaseModel):
            return inner
    return annotation


def validate_dict(data: Any) -> ExperimentConfig:
    """Validate a plain mapping into an :class:`ExperimentConfig`, raising :class:`ConfigError`.

    Example:
        >>> validate_dict({"name": "x", "model": {"name_or_path": "tiny"}, "task": {"name": "arithmetic"},
        ...                "rewards": [{"name": "accuracy"}], "modle": {}})
        Traceback (most recent call last):
        ...
        ahazero.config.schema.ConfigError: unknown key 'modle' (did you mean 'model'?); valid keys here: ...
    """
    if not isinstance(data, dict):
        raise ConfigError(f"a config must be a mapping of keys to values, got {type(data).__name__}")
    try:
        return ExperimentConfig.model_validate(data)
    except ValidationError as err:
        raise ConfigError(_format_validation_error(err, ExperimentConfig)) from None


def parse_override(text: str) -> tuple[list[str], Any]:
    """Split ``a.b.c=value`` into its key path and a YAML-parsed value.

    Example:
        >>> parse_override("grpo.learning_rate=1e-6")
        (['grpo', 'learning_rate'], 1e-06)
        >>> parse_override("rewards.0.weight=0.5")
        (['rewards', '0', 'weight'], 0.5)
    """
    if "=" not in text:
        raise ConfigError(f"override '{text}' must look like key.path=value")
    key, raw = text.split("=", 1)
    key = key.strip()
    if not key or any(not part for part in key.split(".")):
        raise ConfigError(f"override '{text}' has an empty key")
    try:
        value = parse_yaml_text(raw, f"override '{text}'") if raw.strip() else ""
    except YamlLoadError as err:
        raise ConfigError(str(err)) from None
    # YAML 1.1 reads 1e-6 as a string; numbers in scientific notation are what people type.
    if isinstance(value, str):
        try:
            value = float(value) if re.fullmatch(r"[-+]?\d+(\.\d*)?[eE][-+]?\d+", value) else value
        except ValueError:
            pass
    return key.split("."), value


def _set_path(data: Any, path: list[str], value: Any, full: str) -> None:
    node = data
    for i, part in enumerate(path):
        last = i == len(path) - 1
        where = ".".join(path[: i + 1])
        if isinstance(node, list):
            if not part.isdigit() or int(part) >= len(node):
                raise ConfigError(f"override '{full}': '{where}' is not an index of a {len(node)}-item list")
            if last:
                node[int(part)] = value
            else:
                node = node[int(part)]
        elif isinstance(node, dict):
            if last:
                node[part] = value
            else:
                node = node.setdefault(part, {})
        else:
            raise ConfigError(f"override '{full}': '{'.'.join(path[:i])}' is not a section")


def apply_overrides(cfg: ExperimentConfig, overrides: list[str] | dict[str, Any]) -> ExperimentConfig:
    """Return a new config with dotted overrides applied and the result re-validated.

    Example:
        >>> cfg = validate_dict({"name": "x", "model": {"name_or_path": "tiny"},
        ...                      "task": {"name": "arithmetic"}, "rewards": [{"name": "accuracy"}]})
        >>> apply_overrides(cfg, ["rewards.0.weight=2", "name=y"]).rewards[0].weight
        2.0
    """
    data = _drop_empty_sections(cfg.model_dump(mode="python"))
    items = overrides.items() if isinstance(overrides, dict) else [parse_override(o) for o in overrides]
    for key, value in items:
        path = key.split(".") if isinstance(key, str) else key
        _set_path(data, path, value, ".".join(path))
    return validate_dict(data)


def _drop_empty_sections(data: dict[str, Any]) -> dict[str, Any]:
    """Drop optional sections that are unset (``model.lora: null``) from a dumped config."""
    if data["model"].get("lora") is None:
        data["model"].pop("lora", None)
    if data.get("sft") == {"data": None}:
        data.pop("sft")
    if data.get("stages") == []:
        data.pop("stages")
    for stage in data.get("stages") or []:
        for key in [k for k, v in stage.items() if v is None or (k == "overrides" and not v)]:
            stage.pop(key)
    return data


def load_config(path: str | Path, overrides: list[str] | None = None) -> ExperimentConfig:
    """Load a YAML config, apply ``key.path=value`` overrides, validate the schema.

    Cross-checks that need the registries (rewards, tasks, GRPO settings) live in
    :func:`ahazero.config.validate.check_config`.

    Example:
        >>> import tempfile, pathlib
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "c.yaml"
        >>> _ = p.write_text("name: x\\nmodel: {name_or_path: tiny}\\ntask: {name: arithmetic}\\n"
        ...                  "rewards: [{name: accuracy}]\\n")
        >>> load_config(p, ["seed=3"]).seed
        3
    """
    try:
        data = read_yaml_file(path)
    except YamlLoadError as err:
        raise ConfigError(str(err)) from None
    cfg = validate_dict(data)
    return apply_overrides(cfg, overrides) if overrides else cfg


def dump_config(cfg: ExperimentConfig) -> str:
    """The resolved config as YAML text (what a run directory records).

    Example:
        >>> cfg = validate_dict({"name": "x", "model": {"name_or_path": "tiny"},
        ...                      "task": {"name": "arithmetic"}, "rewards": [{"name": "accuracy"}]})
        >>> "name: x" in dump_config(cfg)
        True
    """
    data = _drop_empty_sections(cfg.model_dump(mode="json"))
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
