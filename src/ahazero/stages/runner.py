"""Run a ``stages:`` pipeline stage by stage, resumably, into ``runs/<name>/<stage>/``.

Every stage is checked first (:func:`~ahazero.stages.plan.plan_stages`). Then each runs in
turn: ``grpo`` as ``ahazero train``, ``sft`` as ``ahazero sft``, ``sample`` as ``ahazero
sample``, ``coldstart`` as ``ahazero coldstart``; a grpo or sft stage then evaluates its final
model on the held-out split (greedy, like ``ahazero eval``), and the first one also the model
it started from (``eval/base.json``). A later stage on another task (a warm-up on arithmetic,
then GSM8K) also evaluates the config's base model and the model it started from on its own
task (``evals`` ``base`` and ``start`` in its ``stage.json``; ``eval/<model name>.json`` and
``eval/<previous stage>-final.json``). A finished stage writes ``stage.json``; with ``resume``
finished stages are skipped and an interrupted grpo/sft stage continues from its last
checkpoint. At the end :mod:`ahazero.stages.report` writes ``runs/<name>/report.md`` and the
HTML report over the stages.

Example:
    >>> run_stages(load_config("configs/coldstart.yaml"), resume=True)   # doctest: +SKIP
    PosixPath('runs/coldstart')
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ahazero.cache.atomic_files import atomic_write_text
from ahazero.config.schema import ConfigError, ExperimentConfig, dump_config
from ahazero.observe.run_lock import RunLock
from ahazero.observe.rundir import RunDir, RunDirError, read_metrics
from ahazero.stages.plan import STAGE_FILE, PlannedStage, plan_stages, stage_request, stage_status
from ahazero.stages.samples import SamplesError

__all__ = ["run_stages", "stages_lock"]

logger = logging.getLogger("ahazero.stages")


@contextlib.contextmanager
def _tensorboard_dir(run_dir: RunDir) -> Iterator[None]:
    """Point TensorBoard at this stage's folder (the trainers read the variable once per run)."""
    saved = os.environ.get("TENSORBOARD_LOGGING_DIR")
    os.environ["TENSORBOARD_LOGGING_DIR"] = str(run_dir.tensorboard)
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop("TENSORBOARD_LOGGING_DIR", None)
        else:
            os.environ["TENSORBOARD_LOGGING_DIR"] = saved


def _check_root(root: RunDir, plan: list[PlannedStage], *, resume: bool) -> None:
    if root.has_progress():
        raise RunDirError(f"{root.root} holds a single training run, not stages; choose another name (name=<new>)")
    started = root.config.is_file() or any(s.run_dir.is_dir() and any(s.run_dir.iterdir()) for s in plan)
    if started and not resume:
        raise RunDirError(f"{root.root} already holds a stages run; pass --resume to continue it (finished stages "
                          "are skipped), or choose another name (override name=<new>)")


def _train_summary(run_dir: Path) -> dict[str, Any]:
    rows = read_metrics(run_dir / "metrics.jsonl")
    steps = [int(r["step"]) for r in rows if "step" in r and "train_runtime" not in r]
    end = next((r for r in reversed(rows) if "train_runtime" in r), {})
    last = next((r for r in reversed(rows) if "loss" in r), {})
    out = {"steps": max(steps) if steps else 0, "train_runtime": end.get("train_runtime"),
           "train_loss": end.get("train_loss"), "last_loss": last.get("loss")}
    for key in ("reward", "behaviour/accuracy", "mean_token_accuracy"):
        if key in last:
            out[f"last_{key.split('/')[-1]}"] = last[key]
    return out


def _evaluate(stage: PlannedStage, model: str, *, cuda: bool) -> dict[str, Any]:
    from ahazero.evaluate import EvalSettings, evaluate

    cfg = stage.config
    settings = EvalSettings(split="test", batch_size=256 if cuda else 64,  # greedy; 200 problems in one batch
                            max_new_tokens=int(cfg.grpo.get("max_completion_length", 512)), seed=cfg.seed)
    results = evaluate(cfg, model=model, settings=settings)
    logger.info("stage %s: %s model pass@1 %.3f on %d held-out problems", stage.name, results["tag"],
                results["pass@1"] or 0.0, results["n"])
    return {key: results.get(key) for key in ("tag", "model", "task", "n", "pass@1", "format_rate", "think_tokens_mean",
                                              "think_tokens_closed_mean", "reflection_rate",
                                              "language_consistency", "truncation_rate")}


