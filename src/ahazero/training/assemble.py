"""Assemble TRL's ``GRPOTrainer`` from a validated config and run it into a run directory.

Nothing happens at import. :func:`train` is what ``ahazero train`` calls:

1. apply the recipe's CPU profile when there is no GPU (:func:`resolve_for_device`);
2. validate everything that needs no model (:func:`ahazero.config.validate.check_config`);
3. prepare ``runs/<name>/`` (refusing to overwrite a run unless resuming);
4. load the model, render prompts, build the trainer, train, save the final model.

Example:
    >>> from ahazero.config.schema import load_config
    >>> cfg = load_config("configs/smoke.yaml")            # doctest: +SKIP
    >>> run_dir = train(cfg)                               # doctest: +SKIP
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from ahazero.config.schema import ExperimentConfig, apply_overrides, dump_config, load_config
from ahazero.observe.rundir import RunDir
from ahazero.observe.tracing import TraceWriter

__all__ = ["NonFiniteError", "build_trainer", "load_for_device", "prepare_dataset", "resolve_for_device", "train"]

logger = logging.getLogger("ahazero.training.assemble")


class NonFiniteError(RuntimeError):
    """Training stopped on a non-finite gradient (``on_nonfinite: stop``)."""


def resolve_for_device(cfg: ExperimentConfig, *, cuda: bool,
                       overrides: list[str] | dict[str, Any] | None = None) -> ExperimentConfig:
    """Apply ``cpu_overrides`` when no GPU is present, then ``overrides`` (which win over the profile).

    The profile is applied once: the result has an empty ``cpu_overrides``, so resolving it
    again changes nothing. On a GPU the profile is kept (unused) for the record.

    Example:
        >>> from ahazero.config.schema import validate_dict
        >>> cfg = validate_dict({"name": "x", "model": {"name_or_path": "tiny"},
        ...     "task": {"name": "arithmetic"}, "rewards": [{"name": "accuracy"}],
        ...     "cpu_overrides": {"grpo.max_steps": 2, "grpo.learning_rate": 1e-4}})
        >>> cpu = resolve_for_device(cfg, cuda=False, overrides=["grpo.max_steps=5"])
        >>> cpu.grpo, cpu.cpu_overrides
        ({'max_steps': 5, 'learning_rate': 0.0001}, {})
        >>> resolve_for_device(cfg, cuda=True).grpo
        {}
    """
    if not cuda and cfg.cpu_overrides:
        logger.warning("no GPU found: running this recipe's CPU profile (cpu_overrides: %s)",
                       ", ".join(f"{k}={v}" for k, v in cfg.cpu_overrides.items()))
        cfg = apply_overrides(cfg, {**cfg.cpu_overrides, "cpu_overrides": {}})
    return apply_overrides(cfg, overrides) if overrides else cfg


def load_for_device(path: str | Path, *, cuda: bool, presets: list[str] | None = None,
                    overrides: list[str] | None = None) -> ExperimentConfig:
    """The config as it runs here: the file, then ``presets``, the CPU profile without a GPU, then ``overrides``.

    Example:
        >>> import tempfile, pathlib
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "c.yaml"
        >>> _ = p.write_text("name: x\\nmodel: {name_or_path: tiny}\\ntask: {name: arithmetic}\\n"
        ...                  "rewards: [{name: accuracy}]\\ncpu_overrides: {seed: 2}\\n")
        >>> cfg = load_for_device(p, cuda=False, presets=["gradient-checkpointing"], overrides=["name=y"])
        >>> cfg.seed, cfg.name, cfg.grpo
        (2, 'y', {'gradient_checkpointing': True})
    """
    from ahazero.config.presets import preset_override_strings

    cfg = load_config(path, preset_override_strings(presets or []))
    return resolve_for_device(cfg, cuda=cuda, overrides=overrides)


def prepare_dataset(task: Any, split: str, tokenizer: Any, cfg: ExperimentConfig) -> Any:
    """Load a task split and add the ``prompt`` and ``prefill`` columns TRL and the rewards use.

    Example:
        >>> from ahazero.tasks import get_task                       # doctest: +SKIP
        >>> ds = prepare_dataset(get_task("arithmetic"), "train", tok, cfg)  # doctest: +SKIP
        >>> ds[0]["prompt"].endswith("<think>\\n")                    # doctest: +SKIP
        True
    """
    from ahazero.tasks.prompts import render_prompt

    dataset = task.load(split)
    prompt_cfg = cfg.prompt

    def add_prompt(row: dict[str, Any]) -> dict[str, Any]:
        text, prefill = render_prompt(
            row["problem"],
            template=prompt_cfg.template,
            tokenizer=tokenizer,
            system_prompt=prompt_cfg.system_prompt,
            prefill_think=prompt_cfg.prefill_think,
        )
        return {"prompt": text, "prefill": prefill}

    return dataset.map(add_prompt, desc=f"rendering {split} prompts")


def build_trainer(cfg: ExperimentConfig, *, checked: Any | None = None, run_dir: RunDir | None = None) -> Any:
    """Build a ready-to-train ``GRPOTrainer`` (model loaded, prompts rendered, callbacks attached).

    Example:
        >>> trainer = build_trainer(cfg)   # doctest: +SKIP
        >>> trainer.train()                # doctest: +SKIP
    """
    from transformers.trainer_callback import ProgressCallback

    from ahazero.config.validate import check_config
    from ahazero.models.loading import load_model_and_tokenizer, lora_config
    from ahazero.rollout.backends import configure_generation
    from ahazero.training.callbacks import (
        MetricsJsonlCallback,
        NonFiniteGradientGuard,
        QuietProgressCallback,
        StepSummaryCallback,
    )
    from ahazero.training.trainer import AhaGRPOTrainer

    checked = checked or check_config(cfg)
    run_dir = run_dir or RunDir(cfg.run_dir)
    model, tokenizer = load_model_and_tokenizer(
        cfg.model.name_or_path,
        dtype=cfg.model.dtype,
        revision=cfg.model.revision,
        trust_remote_code=cfg.model.trust_remote_code,
    )
    train_dataset = prepare_dataset(checked.task, "train", tokenizer, cfg)
    # the guard first: it adds 'updates_skipped' to the logs the other two write
    callbacks = [NonFiniteGradientGuard(cfg.on_nonfinite), MetricsJsonlCallback(run_dir.metrics), StepSummaryCallback()]
    trainer = AhaGRPOTrainer(
        model=model,
        reward_funcs=checked.reward_funcs,
        args=checked.grpo_args,
        train_dataset=train_dataset,
        processing_class=tokenizer,
        callbacks=callbacks,
        peft_config=lora_config(cfg.model.lora),
        tracer=make_tracer(cfg, run_dir),
    )
    if trainer.pop_callback(ProgressCallback) is not None:
        trainer.add_callback(QuietProgressCallback)
    configure_generation(trainer, checked.backend, requested=cfg.generation.backend, settings=cfg.generation)
    trainer.sort_by_length = cfg.update.sort_by_length
    logger.info("rollouts: %s backend", checked.backend)
    return trainer


def make_tracer(cfg: ExperimentConfig, run_dir: RunDir) -> TraceWriter:
    """The trace writer for a run, as the ``logging`` section asks.

    Behaviour metrics are computed even when ``logging.traces`` is false; only the files
    are skipped.

    Example:
        >>> from ahazero.config.schema import validate_dict
        >>> cfg = validate_dict({"name": "x", "model": {"name_or_path": "tiny"},
        ...     "task": {"name": "arithmetic"}, "rewards": [{"name": "accuracy"}]})
        >>> make_tracer(cfg, RunDir("runs/x")).dir
        PosixPath('runs/x/traces')
    """
    lang = next((r.kwargs().get("language") for r in cfg.rewards if r.name == "language_consistency"), None)
    return TraceWriter(
        run_dir.traces,
        sample_rate=cfg.logging.trace_sample_rate,
        seed=cfg.seed,
        phrases=cfg.logging.reflection_phrases,
        language=lang or "en",
        enabled=cfg.logging.traces,
    )


def _warn_if_config_changed(run_dir: RunDir, new_text: str) -> None:
    if run_dir.config.is_file() and run_dir.config.read_text(encoding="utf-8") != new_text:
        logger.warning("the config differs from the one this run started with; %s keeps the new one "
                       "and run.json keeps the history", run_dir.config)


def _ranges(steps: list[int]) -> str:
    """``[3, 4, 5, 9]`` as ``"3-5, 9"``."""
    spans: list[list[int]] = []
    for step in steps:
        if spans and step == spans[-1][1] + 1:
            spans[-1][1] = step
        else:
            spans.append([step, step])
    return ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in spans)


def train(cfg: ExperimentConfig, *, resume: bool = False) -> Path:
    """Train with GRPO as configured; return the run directory.

    With ``resume=True`` the run continues from its last complete checkpoint (a fresh start
    when there is none yet). A run directory that already holds a run is never overwritten.

    Example:
        >>> train(load_config("configs/smoke.yaml"))   # doctest: +SKIP
        PosixPath('runs/smoke')
    """
    from accelerate import PartialState

    from ahazero.config.validate import check_config
    from ahazero.models.loading import gpu_available
    from ahazero.training.callbacks import NonFiniteGradientGuard

    cuda = gpu_available()
    cfg = resolve_for_device(cfg, cuda=cuda)  # nothing left to do when the CLI resolved it already
    checked = check_config(cfg, cuda=cuda)  # builds GRPOConfig, which sets up the distributed state
    state = PartialState()
    run_dir = RunDir(cfg.run_dir)
    resume_step = run_dir.resume_step(resume=resume)  # read-only: every process agrees
    if state.is_main_process:  # only the main process writes the run directory
        run_dir.root.mkdir(parents=True, exist_ok=True)
        config_text = dump_config(cfg)
        if resume:
            _warn_if_config_changed(run_dir, config_text)
        run_dir.write_info(config_text=config_text, seed=cfg.seed, device="cuda" if cuda else "cpu",
                           extra={"resumed_from_step": resume_step, "num_processes": state.num_processes})
        dropped = TraceWriter(run_dir.traces).drop_after(resume_step or 0)
        if dropped:
            logger.info("removed traces of steps %s (after the checkpoint; they will be regenerated)", dropped)
    state.wait_for_everyone()
    if "tensorboard" in cfg.logging.report_to:
        os.environ.setdefault("TENSORBOARD_LOGGING_DIR", str(run_dir.tensorboard))

    trainer = build_trainer(cfg, checked=checked, run_dir=run_dir)
    checkpoint = str(run_dir.checkpoints / f"checkpoint-{resume_step}") if resume_step is not None else None
    if checkpoint:
        logger.info("resuming from %s", checkpoint)
    trainer.train(resume_from_checkpoint=checkpoint)
    guard = next(cb for cb in trainer.callback_handler.callbacks if isinstance(cb, NonFiniteGradientGuard))
    if guard.stopped:
        raise NonFiniteError(f"stopped at step {guard.skipped_steps[-1]}: non-finite gradient "
                             f"(checkpoints in {run_dir.checkpoints} hold the last good state)")
    if guard.skipped_steps:
        logger.warning("%d of %d updates in this session were skipped for a non-finite gradient (steps %s); "
                       "the metrics mark them in 'updates_skipped'", len(guard.skipped_steps),
                       trainer.state.global_step - (resume_step or 0), _ranges(guard.skipped_steps))
    trainer.save_model(str(run_dir.model))
    logger.info("run finished: %s", run_dir.root)
    return run_dir.root
