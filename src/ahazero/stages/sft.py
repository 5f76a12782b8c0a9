"""``ahazero sft``: supervised fine-tuning on a samples file with TRL's ``SFTTrainer``.

The ``sft`` section names the samples file (``data``) and passes every other key through to
``trl.SFTConfig`` (unknown keys are errors, like ``grpo``). Each kept record becomes a
prompt-completion pair: the prompt is the record's problem rendered with *this* config's
prompt template and *this* model's tokenizer (so samples drawn from a teacher train a student
with another chat template), the completion is the record's text after that prompt's prefill;
TRL appends the EOS token and computes the loss on the completion tokens only.

The run directory is an ordinary one (``config.yaml``, ``run.json``, ``metrics.jsonl``,
``checkpoints/``, ``model/``, ``tensorboard/``; no traces): ``--resume`` continues it from its
last checkpoint, ``ahazero eval`` evaluates it, and its ``model/`` folder can be any other
config's ``model.name_or_path``.

Example:
    >>> completion_after_prefill({"prefill": "<think>\\n", "completion": "1+1=2</think>"}, "<think>")
    '\\n1+1=2</think>'
"""

from __future__ import annotations

import dataclasses
import difflib
import logging
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from ahazero.config.schema import ConfigError, ExperimentConfig, dump_config
from ahazero.observe.run_lock import RunLock
from ahazero.observe.rundir import RunDir
from ahazero.stages.samples import MAX_TEXT_CHARS, SamplesError, read_samples
from ahazero.stages.sft_masks import UNTRAINED_SPANS, check_spans, masked_row

__all__ = ["OWNED_SFT_KEYS", "build_sft_config", "build_sft_trainer", "check_sft", "completion_after_prefill",
           "load_sft_records", "sft_dataset", "text_cap", "train_sft"]

logger = logging.getLogger("ahazero.stages.sft")

#: Characters of a text kept per token of ``sft.max_length`` when a samples file is read (more than any token has).
CHARS_PER_TOKEN = 64

#: SFTConfig fields that ahazero sets from its own sections.
OWNED_SFT_KEYS = {
    "output_dir": "set by 'name' and 'output_root' (the run directory)",
    "report_to": "use 'logging.report_to'",
    "seed": "use the top-level 'seed'",
}


def _sft_fields() -> dict[str, dataclasses.Field]:
    from trl import SFTConfig

    return {f.name: f for f in dataclasses.fields(SFTConfig) if f.init}


def build_sft_config(cfg: ExperimentConfig, *, cuda: bool) -> Any:
    """``trl.SFTConfig`` from the ``sft`` section plus ahazero's settings (the section wins).

    ahazero sets: logging every step, checkpoints every 50 steps, bf16 only on a GPU that has
    it, ``completion_only_loss``, the seed, the trackers and the output folder.

    Example:
        >>> from ahazero.config.schema import validate_dict
        >>> cfg = validate_dict({"name": "x", "model": {"name_or_path": "tiny"}, "task": {"name": "arithmetic"},
        ...     "rewards": [{"name": "accuracy"}], "sft": {"data": "s.jsonl", "num_train_epochs": 2}})
        >>> args = build_sft_config(cfg, cuda=False)
        >>> args.num_train_epochs, args.completion_only_loss, args.output_dir
        (2, True, 'runs/x/checkpoints')
        >>> build_sft_config(validate_dict({**cfg.model_dump(), "sft": {"num_train_epoch": 2}}), cuda=False)
        Traceback (most recent call last):
        ...
        ahazero.config.schema.ConfigError: unknown key 'sft.num_train_epoch' (did you mean 'num_train_epochs'?); the sft section takes 'data' and any field of trl.SFTConfig: ...
    """
    import torch
    from trl import SFTConfig

    fields = _sft_fields()
    args = cfg.sft.args()
    for key in args:
        if key in OWNED_SFT_KEYS:
            raise ConfigError(f"sft.{key} is set by ahazero: {OWNED_SFT_KEYS[key]}")
        if key not in fields:
            close = difflib.get_close_matches(key, list(fields), n=3)
            hint = f" (did you mean {', '.join(repr(c) for c in close)}?)" if close else ""
            raise ConfigError(f"unknown key 'sft.{key}'{hint}; the sft section takes 'data' and any field of "
                              f"trl.SFTConfig: {', '.join(sorted(fields))}")
    settings: dict[str, Any] = {
        "logging_steps": 1,
        "save_strategy": "steps",
        "save_steps": 50,
        "bf16": bool(cuda and torch.cuda.is_bf16_supported()),
        "use_cpu": not cuda,
        "completion_only_loss": True,
        "report_to": [r for r in cfg.logging.report_to if r != "none"] or "none",
        "seed": cfg.seed,
        "output_dir": str(cfg.run_dir / "checkpoints"),
        **args,
    }
    try:
        return SFTConfig(**settings)
    except (ValueError, TypeError) as err:
        raise ConfigError(f"sft: {err}") from None


