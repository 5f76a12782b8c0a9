"""``ahazero sample``: rejection sampling — K completions per prompt, scored, the good ones kept.

:func:`sample` draws ``n`` completions per prompt of a task split from a model (the run's
final model, a checkpoint, the base model or any model path) with the config's sampling
settings (``grpo.temperature``, ``top_p``, ``top_k``, ``max_completion_length``), scores them
with the config's rewards and keeps the correct, formatted, language-consistent ones (see
:mod:`ahazero.stages.samples`). :func:`sample_from_traces` does the same with the completions
a GRPO run already traced, without a model.

Example:
    >>> from ahazero.config.schema import validate_dict
    >>> cfg = validate_dict({"name": "x", "model": {"name_or_path": "tiny", "dtype": "float32"},
    ...     "task": {"name": "arithmetic", "num_train": 2, "num_test": 1},
    ...     "rewards": [{"name": "accuracy"}, {"name": "think_format"}],
    ...     "grpo": {"max_completion_length": 4}})
    >>> summary = sample(cfg, SampleRequest(model="base", n=2, quiet=True))
    >>> summary["sampled"], [p.rsplit("/", 1)[-1] for p in summary["files"]]
    (4, ['base-train.jsonl', 'base-train.rejected.jsonl', 'base-train.summary.json'])
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ahazero.config.schema import ConfigError, ExperimentConfig
from ahazero.stages.samples import (
    RejectionRules,
    SamplesError,
    sample_paths,
    select_samples,
    summarize_samples,
    write_samples,
)
from ahazero.stages.scoring import check_scorable, score_records

__all__ = ["SampleRequest", "check_sample", "sample", "sample_from_traces"]

logger = logging.getLogger("ahazero.stages.sample")


@dataclass(frozen=True)
class SampleRequest:
    """What to sample and what to keep."""

    model: str | None = None  #: base | final | latest | step-N | a model path or name (default: final, else base)
    split: str = "train"
    n: int = 8  #: completions per prompt
    max_per_prompt: int = 1
    prompts: int | None = None  #: only the first N prompts of the split
    min_language: float = 1.0
    batch_size: int = 256  #: sequences per generation batch
    out: str | Path | None = None  #: default: <run dir>/samples/<model tag>-<split>.jsonl
    quiet: bool = False  #: no progress bar
    overwrite: bool = False  #: replace existing samples files (else they are an error, before any model loads)

    def rules(self) -> RejectionRules:
        """The rejection rules of this request."""
        return RejectionRules(max_per_prompt=self.max_per_prompt, min_language=self.min_language)


def _rules(request: SampleRequest) -> RejectionRules:
    try:
        return request.rules()
    except ValueError as err:
        raise ConfigError(f"sample: {err}") from None


def check_sample(cfg: ExperimentConfig, request: SampleRequest, *, cuda: bool) -> Any:
    """Every check that needs no model: the config, the rules, the split; returns the checked config.

    Example:
        >>> from ahazero.config.schema import validate_dict
        >>> cfg = validate_dict({"name": "x", "model": {"name_or_path": "tiny"}, "task": {"name": "arithmetic"},
        ...                      "rewards": [{"name": "accuracy"}]})
        >>> check_sample(cfg, SampleRequest(split="dev"), cuda=False)
        Traceback (most recent call last):
        ...
        ahazero.config.schema.ConfigError: sample: unknown split 'dev'; valid choices: train, test
    """
    from ahazero.config.validate import check_config

    if request.split not in ("train", "test"):
        raise ConfigError(f"sample: unknown split '{request.split}'; valid choices: train, test")
    if request.n < 1 or request.batch_size < 1 or (request.prompts is not None and request.prompts < 1):
        raise ConfigError(f"sample: n ({request.n}), batch size ({request.batch_size}) and prompts "
                          f"({request.prompts}) must be at least 1")
    _rules(request)
    checked = check_config(cfg, cuda=cuda)
    check_scorable(checked)
    from ahazero.config.backend_choice import GRAPH_UNSUPPORTED

    ignored = [k for k, neutral in GRAPH_UNSUPPORTED.items() if cfg.grpo.get(k, neutral) != neutral]
    if ignored:
        logger.warning("sample uses temperature, top_p, top_k and max_completion_length only; it does not apply "
                       "grpo.%s", ", grpo.".join(ignored))
    return checked


def _resolve_model(cfg: ExperimentConfig, model: str | None) -> tuple[str, str]:
    """The model to sample from and its tag, checked to be loadable (one line when it is not)."""
    from ahazero.evaluate import resolve_eval_model
    from ahazero.models.model_argument import check_model_argument

    try:
        source, tag = resolve_eval_model(cfg, model)
    except FileNotFoundError as err:
        raise ConfigError(f"--model {model}: {err}") from None
    check_model_argument(source, label=f"--model {model or '(default)'}" + (f" -> {source}" if source != model else ""))
    return source, tag


def _claim(out: Path, request: SampleRequest) -> Any:
    """Check and lock the three samples files of ``out`` (before any model loads); the held lock."""
    from ahazero.observe.run_lock import claim_output

    return claim_output(sample_paths(out), overwrite=request.overwrite)


def _finish(records: list[dict[str, Any]], request: SampleRequest, out: Path, info: dict[str, Any]) -> dict[str, Any]:
    rules = _rules(request)
    selected = select_samples(records, rules)
    summary = summarize_samples(selected, rules=rules, info=info)
    summary["files"] = [str(p) for p in write_samples(selected, out, summary)]
    logger.info("kept %d of %d completions from %d prompts: %s", summary["kept"], summary["sampled"],
                summary["prompts"], summary["files"][0])
    return summary


def sample(cfg: ExperimentConfig, request: SampleRequest, *, cuda: bool | None = None) -> dict[str, Any]:
    """Sample, score and select; write the samples files; return the summary (with ``files``).

    The model and the output files are checked, and the output locked, before the model loads.
    """
    from ahazero.models.loading import gpu_available

    cuda = gpu_available() if cuda is None else cuda
    checked = check_sample(cfg, request, cuda=cuda)
    source, tag = _resolve_model(cfg, request.model)
    out = Path(request.out) if request.out else cfg.run_dir / "samples" / f"{tag}-{request.split}.jsonl"
    with _claim(out, request):
        return _sample(cfg, request, checked, source, tag, out, cuda=cuda)


def _sample(cfg: ExperimentConfig, request: SampleRequest, checked: Any, source: str, tag: str, out: Path, *,
            cuda: bool) -> dict[str, Any]:
    from transformers import set_seed

    from ahazero.models.loading import load_model_and_tokenizer
    from ahazero.stages.generate import Sampling, sample_completions
    from ahazero.training.assemble import prepare_dataset

    model, tokenizer = load_model_and_tokenizer(source, dtype=cfg.model.dtype, revision=None,
                                                trust_remote_code=cfg.model.trust_remote_code)
    if cuda:
        model = model.to("cuda")
    dataset = prepare_dataset(checked.task, request.split, tokenizer, cfg)
    if request.prompts is not None:
        dataset = dataset.select(range(min(request.prompts, len(dataset))))
    rows = [dict(r) for r in dataset]
    if not rows:
        raise ConfigError(f"task '{cfg.task.name}' has no {request.split} problems to sample")
    args = checked.grpo_args
    sampling = Sampling(n=request.n, max_new_tokens=int(args.max_completion_length),
                        temperature=float(args.temperature), top_p=float(args.top_p),
                        top_k=0 if args.top_k is None else int(args.top_k),
                        batch_size=request.batch_size, use_graph=cuda and checked.backend == "graph",
                        prompt_bucket=cfg.generation.prompt_bucket)
    set_seed(cfg.seed)
    start = time.perf_counter()
    generated = sample_completions(model, tokenizer, [r["prompt"] for r in rows], sampling, quiet=request.quiet)
    seconds = time.perf_counter() - start
    flat_rows = [row for row, group in zip(rows, generated) for _ in group]
    flat = [g for group in generated for g in group]
    records = score_records(checked, flat_rows, [g["text"] for g in flat],
                            completion_tokens=[g["tokens"] for g in flat], truncated=[g["truncated"] for g in flat],
                            tokenizer=tokenizer, source=f"model:{source}")
    info = {"source": f"model:{source}", "model": source, "tag": tag, "task": cfg.task.name, "split": request.split,
            "samples_per_prompt": request.n, "sampling": {k: getattr(sampling, k) for k in (
                "max_new_tokens", "temperature", "top_p", "top_k", "batch_size", "use_graph")},
            "generation_seconds": seconds,
            "generated_tokens": sum(g["tokens"] for g in flat)}
    return _finish(records, request, out, info)


def sample_from_traces(cfg: ExperimentConfig, run: str | Path, request: SampleRequest, *,
                       steps: tuple[int | None, int | None] = (None, None)) -> dict[str, Any]:
    """Select from the completions a run traced (``steps``: an inclusive range, None = open end).

    The completions are scored again with ``cfg``'s rewards, so the rules are those of a fresh
    sample; the task's train split gives each prompt's columns. The latest steps come first,
    so the most trained policy's completions fill the per-prompt limit.

    Example:
        >>> from ahazero.config.schema import validate_dict
        >>> cfg = validate_dict({"name": "x", "model": {"name_or_path": "tiny"}, "task": {"name": "arithmetic"},
        ...                      "rewards": [{"name": "accuracy"}]})
        >>> sample_from_traces(cfg, "no/such/run", SampleRequest())
        Traceback (most recent call last):
        ...
        ahazero.stages.samples.SamplesError: no traces in no/such/run (steps any to any)
    """
    from ahazero.config.validate import check_config
    from ahazero.observe.trace_store import load_traces, steps_with_traces

    lo, hi = steps
    wanted = [s for s in steps_with_traces(run) if (lo is None or s >= lo) and (hi is None or s <= hi)]
    traces = load_traces(run, wanted) if wanted else []
    if not traces:
        raise SamplesError(f"no traces in {run} (steps {lo or 'any'} to {hi or 'any'})")
    out = Path(request.out) if request.out else Path(run) / "samples" / "traces-train.jsonl"
    with _claim(out, request):  # checked and locked before the traces are scored
        _rules(request)
        checked = check_config(cfg, cuda=False)
        check_scorable(checked)
        by_id = {str(row["id"]): dict(row) for row in checked.task.load("train")}
        missing = sorted({str(t.get("prompt_id")) for t in traces} - set(by_id))
        if missing:
            raise ConfigError(f"{len(missing)} traced prompt(s) of {run} are not in task '{cfg.task.name}''s "
                              f"train split (e.g. {missing[0]}); pass the run's own config "
                              f"({Path(run) / 'config.yaml'})")
        traces.sort(key=lambda t: -int(t.get("step", 0)))  # stable: within a step, the traced order
        rows = [{**by_id[str(t["prompt_id"])], "prompt": t.get("prompt", ""), "prefill": t.get("prefill", "")}
                for t in traces]
        records = score_records(checked, rows, [t.get("completion", "") for t in traces],
                                completion_tokens=[int(t.get("completion_tokens") or 0) for t in traces],
                                truncated=[bool(t.get("truncated")) for t in traces])
        for record, trace in zip(records, traces):
            record["source"] = f"traces:{run}"
            record["step"] = trace.get("step")
        info = {"source": f"traces:{run}", "task": cfg.task.name, "split": "train", "steps": wanted}
        return _finish(records, request, out, info)
