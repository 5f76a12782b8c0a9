"""Resolve and check a ``stages:`` pipeline before any stage runs.

Each stage becomes an ordinary config whose run directory is ``<output_root>/<name>/<stage>``:
the top-level config with the stage's ``overrides``, its model (``model.name_or_path``) and,
for an sft stage, its samples file (``sft.data``). Models chain: ``previous`` (the default) is
the last grpo/sft stage's ``model/`` folder, else the config's model; a sample stage draws
from it too; an sft stage trains on the last sample or coldstart stage's file unless it names
another. Every stage's config is then checked as its command would check it, so a mistake in
the last stage fails before the first one starts.

Example:
    >>> from ahazero.config.schema import validate_dict
    >>> cfg = validate_dict({"name": "r1", "model": {"name_or_path": "tiny"},
    ...     "task": {"name": "arithmetic", "num_train": 8, "num_test": 2},
    ...     "rewards": [{"name": "accuracy"}, {"name": "think_format"}],
    ...     "grpo": {"num_generations": 2, "per_device_train_batch_size": 2},
    ...     "stages": [{"name": "rl", "kind": "grpo"}, {"name": "pick", "kind": "sample", "n": 4},
    ...                {"name": "tune", "kind": "sft", "model": "base"}]})
    >>> [(s.name, s.model, s.data) for s in plan_stages(cfg, cuda=False)]
    [('rl', 'tiny', None), ('pick', 'runs/r1/rl/model', None), ('tune', 'tiny', 'runs/r1/pick/samples.jsonl')]
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ahazero.config.schema import ConfigError, ExperimentConfig, StageSpec, apply_overrides

__all__ = ["MODEL_KINDS", "SAMPLE_KINDS", "STAGE_FILE", "PlannedStage", "plan_stages", "stage_request",
           "stage_status"]

#: Stages that write a model (``<stage>/model``).
MODEL_KINDS = ("grpo", "sft")
#: Stages that write a samples file (``<stage>/samples.jsonl``).
SAMPLE_KINDS = ("sample", "coldstart")


#: Written into a stage's run directory when the stage has finished.
STAGE_FILE = "stage.json"


def stage_status(run_dir: str | Path) -> dict[str, Any] | None:
    """The ``stage.json`` of a finished stage, or None.

    Example:
        >>> import tempfile, pathlib
        >>> d = pathlib.Path(tempfile.mkdtemp())
        >>> _ = (d / "stage.json").write_text('{"status": "done"}')
        >>> stage_status(d)
        {'status': 'done'}
    """
    path = Path(run_dir) / STAGE_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) and data.get("status") == "done" else None


@dataclass
class PlannedStage:
    """One stage, resolved: its config, the model it loads and the samples it trains on."""

    spec: StageSpec
    index: int
    config: ExperimentConfig
    model: str | None  #: what the stage loads (grpo, sft, sample)
    data: str | None  #: the samples file an sft stage trains on

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def kind(self) -> str:
        return self.spec.kind

    @property
    def run_dir(self) -> Path:
        return self.config.run_dir

    @property
    def output_model(self) -> Path | None:
        """The model this stage writes (grpo and sft stages)."""
        return self.run_dir / "model" if self.kind in MODEL_KINDS else None

    @property
    def output_samples(self) -> Path | None:
        """The samples file this stage writes (sample and coldstart stages)."""
        return self.run_dir / "samples.jsonl" if self.kind in SAMPLE_KINDS else None


def stage_request(stage: PlannedStage, *, quiet: bool = False) -> Any:
    """The :class:`~ahazero.stages.sample.SampleRequest` of a sample stage (its defaults filled in)."""
    from ahazero.stages.sample import SampleRequest

    spec = stage.spec
    return SampleRequest(model=stage.model, split=spec.split or "train", n=8 if spec.n is None else spec.n,
                         max_per_prompt=1 if spec.max_per_prompt is None else spec.max_per_prompt,
                         prompts=spec.prompts,
                         min_language=1.0 if spec.min_language is None else spec.min_language,
                         out=stage.output_samples, quiet=quiet, overwrite=True)  # the stage's own folder


def _earlier(cfg: ExperimentConfig, index: int, name: str, kinds: tuple[str, ...], what: str) -> StageSpec | None:
    """The earlier stage called ``name`` (None when no stage is); an error when it is later or the wrong kind."""
    names = [s.name for s in cfg.stages]
    if name not in names:
        return None
    other = cfg.stages[names.index(name)]
    if names.index(name) >= index:
        raise ConfigError(f"stages.{index}: '{name}' does not run before this stage")
    if other.kind not in kinds:
        raise ConfigError(f"stages.{index}: stage '{name}' is a {other.kind} stage and writes no {what}")
    return other


def _resolve_model(cfg: ExperimentConfig, index: int, spec: StageSpec, require_inputs: bool) -> str:
    from ahazero.models.model_argument import model_argument_problem

    choice = spec.model or "previous"
    if choice == "previous":
        before = [s for s in cfg.stages[:index] if s.kind in MODEL_KINDS]
        return str(cfg.run_dir / before[-1].name / "model") if before else cfg.model.name_or_path
    if choice == "base":
        return cfg.model.name_or_path
    stage = _earlier(cfg, index, choice, MODEL_KINDS, "model")
    if stage is not None:
        return str(cfg.run_dir / stage.name / "model")
    problem = model_argument_problem(choice) if require_inputs else None
    if problem is not None:
        raise ConfigError(f"stages.{index}.model: '{choice}' is no earlier stage (a stage's model is previous, base, "
                          f"an earlier grpo/sft stage or a model), and not a model: {problem}")
    return choice


def _resolve_data(cfg: ExperimentConfig, index: int, spec: StageSpec) -> tuple[str, bool]:
    """The samples file of an sft stage, and whether it exists before the pipeline starts."""
    if spec.data is None:
        before = [s for s in cfg.stages[:index] if s.kind in SAMPLE_KINDS]
        if before:
            return str(cfg.run_dir / before[-1].name / "samples.jsonl"), False
        if cfg.sft.data:
            return cfg.sft.data, True
        raise ConfigError(f"stages.{index}.data: missing; no sample or coldstart stage runs before "
                          f"'{spec.name}' and sft.data is not set")
    stage = _earlier(cfg, index, spec.data, SAMPLE_KINDS, "samples file")
    if stage is not None:
        return str(cfg.run_dir / stage.name / "samples.jsonl"), False
    return spec.data, True


def _stage_config(cfg: ExperimentConfig, spec: StageSpec, model: str | None, data: str | None) -> ExperimentConfig:
    changes: dict[str, Any] = {**spec.overrides, "name": spec.name, "output_root": str(cfg.run_dir), "stages": [],
                               "cpu_overrides": {}}
    if model is not None:
        changes["model.name_or_path"] = model
    if data is not None:
        changes["sft.data"] = data
    return apply_overrides(cfg, changes)


def _check(stage: PlannedStage, *, cuda: bool, data_ready: bool) -> None:
    from ahazero.config.validate import check_config
    from ahazero.stages.coldstart import check_coldstart
    from ahazero.stages.sample import check_sample
    from ahazero.stages.sft import check_sft

    if stage.kind == "grpo":
        check_config(stage.config, cuda=cuda)
    elif stage.kind == "sft":
        check_sft(stage.config, cuda=cuda, data_ready=data_ready)
    elif stage.kind == "sample":
        check_sample(stage.config, stage_request(stage), cuda=cuda)
    else:
        check_coldstart(stage.config, n=300 if stage.spec.n is None else stage.spec.n)


def plan_stages(cfg: ExperimentConfig, *, cuda: bool, require_inputs: bool = True) -> list[PlannedStage]:
    """Resolve every stage and check its config; raise a :class:`ConfigError` naming the stage.

    With ``require_inputs`` a model or samples file that no stage writes must already exist.
    """
    if not cfg.stages:
        raise ConfigError("stages: the config has no stages (add a 'stages:' list, or use `ahazero train`)")
    plan = []
    for index, spec in enumerate(cfg.stages):
        model = _resolve_model(cfg, index, spec, require_inputs) if spec.kind != "coldstart" else None
        data, data_ready = _resolve_data(cfg, index, spec) if spec.kind == "sft" else (None, False)
        try:
            config = _stage_config(cfg, spec, model, data)
            stage = PlannedStage(spec=spec, index=index, config=config, model=model, data=data)
            _check(stage, cuda=cuda, data_ready=data_ready and require_inputs)
        except ConfigError as err:
            raise ConfigError(f"stages.{index} ({spec.name}): {err}") from None
        plan.append(stage)
    return plan