def text_cap(max_length: int | None) -> tuple[int, str]:
    """How many characters of a samples text SFT can use with ``sft.max_length`` tokens, and why (for the warning).

    A token is never 64 characters long in practice, so cutting there keeps everything the
    trainer's own truncation to ``max_length`` tokens keeps. Without a ``max_length``,
    :data:`~ahazero.stages.samples.MAX_TEXT_CHARS`.

    Example:
        >>> text_cap(1024)
        (65536, 'SFT reads at most sft.max_length=1024 tokens')
    """
    if max_length is None or max_length <= 0:
        return MAX_TEXT_CHARS, "longer than ahazero reads"
    return min(MAX_TEXT_CHARS, CHARS_PER_TOKEN * int(max_length)), f"SFT reads at most sft.max_length={max_length} tokens"


def load_sft_records(path: str | Path, max_length: int | None = None, *, warn: bool = True) -> list[dict[str, Any]]:
    """The records ``ahazero sft`` trains on: every record of the file not marked ``kept: false``.

    Texts are cut to what ``max_length`` tokens can hold (:func:`text_cap`) as the file is
    read (said in a warning, with ``warn``); ``problem`` and ``completion`` must be text and
    ``prefill``, when present, too.

    Example:
        >>> import tempfile, pathlib
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "s.jsonl"
        >>> _ = p.write_text('{"problem": "1+1", "completion": "2", "kept": false}\\n')
        >>> load_sft_records(p)
        Traceback (most recent call last):
        ...
        ahazero.stages.samples.SamplesError: .../s.jsonl has no kept examples (1 record(s) marked kept: false)
    """
    cap, why = text_cap(max_length)
    records = read_samples(path, max_text_chars=cap, why=why, warn=warn)
    usable = [r for r in records if r.get("kept", True) is not False]
    if not usable:
        raise SamplesError(f"{path} has no kept examples ({len(records)} record(s) marked kept: false)"
                           if records else f"{path} is empty")
    for number, record in enumerate(usable, 1):
        for key in ("problem", "completion"):
            if not isinstance(record.get(key), str):
                found = "" if record.get(key) is None else f" (it holds a {type(record[key]).__name__})"
                raise SamplesError(f"{path}: kept record {number} has no '{key}' text{found}")
        if not isinstance(record.get("prefill") or "", str):
            raise SamplesError(f"{path}: kept record {number} has a 'prefill' that is not text "
                               f"(a {type(record['prefill']).__name__})")
        try:
            check_spans(record, number)
        except SamplesError as err:
            raise SamplesError(f"{path}: {err}") from None
    return usable


def completion_after_prefill(record: dict[str, Any], prefill: str) -> str:
    """The record's answer text (its prefill + completion) after this prompt's ``prefill``.

    Example:
        >>> completion_after_prefill({"prefill": "", "completion": " <think>2</think>"}, "<think>\\n")
        '2</think>'
        >>> completion_after_prefill({"prefill": "", "completion": "2"}, "<think>")
        Traceback (most recent call last):
        ...
        ahazero.stages.samples.SamplesError: the completion does not start with the prompt's prefill '<think>': '2'
    """
    full = (record.get("prefill") or "") + record["completion"]
    if full.startswith(prefill):
        return full[len(prefill):]
    stripped, opener = full.lstrip(), prefill.strip()
    if opener and stripped.startswith(opener):
        return stripped[len(opener):].lstrip() if prefill.endswith(("\n", " ")) else stripped[len(opener):]
    raise SamplesError(f"the completion does not start with the prompt's prefill {prefill!r}: {full[:60]!r}")