def _run(stage: PlannedStage, lock: RunLock, *, resume: bool, cuda: bool, quiet: bool) -> dict[str, Any]:
    """Run one stage's work (not its evaluation) under its held ``lock``; return what ``stage.json`` records."""
    run_dir = RunDir(stage.run_dir)
    if stage.kind in ("grpo", "sft"):
        if resume and run_dir.has_progress() and not run_dir.checkpoint_steps():
            logger.warning("stage %s: no checkpoint to resume from; emptying %s and starting the stage again",
                           stage.name, run_dir.root)
            lock.empty_root()
        with _tensorboard_dir(run_dir):
            if stage.kind == "grpo":
                from ahazero.training.assemble import train

                train(stage.config, resume=resume)
            else:
                from ahazero.stages.sft import train_sft

                train_sft(stage.config, resume=resume, cuda=cuda)
        return {"model": str(stage.output_model), **_train_summary(run_dir.root)}
    run_dir.root.mkdir(parents=True, exist_ok=True)
    run_dir.write_info(config_text=dump_config(stage.config), seed=stage.config.seed,
                       device="cuda" if cuda else "cpu", extra={"stage": stage.kind})
    if stage.kind == "sample":
        from ahazero.stages.sample import sample

        summary = sample(stage.config, stage_request(stage, quiet=quiet), cuda=cuda)
        if not summary["kept"]:
            rejected = ", ".join(f"{k} {v}" for k, v in summary["rejected"].items())
            raise SamplesError(f"stage {stage.name} kept none of its {summary['sampled']} completions ({rejected}); "
                               f"sample more (n, prompts) or a better model; {stage.output_samples} and the rejected "
                               "ones beside it show what was sampled")
    else:
        from ahazero.stages.coldstart import coldstart

        summary = coldstart(stage.config, n=300 if stage.spec.n is None else stage.spec.n, out=stage.output_samples,
                            overwrite=True)
    keys = ("sampled", "kept", "prompts", "prompts_kept", "correct_rate", "rejected", "generation_seconds")
    return {"samples": str(stage.output_samples), **{k: summary[k] for k in keys if k in summary}}


