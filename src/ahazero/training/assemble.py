"""Assemble TRL's ``GRPOTrainer`` from a validated config and run it into a run directory.

Nothing happens at import. :func:`train` is what ``ahazero train`` calls:

1. apply the recipe's CPU profile when there is no GPU (:func:`resolve_for_device`);
2. validate everything that needs no model (:func:`ahazero.config.validate.check_config`),
   then choose the ``auto`` sizes from the GPU's memory (:mod:`ahazero.training.auto_sizes`;
   a resume keeps the sizes its run recorded);
3. claim ``runs/<name>/`` (the main process takes its lock; a second writer gets an error)
   and decide where the run starts (refusing to overwrite a run unless resuming; a resume
   starts from the newest complete checkpoint; a finished run is left as it is);
4. put the folder in order for that start (:mod:`ahazero.observe.run_repair`);
5. load the model, render prompts, build the trainer, train, save the final model.

Example:
    >>> from ahazero.config.schema import load_config
    >>> cfg = load_config("configs/smoke.yaml")            # doctest: +SKIP
    >>> run_dir = train(cfg)                               # doctest: +SKIP
"""

from __future__ import annotations

import errno
import logging
import os
import shutil
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any, TypeVar

from ahazero.config.cpu_profile import profile_line
from ahazero.config.schema import ConfigError, ExperimentConfig, apply_overrides, dump_config, load_config
from ahazero.observe.run_lock import RunLock
from ahazero.observe.run_repair import finish_from_checkpoint, prepare_restart
from ahazero.observe.rundir import ResumePoint, RunDir, RunDirError, RunWriteError
from ahazero.observe.tracing import TraceWriter, first_reward
from ahazero.training.final_model import save_final_model
from ahazero.training.tensorboard_env import tensorboard_dir

__all__ = ["NonFiniteError", "build_trainer", "configure_update", "fit", "load_for_device", "prepare_dataset",
           "resolve_for_device", "save_final_model", "train"]

logger = logging.getLogger("ahazero.training.assemble")

T = TypeVar("T")


class NonFiniteError(RuntimeError):
    """Training stopped on a non-finite gradient (``on_nonfinite: stop``)."""