def sft_dataset(records: list[dict[str, Any]], tokenizer: Any, cfg: ExperimentConfig) -> Any:
    """A prompt-completion ``datasets.Dataset`` for SFTTrainer, prompts rendered for this model.

    When a record marks parts of its completion ``untrained_spans`` (a reflective cold start
    with ``train_on_slips: false``), every row is tokenized here instead, with ``labels`` that
    leave the prompt and those parts out of the loss (:mod:`ahazero.stages.sft_masks`).

    Example:
        >>> from ahazero.config.schema import validate_dict
        >>> from ahazero.models.loading import load_model_and_tokenizer
        >>> _, tok = load_model_and_tokenizer("tiny")
        >>> cfg = validate_dict({"name": "x", "model": {"name_or_path": "tiny"}, "task": {"name": "arithmetic"},
        ...                      "rewards": [{"name": "accuracy"}]})
        >>> row = sft_dataset([{"problem": "Compute: 1 + 1", "prefill": "<think>\\n",
        ...                     "completion": "1 + 1 = 2</think>\\n<answer>2</answer>"}], tok, cfg)[0]
        >>> row["prompt"].endswith("<|im_start|>assistant\\n<think>\\n"), row["completion"][:9]
        (True, '1 + 1 = 2')
    """
    from datasets import Dataset

    from ahazero.tasks.prompts import render_prompt

    p = cfg.prompt
    rows, spans = [], []
    for number, record in enumerate(records, 1):
        prompt, prefill = render_prompt(record["problem"], template=p.template, tokenizer=tokenizer,
                                        system_prompt=p.system_prompt, prefill_think=p.prefill_think)
        try:
            completion = completion_after_prefill(record, prefill)
        except SamplesError as err:
            raise SamplesError(f"kept record {number} ({record.get('id', '?')}): {err}") from None
        rows.append({"prompt": prompt, "completion": completion})
        # the completion is a suffix of the record's prefill + completion: move its spans with it
        cut = len(record.get("prefill") or "") + len(record["completion"]) - len(completion)
        spans.append([(max(start - cut, 0), end - cut) for start, end in check_spans(record, number) if end > cut])
    if any(spans):  # tokenized rows whose labels leave the spans out of the loss
        mask_prompt = cfg.sft.args().get("completion_only_loss", True) is not False
        return Dataset.from_list([masked_row(row["prompt"], row["completion"], row_spans, tokenizer,
                                             mask_prompt=mask_prompt) for row, row_spans in zip(rows, spans)])
    return Dataset.from_list(rows)


def check_sft(cfg: ExperimentConfig, *, cuda: bool, data_ready: bool = True) -> Any:
    """Every check that needs no model; returns the ``SFTConfig``.

    With ``data_ready`` the samples file must exist and hold kept examples (a pipeline checks
    a file that an earlier stage writes later with ``data_ready=False``).

    Example:
        >>> from ahazero.config.schema import validate_dict
        >>> cfg = validate_dict({"name": "x", "model": {"name_or_path": "tiny"}, "task": {"name": "arithmetic"},
        ...                      "rewards": [{"name": "accuracy"}]})
        >>> check_sft(cfg, cuda=False)
        Traceback (most recent call last):
        ...
        ahazero.config.schema.ConfigError: sft.data: missing; give a samples file (from `ahazero sample` or `ahazero coldstart`)
    """
    from ahazero.config.validate import check_config

    if cfg.stages:
        raise ConfigError("this config has stages; run them with `ahazero stages CONFIG`")
    if not cfg.sft.data:
        raise ConfigError("sft.data: missing; give a samples file (from `ahazero sample` or `ahazero coldstart`)")
    args = build_sft_config(cfg, cuda=cuda)
    check_config(cfg, cuda=cuda)  # task, rewards and the run directory: what eval needs later
    if data_ready:
        try:
            load_sft_records(cfg.sft.data, args.max_length)
        except SamplesError as err:
            raise ConfigError(f"sft.data: {err}") from None
    return args