def _run_stage(cfg: ExperimentConfig, stage: PlannedStage, lock: RunLock, *, base_stage: str | None,
               base_task: dict[str, Any] | None, resume: bool, cuda: bool, quiet: bool) -> None:
    """Run a stage, evaluate what it trained, and write its ``stage.json`` (the mark of a finished stage)."""
    started = time.time()
    record: dict[str, Any] = {"stage": stage.name, "kind": stage.kind, "index": stage.index,
                              "input_model": stage.model, "input_data": stage.data,
                              "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
    record.update(_run(stage, lock, resume=resume, cuda=cuda, quiet=quiet))
    record["seconds"] = time.time() - started
    evals: dict[str, Any] = {}
    if stage.spec.evaluates:
        started = time.time()
        if stage.name == base_stage:
            evals["base"] = _evaluate(stage, "base", cuda=cuda)
        elif stage.config.task.model_dump() != base_task:
            # another task than the base model was evaluated on: the base model on this one too,
            # and the model this stage started from (what the stages before it transferred)
            evals["base"] = _evaluate(stage, cfg.model.name_or_path, cuda=cuda)
            if stage.model != cfg.model.name_or_path:  # by its path: tagged after its stage, not 'base'
                evals["start"] = _evaluate(stage, str(stage.model), cuda=cuda)
        evals["final"] = _evaluate(stage, "final", cuda=cuda)
        record["eval_seconds"] = time.time() - started
    record.update(evals=evals, status="done", finished_at=time.strftime("%Y-%m-%dT%H:%M:%S%z"))
    atomic_write_text(stage.run_dir / STAGE_FILE, json.dumps(record, indent=2) + "\n",
                      then="continue with `ahazero stages CONFIG --resume`")


def _release_memory(cuda: bool) -> None:
    """Free what a finished stage's models left behind before the next stage loads its own."""
    import gc

    gc.collect()
    if cuda:
        import torch

        torch.cuda.empty_cache()


def _first_evaluating(plan: list[PlannedStage]) -> str | None:
    return next((s.name for s in plan if s.spec.evaluates), None)


def run_stages(cfg: ExperimentConfig, *, resume: bool = False, stop_after: str | None = None,
               cuda: bool | None = None, quiet: bool = False) -> Path:
    """Run the config's stages into ``runs/<name>/``; return that folder.

    ``stop_after`` ends the run after that stage (a later ``resume`` continues with the next).

    Example:
        >>> run_stages(load_config("configs/coldstart.yaml"))   # doctest: +SKIP
        PosixPath('runs/coldstart')
    """
    from ahazero.models.loading import gpu_available

    cuda = gpu_available() if cuda is None else cuda
    plan = plan_stages(cfg, cuda=cuda)
    names = [s.name for s in plan]
    if stop_after is not None and stop_after not in names:
        raise ConfigError(f"--stop-after: no stage '{stop_after}'; the stages are: {', '.join(names)}")
    root = RunDir(cfg.run_dir)
    with stages_lock(cfg):  # one pipeline at a time: a second one is refused before it changes anything
        _check_root(root, plan, resume=resume)
        return _run_plan(cfg, plan, root, stop_after=stop_after, resume=resume, cuda=cuda, quiet=quiet)


def stages_lock(cfg: ExperimentConfig) -> RunLock:
    """The lock of a stages run's folder, held while its pipeline runs (or its report is written).

    Example:
        >>> from ahazero.config.schema import validate_dict
        >>> cfg = validate_dict({"name": "r1", "model": {"name_or_path": "tiny"}, "task": {"name": "arithmetic"},
        ...                      "rewards": [{"name": "accuracy"}]})
        >>> stages_lock(cfg).label
        "stages run 'r1' (runs/r1)"
    """
    return RunLock(cfg.run_dir, label=f"stages run {cfg.name!r} ({cfg.run_dir})")


def _run_plan(cfg: ExperimentConfig, plan: list[PlannedStage], root: RunDir, *, stop_after: str | None,
              resume: bool, cuda: bool, quiet: bool) -> Path:
    from ahazero.stages.report import write_stage_report

    names = [s.name for s in plan]
    text = dump_config(cfg)
    if root.config.is_file() and root.config.read_text(encoding="utf-8") != text:
        logger.warning("the config differs from the one these stages started with; finished stages are kept as "
                       "they are, and run.json keeps the history")
    root.write_info(config_text=text, seed=cfg.seed, device="cuda" if cuda else "cpu", extra={"stages": names})
    base_stage = _first_evaluating(plan)
    base_task = next((s.config.task.model_dump() for s in plan if s.name == base_stage), None)
    for stage in plan:
        if stage_status(stage.run_dir) is not None:
            logger.info("stage %d/%d %s (%s): finished before, skipped", stage.index + 1, len(plan), stage.name,
                        stage.kind)
        else:
            logger.info("stage %d/%d %s (%s) -> %s", stage.index + 1, len(plan), stage.name, stage.kind, stage.run_dir)
            with RunLock(stage.run_dir) as lock:  # also against an `ahazero train` of the stage's own config
                _run_stage(cfg, stage, lock, base_stage=base_stage, base_task=base_task, resume=resume, cuda=cuda,
                           quiet=quiet)
            _release_memory(cuda)
            write_stage_report(cfg, plan, html=False)  # the tables so far, while later stages run
        if stage.name == stop_after:
            logger.info("stopping after stage %s (--stop-after); --resume continues with the next", stage.name)
            break
    md, html = write_stage_report(cfg, plan)
    logger.info("stages report: %s%s", md, f" and {html}" if html else "")
    return root.root