def resolve_for_device(cfg: ExperimentConfig, *, cuda: bool, overrides: list[str] | dict[str, Any] | None = None,
                       say_cost: bool = False) -> ExperimentConfig:
    """Apply ``cpu_overrides`` when no GPU is present, then ``overrides`` (which win over the profile).

    The profile is applied once: the result has an empty ``cpu_overrides``, so resolving it
    again changes nothing. On a GPU the profile is kept (unused) for the record. Applying it
    logs one WARNING line; with ``say_cost`` (``ahazero train``) the line also states the
    recipe's ``cpu_expected`` (time, peak memory, disk).

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
        profile = cfg.cpu_overrides
        run_dir = Path(str(profile.get("output_root", cfg.output_root))) / str(profile.get("name", cfg.name))
        logger.warning(profile_line(profile, cfg.cpu_expected if say_cost else None, run_dir=run_dir))
        cfg = apply_overrides(cfg, {**profile, "cpu_overrides": {}})
    return apply_overrides(cfg, overrides) if overrides else cfg


def load_for_device(path: str | Path, *, cuda: bool, presets: list[str] | None = None,
                    overrides: list[str] | None = None, say_cost: bool = False) -> ExperimentConfig:
    """The config as it runs here: the file, then ``presets``, the CPU profile without a GPU, then ``overrides``.

    ``say_cost``: the CPU profile's log line states its expected cost (see :func:`resolve_for_device`).

    Example:
        >>> import tempfile, pathlib
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "c.yaml"
        >>> _ = p.write_text("name: x\\nmodel: {name_or_path: tiny}\\ntask: {name: arithmetic}\\n"
        ...                  "rewards: [{name: accuracy}]\\ncpu_overrides: {seed: 2}\\n")
        >>> cfg = load_for_device(p, cuda=False, presets=["gradient-checkpointing"], overrides=["name=y"])
        >>> cfg.seed, cfg.name, cfg.grpo
        (2, 'y', {'gradient_checkpointing': True})
    """
    from ahazero.config.presets import preset_changes, preset_override_strings

    cfg = load_config(path)
    if presets:
        changes = preset_changes(cfg, presets)
        if changes and os.environ.get("RANK", "0") == "0":  # said once, not by every process
            logger.info("preset %s changes the config's %s", ", ".join(presets), "; ".join(changes))
        cfg = apply_overrides(cfg, preset_override_strings(presets))
    return resolve_for_device(cfg, cuda=cuda, overrides=overrides, say_cost=say_cost)


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
    from ahazero.models.loading import gpu_available, load_model_and_tokenizer, lora_config
    from ahazero.rollout.backends import configure_generation
    from ahazero.training.auto_sizes import auto_keys, resolve_auto_sizes
    from ahazero.training.callbacks import (
        MetricsJsonlCallback,
        NonFiniteGradientGuard,
        QuietProgressCallback,
        StepSummaryCallback,
        TimeLimitCallback,
    )
    from ahazero.training.trainer import AhaGRPOTrainer

    if auto_keys(cfg):  # a config that did not come through train(): its sizes are chosen here
        cfg, _ = resolve_auto_sizes(cfg, cuda=gpu_available())
        checked = None
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
    if cfg.on_collapse != "off":
        from ahazero.training.collapse import CollapseAlarmCallback

        callbacks.append(CollapseAlarmCallback(cfg.collapse, cfg.on_collapse, metrics_path=run_dir.metrics))
    if cfg.max_train_seconds is not None:
        callbacks.append(TimeLimitCallback(cfg.max_train_seconds))
    trainer = AhaGRPOTrainer(
        model=model,
        reward_funcs=checked.reward_funcs,
        args=checked.grpo_args,
        train_dataset=train_dataset,
        processing_class=tokenizer,
        callbacks=callbacks,
        peft_config=lora_config(cfg.model.lora),
        tracer=make_tracer(cfg, run_dir, grader=first_reward(checked.reward_funcs)),
        zero_variance=cfg.groups.zero_variance,
        group_reward=cfg.groups.reward,
    )
    if trainer.pop_callback(ProgressCallback) is not None:
        trainer.add_callback(QuietProgressCallback)
    configure_generation(trainer, checked.backend, requested=cfg.generation.backend, settings=cfg.generation)
    configure_update(trainer, cfg)
    logger.info("rollouts: %s backend", checked.backend)
    return trainer


def configure_update(trainer: Any, cfg: ExperimentConfig) -> None:
    """Set the ``update`` section on a built trainer; packing a model it cannot pack is a config error.

    Example:
        >>> configure_update(trainer, cfg)   # doctest: +SKIP
    """
    from ahazero.training.packed_attention import packing_blocker

    trainer.sort_by_length = cfg.update.sort_by_length
    if cfg.update.packing:
        reason = packing_blocker(trainer.model)
        if reason:
            raise ConfigError(f"update.packing cannot pack this model's update: {reason}; drop update.packing")
    trainer.packing = cfg.update.packing
    trainer.share_prompts = cfg.update.share_prompts


def make_tracer(cfg: ExperimentConfig, run_dir: RunDir, *, grader: Any | None = None) -> TraceWriter:
    """The trace writer for a run, as the ``logging`` section asks; ``grader`` grades the self-check's candidates.

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
        grader=grader,
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


def on_main_process(state: Any, decide: Callable[[], T]) -> T:
    """Run ``decide`` on the main process only and give every process its result, or its error.

    The other processes wait in a broadcast, so a refusal on the main process (the run is
    locked by another writer, there is no checkpoint) ends every process with the same
    :class:`~ahazero.observe.rundir.RunDirError` instead of leaving them waiting.

    Example:
        >>> from accelerate import PartialState
        >>> on_main_process(PartialState(), lambda: 42)
        42
    """
    box: list[Any] = [None]
    error: BaseException | None = None
    if state.is_main_process:
        try:
            box[0] = ("ok", decide())
        except Exception as err:  # handed to the other processes, then raised here
            error = err
            box[0] = ("error", str(err))
    if state.num_processes > 1:
        from accelerate.utils import broadcast_object_list

        broadcast_object_list(box)
    if error is not None:
        raise error
    kind, value = box[0]
    if kind == "error":
        raise RunDirError(value)
    return value


def _disk_full(run_dir: RunDir, err: BaseException) -> RunWriteError | None:
    """A clear error when ``err`` came from a full disk under the run directory, else None."""
    if isinstance(err, RunDirError):
        return None
    full = isinstance(err, OSError) and err.errno in (errno.ENOSPC, errno.EDQUOT)
    # safetensors and torch.save wrap the OS error in their own types, keeping only its text
    full = full or any(sign in str(err) for sign in ("No space left on device", "os error 28",
                                                      "Disk quota exceeded", "os error 122"))
    if not full:
        try:
            full = shutil.disk_usage(run_dir.root).free < 2**20
        except OSError:
            return None
    if not full:
        return None
    cause = str(err).strip().splitlines()[0][:200] if str(err).strip() else type(err).__name__
    return RunWriteError(f"the disk holding {run_dir.root} is full ({cause}); free space, then continue the run "
                         "with --resume (it starts again from the last complete checkpoint)")


def _claim(run_dir: RunDir, lock: RunLock, *, resume: bool, max_steps: int | None) -> ResumePoint:
    lock.acquire()
    return run_dir.resume_point(resume=resume, max_steps=max_steps)