class SFTStepSummary(TrainerCallback):
    """One short line per logged SFT step: loss, token accuracy, learning rate."""

    def on_log(self, args, state, control, logs=None, **kwargs):  # noqa: D102
        if not state.is_world_process_zero or not logs or "loss" not in logs:
            return
        parts = [f"step {state.global_step}/{state.max_steps}", f"loss {logs['loss']:.3f}"]
        if logs.get("mean_token_accuracy") is not None:
            parts.append(f"token acc {logs['mean_token_accuracy']:.3f}")
        if logs.get("learning_rate") is not None:
            parts.append(f"lr {logs['learning_rate']:.2e}")
        if logs.get("updates_skipped"):
            parts.append("update skipped (non-finite gradient)")
        logger.info(" | ".join(parts))


def build_sft_trainer(cfg: ExperimentConfig, sft_args: Any, run_dir: RunDir) -> Any:
    """A ready-to-train ``SFTTrainer`` (model loaded, samples rendered, callbacks attached).

    Example:
        >>> trainer = build_sft_trainer(cfg, check_sft(cfg, cuda=False), RunDir(cfg.run_dir))   # doctest: +SKIP
        >>> trainer.train()                                                                      # doctest: +SKIP
    """
    from transformers.trainer_callback import ProgressCallback
    from trl import SFTTrainer

    from ahazero.models.loading import load_model_and_tokenizer, lora_config
    from ahazero.training.callbacks import MetricsJsonlCallback, NonFiniteGradientGuard, QuietProgressCallback

    model, tokenizer = load_model_and_tokenizer(cfg.model.name_or_path, dtype=cfg.model.dtype,
                                                revision=cfg.model.revision,
                                                trust_remote_code=cfg.model.trust_remote_code)
    records = load_sft_records(cfg.sft.data, sft_args.max_length, warn=False)  # check_sft said it already
    dataset = sft_dataset(records, tokenizer, cfg)
    masked = sum(bool(record.get(UNTRAINED_SPANS)) for record in records)
    logger.info("sft: %d examples from %s%s", len(dataset), cfg.sft.data,
                f" ({masked} with untrained spans left out of the loss)" if masked else "")
    callbacks = [NonFiniteGradientGuard(cfg.on_nonfinite), MetricsJsonlCallback(run_dir.metrics), SFTStepSummary()]
    trainer = SFTTrainer(model=model, args=sft_args, train_dataset=dataset, processing_class=tokenizer,
                         callbacks=callbacks, peft_config=lora_config(cfg.model.lora))
    if trainer.pop_callback(ProgressCallback) is not None:
        trainer.add_callback(QuietProgressCallback)
    return trainer


def train_sft(cfg: ExperimentConfig, *, resume: bool = False, cuda: bool | None = None) -> Path:
    """Fine-tune on ``sft.data`` into ``runs/<name>/``; return the run directory.

    Example:
        >>> train_sft(load_config("my-sft.yaml"))   # doctest: +SKIP
        PosixPath('runs/my-sft')
    """
    from ahazero.models.loading import gpu_available
    from ahazero.models.model_argument import check_model_argument
    from ahazero.training.assemble import fit, save_final_model
    from ahazero.training.tensorboard_env import tensorboard_dir

    cuda = gpu_available() if cuda is None else cuda
    sft_args = check_sft(cfg, cuda=cuda)
    check_model_argument(cfg.model.name_or_path, label=f"model.name_or_path {cfg.model.name_or_path}",
                         revision=cfg.model.revision)
    run_dir = RunDir(cfg.run_dir)
    lock = RunLock(run_dir.root)  # one writer per run directory, as for GRPO runs
    lock.acquire()
    try:
        resume_step = run_dir.prepare(resume=resume)
        run_dir.write_info(config_text=dump_config(cfg), seed=cfg.seed, device="cuda" if cuda else "cpu",
                           extra={"trainer": "sft", "resumed_from_step": resume_step, "data": cfg.sft.data})
        with tensorboard_dir(run_dir.tensorboard, enabled="tensorboard" in cfg.logging.report_to):
            trainer = build_sft_trainer(cfg, sft_args, run_dir)
            fit(trainer, run_dir, resume_step)
        save_final_model(trainer, run_dir)
    finally:
        lock.release()
    logger.info("sft finished: %s", run_dir.root)
    return run_dir.root