def _finished(run_dir: RunDir, point: ResumePoint, *, main: bool) -> Path:
    """A resume of a run that already reached ``grpo.max_steps``: train nothing, change nothing."""
    if not main:
        return run_dir.root
    rebuilt = finish_from_checkpoint(run_dir, point.step)
    where = "at" if point.step == point.target else "past"
    model = f"model/ was rebuilt from checkpoint-{point.step}" if rebuilt else "model/ holds its final model"
    logger.warning("run %r has already finished: checkpoint-%d is %s grpo.max_steps=%s and %s; nothing was "
                   "trained. To train further, resume with a larger grpo.max_steps (e.g. grpo.max_steps=%d)",
                   run_dir.root.name, point.step, where, point.target, model, 2 * (point.step or 1))
    return run_dir.root


def _prepare(run_dir: RunDir, point: ResumePoint, cfg: ExperimentConfig, *, resume: bool, cuda: bool,
             num_processes: int, extra: dict[str, Any]) -> None:
    """On the main process: record the start, and put the folder in order for ``point``."""
    from ahazero.training.processes import machine_count

    config_text = dump_config(cfg)
    if resume:
        _warn_if_config_changed(run_dir, config_text)
    prepare_restart(run_dir, point)
    shutil.rmtree(run_dir.root / ".model.tmp", ignore_errors=True)  # a final save cut short
    run_dir.write_info(config_text=config_text, seed=cfg.seed, device="cuda" if cuda else "cpu",
                       extra={"resumed_from_step": point.step, "num_processes": num_processes,
                              "num_machines": machine_count(num_processes), **extra})


def _calibration_record(task: Any) -> dict[str, Any]:
    """``{"calibration": {file, band, counts}}`` for run.json when the task filters by pass rate, else ``{}``."""
    try:
        counts = task.calibration_counts()
    except ValueError as err:  # the file holds none of the problems, or the band keeps none
        raise ConfigError(f"task.calibration: {err}") from None
    if counts is None:
        return {}
    logger.info("task.calibration: %s", counts.describe(task.pass_rate_band))
    return {"calibration": {"file": task.calibration, "band": list(task.pass_rate_band), **counts._asdict()}}


def train(cfg: ExperimentConfig, *, resume: bool = False) -> Path:
    """Train with GRPO as configured; return the run directory.

    With ``resume=True`` the run continues from its newest complete checkpoint (a fresh start
    when there is none yet and nothing was logged); a run that already reached
    ``grpo.max_steps`` is left unchanged, a larger ``grpo.max_steps`` continues it. A run
    directory that already holds a run is never overwritten, and one that another process is
    writing is refused (:class:`~ahazero.observe.run_lock.RunLockedError`).

    Example:
        >>> train(load_config("configs/smoke.yaml"))   # doctest: +SKIP
        PosixPath('runs/smoke')
    """
    from accelerate import PartialState

    from ahazero.config.validate import check_config
    from ahazero.models.loading import gpu_available
    from ahazero.models.model_argument import check_model_argument
    from ahazero.training.auto_sizes import plan_record
    from ahazero.training.processes import agreed_resume_step

    cuda = gpu_available()
    cfg = resolve_for_device(cfg, cuda=cuda)  # nothing left to do when the CLI resolved it already
    checked = check_config(cfg, cuda=cuda)  # builds GRPOConfig, which sets up the distributed state
    check_model_argument(cfg.model.name_or_path, label=f"model.name_or_path {cfg.model.name_or_path}",
                         revision=cfg.model.revision)
    cfg, plan = _auto_sizes(cfg, cuda=cuda, resume=resume)
    if plan is not None:  # checked again with the sizes chosen ('auto' was checked as one micro-batch per step)
        checked = check_config(cfg, cuda=cuda)
    state = PartialState()
    run_dir = RunDir(cfg.run_dir)
    calibration = {**_calibration_record(checked.task), **plan_record(plan)}
    lock = RunLock(run_dir.root)  # taken by the main process only: it is the one that writes
    try:
        point = on_main_process(state, lambda: _claim(run_dir, lock, resume=resume,
                                                      max_steps=checked.grpo_args.max_steps))
        agreed_resume_step(run_dir, resume=resume)  # every process must see that checkpoint (shared filesystem)
        if point.finished:
            return _finished(run_dir, point, main=state.is_main_process)
        if state.is_main_process:
            _prepare(run_dir, point, cfg, resume=resume, cuda=cuda, num_processes=state.num_processes,
                     extra=calibration)
        state.wait_for_everyone()
        return _train(cfg, checked, run_dir, point, state)
    except Exception as err:
        full = _disk_full(run_dir, err)
        if full is not None:
            raise full from err
        raise
    finally:
        lock.release()


def _auto_sizes(cfg: ExperimentConfig, *, cuda: bool, resume: bool) -> tuple[ExperimentConfig, Any]:
    """Choose the config's ``auto`` sizes on the main process (a resume reuses the first start's) for every process."""
    from accelerate import PartialState

    from ahazero.training.auto_sizes import auto_keys, recorded_plan, resolve_auto_sizes

    if not auto_keys(cfg):
        return cfg, None

    def decide() -> dict[str, Any]:
        previous = recorded_plan(RunDir(cfg.run_dir).info) if resume else None
        return asdict(resolve_auto_sizes(cfg, cuda=cuda, previous=previous)[1])

    plan = on_main_process(PartialState(), decide)  # one choice for every process
    return resolve_auto_sizes(cfg, cuda=cuda, previous=plan, quiet=True)


def fit(trainer: Any, run_dir: RunDir, step: int | None) -> None:
    """Train from ``checkpoint-<step>`` (None: from the start); stop with an error if the guard stopped the run.

    A run that ``on_nonfinite: stop`` ended raises :class:`NonFiniteError`; updates skipped
    for a non-finite gradient are logged, with their steps. GRPO and SFT runs share it. An
    exit asked for during training (``sys.exit``, ``os._exit(0)``) never passes for success
    (:func:`ahazero.config.exit_guard.unfinished_run`).

    Example:
        >>> fit(trainer, RunDir("runs/default"), 40)   # doctest: +SKIP
    """
    from ahazero.config.exit_guard import unfinished_run
    from ahazero.training.callbacks import NonFiniteGradientGuard

    checkpoint = str(run_dir.checkpoints / f"checkpoint-{step}") if step is not None else None
    if checkpoint:
        logger.info("resuming from %s", checkpoint)
    with unfinished_run(f"run {run_dir.root.name!r}"):  # an exit from user code (a reward, a callback) is no success
        trainer.train(resume_from_checkpoint=checkpoint)
    guard = next(cb for cb in trainer.callback_handler.callbacks if isinstance(cb, NonFiniteGradientGuard))
    if guard.stopped:
        raise NonFiniteError(f"stopped at step {guard.skipped_steps[-1]}: non-finite gradient "
                             f"(checkpoints in {run_dir.checkpoints} hold the last good state)")
    if guard.skipped_steps:
        logger.warning("%d of %d updates in this session were skipped for a non-finite gradient (steps %s); "
                       "the metrics mark them in 'updates_skipped'", len(guard.skipped_steps),
                       trainer.state.global_step - (step or 0), _ranges(guard.skipped_steps))


def _train(cfg: ExperimentConfig, checked: Any, run_dir: RunDir, point: ResumePoint, state: Any) -> Path:
    with tensorboard_dir(run_dir.tensorboard, enabled="tensorboard" in cfg.logging.report_to):
        trainer = build_trainer(cfg, checked=checked, run_dir=run_dir)
        fit(trainer, run_dir, point.step)
    save_final_model(trainer, run_dir, main=state.is_main_process)
    _report_collapse_stop(trainer, run_dir)
    _report_time_limit(trainer, cfg)
    state.wait_for_everyone()  # no process leaves, tearing its end of the process group down, while another works
    if state.num_processes > 1:
        state.destroy_process_group()
    logger.info("run finished: %s", run_dir.root)
    return run_dir.root


def _report_collapse_stop(trainer: Any, run_dir: RunDir) -> None:
    """Say why a run ended early under ``on_collapse: stop`` (the checkpoint and final model are saved)."""
    from ahazero.training.collapse import CollapseAlarmCallback

    alarm = next((cb.stopped_by for cb in trainer.callback_handler.callbacks
                  if isinstance(cb, CollapseAlarmCallback) and cb.stopped_by is not None), None)
    if alarm is not None:
        logger.error("stopped at step %d by on_collapse: stop (%s collapse); the checkpoint of that step is in %s "
                     "and the model in %s. Read `ahazero traces %s`, change the recipe, and train again or "
                     "--resume", alarm.step, alarm.kind, run_dir.checkpoints, run_dir.model, run_dir.root)


def _report_time_limit(trainer: Any, cfg: ExperimentConfig) -> None:
    """Say that a run ended at its ``max_train_seconds`` budget, before ``max_steps``."""
    from ahazero.training.callbacks import TimeLimitCallback

    cb = next((cb for cb in trainer.callback_handler.callbacks if isinstance(cb, TimeLimitCallback)), None)
    if cb is not None and cb.stopped_at is not None:
        logger.warning("stopped at step %d of %s after %.0f s of training (max_train_seconds: %g); the model "
                       "of that step is the final model", cb.stopped_at, cfg.grpo.get("max_steps", "?"), cb.elapsed,
                       cfg.max_train_seconds)
