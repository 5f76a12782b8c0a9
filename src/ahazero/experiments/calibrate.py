"""``ahazero calibrate``: each train problem's pass rate under the base model, for ``task.calibration``.

For every train problem of the config (its task, prompt and model), ``k`` completions are
sampled with the config's rollout settings (``grpo.temperature``, ``top_p``, ``top_k``,
``max_completion_length``) and scored with its correctness reward. The pass rate is the
share that are correct. Written: ``calibration/<name>.jsonl`` (one line per problem: ``id``,
``pass_rate``, ``correct``, ``k``, problem, gold) and ``calibration/<name>.summary.json`` /
``.md`` (band, counts kept / below / above, a histogram, sampling settings).

Train with the band: ``ahazero train CONFIG task.calibration=calibration/<name>.jsonl
task.pass_rate_band=[0.1,0.7]``. Generation is batched: on a GPU with ahazero's graph
sampler (fixed shapes, one CUDA graph per token), elsewhere with ``model.generate``.

Example:
    >>> parse_band("0.1,0.7")
    (0.1, 0.7)
    >>> default_output("aha").as_posix()
    'calibration/aha.jsonl'
"""

from __future__ import annotations

import json
import logging
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console

from ahazero.cache.atomic_files import atomic_write_text
from ahazero.config.output_paths import check_output_files
from ahazero.config.schema import ConfigError, ExperimentConfig, validate_dict
from ahazero.observe.tracing import CORRECTNESS_REWARDS
from ahazero.tasks.calibration import band_counts, write_calibration

__all__ = ["CalibrationSettings", "add_parser", "calibrate", "default_output", "parse_band", "render_summary",
           "run_calibrate", "sample_completions", "without_calibration"]

logger = logging.getLogger("ahazero.experiments.calibrate")


@dataclass
class CalibrationSettings:
    """How to calibrate: samples per problem, the band, which model, how many problems, batch size."""

    k: int = 8
    band: tuple[float, float] = (0.1, 0.7)
    model: str = "base"  # base: the config's model; else a model path, hub id or named model
    limit: int | None = None  # only the first N train problems
    batch_size: int = 256  # sequences per generation call (problems x k)
    backend: str = "auto"  # auto: graph on a GPU, else hf
    max_seconds: float | None = None  # stop sampling after this long; the problems done so far are written

    def check(self) -> None:
        """Raise :class:`ConfigError` for settings that cannot work.

        Example:
            >>> CalibrationSettings(k=0).check()
            Traceback (most recent call last):
            ...
            ahazero.config.schema.ConfigError: --k must be at least 1 (got 0)
        """
        if self.k < 1:
            raise ConfigError(f"--k must be at least 1 (got {self.k})")
        low, high = self.band
        if not 0.0 <= low <= high <= 1.0:
            raise ConfigError(f"--band must be LOW,HIGH with 0 <= LOW <= HIGH <= 1 (got {low},{high})")
        if self.limit is not None and self.limit < 1:
            raise ConfigError(f"--limit must be at least 1 (got {self.limit})")
        if self.batch_size < 1:
            raise ConfigError(f"--batch-size must be at least 1 (got {self.batch_size})")
        if self.max_seconds is not None and not self.max_seconds > 0:
            raise ConfigError(f"--max-seconds must be above 0 (got {self.max_seconds})")
        if self.backend not in ("auto", "graph", "hf"):
            raise ConfigError(f"unknown calibration backend {self.backend!r}; valid choices: auto, graph, hf")


def parse_band(text: str) -> tuple[float, float]:
    """``"LOW,HIGH"`` as two floats; :class:`ConfigError` with the expected form otherwise.

    Example:
        >>> parse_band("0.2, 0.6")
        (0.2, 0.6)
        >>> parse_band("0.2")
        Traceback (most recent call last):
        ...
        ahazero.config.schema.ConfigError: --band must be LOW,HIGH (e.g. 0.1,0.7), got '0.2'
    """
    parts = [p.strip() for p in str(text).split(",")]
    try:
        if len(parts) != 2:
            raise ValueError
        low, high = float(parts[0]), float(parts[1])
    except ValueError:
        raise ConfigError(f"--band must be LOW,HIGH (e.g. 0.1,0.7), got {text!r}") from None
    return low, high


def default_output(name: str) -> Path:
    """Where a config's calibration goes by default: ``calibration/<name>.jsonl``.

    Example:
        >>> default_output("default-cpu").name
        'default-cpu.jsonl'
    """
    return Path("calibration") / f"{name}.jsonl"


def without_calibration(cfg: ExperimentConfig) -> ExperimentConfig:
    """The config with ``task.calibration`` / ``task.pass_rate_band`` removed (calibrate the whole train split).

    Example:
        >>> cfg = validate_dict({"name": "x", "model": {"name_or_path": "tiny"}, "rewards": [{"name": "accuracy"}],
        ...                      "task": {"name": "arithmetic", "pass_rate_band": [0.2, 0.5]}})
        >>> without_calibration(cfg).task.options()
        {}
    """
    data = cfg.model_dump(mode="python")
    for key in ("calibration", "pass_rate_band"):
        data["task"].pop(key, None)
    if data["model"].get("lora") is None:
        data["model"].pop("lora", None)
    return validate_dict(data)


def _sampling(args: Any) -> dict[str, Any]:
    """The rollout sampling settings of a built ``GRPOConfig``."""
    return {"temperature": float(args.temperature), "top_p": float(args.top_p if args.top_p is not None else 1.0),
            "top_k": 0 if args.top_k is None else int(args.top_k), "max_new_tokens": int(args.max_completion_length),
            "repetition_penalty": (1.0 if args.repetition_penalty is None
                                   else float(args.repetition_penalty)), "min_p": args.min_p,
            "generation_kwargs": dict(args.generation_kwargs or {})}


def _graph_can_sample(sampling: dict[str, Any]) -> bool:
    return sampling["repetition_penalty"] == 1.0 and sampling["min_p"] is None and not sampling["generation_kwargs"]


def _left_pad(ids: Any, mask: Any, multiple: int, pad_id: int) -> tuple[Any, Any]:
    import torch

    extra = -ids.shape[1] % multiple
    if not extra:
        return ids, mask
    return (torch.nn.functional.pad(ids, (extra, 0), value=pad_id),
            torch.nn.functional.pad(mask, (extra, 0), value=0))


def _cut(row: list[int], eos: set[int], pad_id: int | None) -> list[int]:
    for i, token in enumerate(row):
        if token in eos or token == pad_id:
            return row[:i]
    return row


def sample_completions(model: Any, tokenizer: Any, prompts: list[str], *, k: int, sampling: dict[str, Any],
                       batch_size: int, backend: str, bucket: int = 64,
                       deadline: float | None = None) -> list[list[tuple[str, int]]]:
    """``k`` sampled ``(text, tokens)`` per prompt, batched; ``backend`` is ``graph`` or ``hf``.

    With ``deadline`` (a ``time.monotonic()`` value) no new batch starts after it: the result
    then covers only the first prompts (at least one batch's).

    ``graph`` keeps every call at one shape (the last batch is filled with repeats that are
    then dropped, prompts left-padded to a multiple of ``bucket``), so one CUDA graph serves
    the whole run.

    Example:
        >>> out = sample_completions(model, tok, ["1+1?"], k=2, sampling=s, batch_size=8,   # doctest: +SKIP
        ...                          backend="hf")
        >>> len(out), len(out[0])                                                              # doctest: +SKIP
        (1, 2)
    """
    import torch
    from rich.progress import Progress

    from ahazero.rollout.batching import eos_token_ids
    from ahazero.rollout.graph_sampler import GraphSampler

    device = next(model.parameters()).device
    eos = eos_token_ids(model, tokenizer)
    pad_id = tokenizer.pad_token_id
    per_call = max(1, batch_size // k)
    sampler = GraphSampler() if backend == "graph" else None
    outputs: list[list[tuple[str, int]]] = []
    with Progress(transient=False) as progress:
        bar = progress.add_task(f"sampling k={k} ({backend})", total=len(prompts))
        for start in range(0, len(prompts), per_call):
            if deadline is not None and start and time.monotonic() >= deadline:
                break
            chunk = prompts[start:start + per_call]
            real = len(chunk)
            if sampler is not None:
                chunk = chunk + [chunk[-1]] * (per_call - real)
            enc = tokenizer([p for p in chunk for _ in range(k)], return_tensors="pt", padding=True,
                            add_special_tokens=False)
            ids, mask = enc["input_ids"], enc["attention_mask"]
            with torch.no_grad():  # as in training: the graph sampler's static cache is made and reused here
                if sampler is not None:
                    ids, mask = _left_pad(ids, mask, bucket, pad_id)
                    rows = sampler.generate(model, ids.to(device), mask.to(device),
                                            max_new_tokens=sampling["max_new_tokens"], eos_token_ids=eos,
                                            pad_token_id=pad_id, temperature=sampling["temperature"],
                                            top_k=sampling["top_k"], top_p=sampling["top_p"])
                else:
                    extra = {"repetition_penalty": sampling["repetition_penalty"], **sampling["generation_kwargs"]}
                    if sampling["min_p"] is not None:
                        extra["min_p"] = sampling["min_p"]
                    out = model.generate(input_ids=ids.to(device), attention_mask=mask.to(device), do_sample=True,
                                         temperature=sampling["temperature"], top_p=sampling["top_p"],
                                         top_k=sampling["top_k"], max_new_tokens=sampling["max_new_tokens"],
                                         pad_token_id=pad_id, eos_token_id=eos, **extra)
                    rows = out[:, ids.shape[1]:].tolist()
            rows = [_cut(list(r), set(eos), pad_id) for r in rows[: real * k]]
            texts = tokenizer.batch_decode(rows, skip_special_tokens=True)
            for i in range(real):
                outputs.append([(texts[i * k + j], len(rows[i * k + j])) for j in range(k)])
            progress.advance(bar, real)
    return outputs


def _score(func: Any, rows: list[dict[str, Any]], texts: list[str]) -> list[float | None]:
    columns = {key: [row[key] for row in rows] for key in rows[0] if key != "prompt"}
    return list(func(prompts=[r["prompt"] for r in rows], completions=texts, **columns))


def calibrate(cfg: ExperimentConfig, settings: CalibrationSettings, *, out: str | Path | None = None,
              overwrite: bool = False) -> dict[str, Any]:
    """Sample, score and write a calibration file and its summary; return the summary.

    Example:
        >>> summary = calibrate(load_config("configs/aha-multiplication.yaml"), CalibrationSettings(k=8))   # doctest: +SKIP
        >>> summary["kept"], summary["file"]                                                   # doctest: +SKIP
        (812, 'calibration/aha-multiplication.jsonl')
    """
    import torch

    from ahazero.config.validate import check_config
    from ahazero.models.model_argument import check_model_argument
    from ahazero.observe.run_lock import claim_output

    settings.check()
    path = Path(out) if out is not None else default_output(cfg.name)
    if path.suffix != ".jsonl":
        raise ConfigError(f"--out must be a .jsonl file (got {path})")
    outputs = [path, path.with_suffix(".summary.json"), path.with_suffix(".summary.md")]
    check_output_files(outputs, overwrite=overwrite)
    cfg = without_calibration(cfg)
    checked = check_config(cfg)
    correct_f = next((f for name in CORRECTNESS_REWARDS for f in checked.reward_funcs
                      if getattr(f, "__name__", None) == name), None)
    if correct_f is None:
        raise ConfigError(f"calibration needs a correctness reward in 'rewards' (one of: "
                          f"{', '.join(CORRECTNESS_REWARDS)})")
    sampling = _sampling(checked.grpo_args)
    cuda = torch.cuda.is_available()
    backend = settings.backend if settings.backend != "auto" else ("graph" if cuda else "hf")
    if backend == "graph" and not _graph_can_sample(sampling):
        logger.warning("the graph sampler has no repetition_penalty / min_p / generation_kwargs: using hf")
        backend = "hf"
    base = settings.model == "base"
    source = cfg.model.name_or_path if base else settings.model
    check_model_argument(source, label=f"--model {settings.model}" + (f" -> {source}" if base else ""))
    with claim_output(outputs, overwrite=overwrite):  # one calibration writes these files at a time
        return _calibrate(cfg, checked, settings, correct_f, sampling, backend, source, outputs)


def _calibrate(cfg: ExperimentConfig, checked: Any, settings: CalibrationSettings, correct_f: Any,
               sampling: dict[str, Any], backend: str, source: str, outputs: list[Path]) -> dict[str, Any]:
    import torch
    from transformers import set_seed

    from ahazero.models.loading import load_model_and_tokenizer
    from ahazero.training.assemble import prepare_dataset

    path, summary_path, summary_md = outputs
    base = settings.model == "base"
    cuda = torch.cuda.is_available()
    model, tokenizer = load_model_and_tokenizer(source, dtype=cfg.model.dtype, revision=cfg.model.revision if base
                                                else None, trust_remote_code=cfg.model.trust_remote_code)
    if cuda:
        model = model.to("cuda")
    model.eval()
    dataset = prepare_dataset(checked.task, "train", tokenizer, cfg)
    if settings.limit is not None:
        dataset = dataset.select(range(min(settings.limit, len(dataset))))
    rows = [dict(r) for r in dataset]
    if not rows:
        raise ConfigError(f"task '{cfg.task.name}' has no train problems to calibrate")

    set_seed(cfg.seed)
    start = time.perf_counter()
    deadline = None if settings.max_seconds is None else time.monotonic() + settings.max_seconds
    samples = sample_completions(model, tokenizer, [r["prompt"] for r in rows], k=settings.k, sampling=sampling,
                                 batch_size=settings.batch_size, backend=backend,
                                 bucket=cfg.generation.prompt_bucket, deadline=deadline)
    requested = len(rows)
    rows = rows[:len(samples)]  # a time limit may have ended sampling early: the first problems, in order
    if len(rows) < requested:
        logger.warning("--max-seconds %g: calibrated the first %d of %d train problems (the others count as not "
                       "calibrated: a band leaves them out)", settings.max_seconds, len(rows), requested)
    flat_rows = [r for r in rows for _ in range(settings.k)]
    flat = [s for group in samples for s in group]
    scores = _score(correct_f, flat_rows, [text for text, _ in flat])
    seconds = time.perf_counter() - start

    k = settings.k
    results = []
    for i, row in enumerate(rows):
        group = scores[i * k:(i + 1) * k]
        results.append({"id": str(row["id"]), "correct": sum(1 for v in group if v is not None and v >= 1.0 - 1e-6),
                        "k": k, "problem": row.get("problem"), "answer": str(row.get("answer")),
                        "unscored": sum(1 for v in group if v is None)})
    write_calibration(path, results)
    rates = {r["id"]: r["correct"] / k for r in results}
    counts = band_counts(rates, list(rates), settings.band)
    histogram = Counter(r["correct"] for r in results)
    summary: dict[str, Any] = {
        "file": str(path), "config_name": cfg.name, "model": source, "task": {"name": cfg.task.name,
                                                                              **checked.task.model_dump(mode="json")},
        "prompt": cfg.prompt.model_dump(mode="json"), "k": k, "sampling": sampling, "backend": backend,
        "band": list(settings.band), "n": len(results), "requested": requested, "kept": counts.kept, "below": counts.below,
        "above": counts.above, "mean_pass_rate": sum(rates.values()) / len(rates),
        "histogram": {f"{c}/{k}": histogram.get(c, 0) for c in range(k + 1)},
        "truncation_rate": sum(n >= sampling["max_new_tokens"] for _, n in flat) / len(flat),
        "completion_tokens_mean": sum(n for _, n in flat) / len(flat),
        "unscored": sum(r["unscored"] for r in results), "seconds": seconds,
        "use": f"task.calibration={path.as_posix()} task.pass_rate_band=[{settings.band[0]:g},{settings.band[1]:g}]",
    }
    atomic_write_text(summary_path, json.dumps(summary, indent=2) + "\n")
    atomic_write_text(summary_md, render_summary(summary))
    summary["files"] = [str(p) for p in outputs]
    return summary


def render_summary(summary: dict[str, Any]) -> str:
    """The calibration summary as markdown.

    Example:
        >>> s = {"file": "c.jsonl", "model": "m", "task": {"name": "multiplication"}, "k": 2, "band": [0.1, 0.7],
        ...      "n": 3, "kept": 1, "below": 2, "above": 0, "mean_pass_rate": 0.17, "histogram": {"0/2": 2, "1/2": 1,
        ...      "2/2": 0}, "sampling": {"temperature": 1.0, "max_new_tokens": 256}, "truncation_rate": 0.0,
        ...      "backend": "hf", "seconds": 1.0, "use": "task.calibration=c.jsonl"}
        >>> print(render_summary(s).splitlines()[2])
        | band | kept | below | above | all |
    """
    band = summary["band"]
    lines = [
        f"**Calibration** of `{summary['task'].get('name')}` with {summary['model']}: k={summary['k']} samples per "
        f"problem at temperature {summary['sampling'].get('temperature')}, up to "
        f"{summary['sampling'].get('max_new_tokens')} tokens ({summary['backend']}, {summary['seconds']:.0f} s)",
        "",
        "| band | kept | below | above | all |",
        "|---|---|---|---|---|",
        f"| [{band[0]:g}, {band[1]:g}] | {summary['kept']} | {summary['below']} | {summary['above']} | {summary['n']} |",
        "",
        f"Mean pass rate {summary['mean_pass_rate']:.1%}; truncated completions {summary['truncation_rate']:.1%}.",
        *(["", f"The time limit (--max-seconds) ended sampling after the first {summary['n']} of "
               f"{summary['requested']} train problems; the others are not calibrated and a band leaves them out."]
          if summary.get("requested", summary["n"]) > summary["n"] else []),
        "",
        "| correct of k | problems |",
        "|---|---|",
        *[f"| {key} | {value} |" for key, value in summary["histogram"].items()],
        "",
        f"Train with the band: `{summary['use']}`",
    ]
    return "\n".join(lines) + "\n"


def add_parser(subparsers: Any) -> Any:
    """Register ``ahazero calibrate`` and return its parser.

    Example:
        >>> import argparse
        >>> parser = argparse.ArgumentParser(); sub = parser.add_subparsers()
        >>> _ = add_parser(sub)
        >>> args = parser.parse_args(["calibrate", "c.yaml", "seed=1", "--k", "4"])
        >>> args.k, args.band, args.overrides
        (4, '0.1,0.7', ['seed=1'])
    """
    p = subparsers.add_parser(
        "calibrate", help="each train problem's pass rate under the base model (k samples), for task.calibration",
        description="Sample k completions per train problem with the config's model and rollout settings, score "
                    "them, and write calibration/<name>.jsonl plus a summary; train on the problems in a band with "
                    "task.calibration=FILE task.pass_rate_band=[LOW,HIGH].")
    p.add_argument("config", help="the config to calibrate (model, task, prompt, rewards, grpo sampling settings)")
    p.add_argument("overrides", nargs="*", help="dotted overrides, e.g. task.num_train=1000")
    p.add_argument("--k", type=int, default=8, help="samples per problem (default 8)")
    p.add_argument("--band", default="0.1,0.7", help="pass-rate band LOW,HIGH counted in the summary (default 0.1,0.7)")
    p.add_argument("--model", default="base", help="base (the config's model) or a model path / hub id / name")
    p.add_argument("--limit", type=int, default=None, help="calibrate only the first N train problems")
    p.add_argument("--batch-size", type=int, default=256, help="sequences per generation call (default 256)")
    p.add_argument("--max-seconds", type=float, default=None,
                   help="stop sampling after this many seconds and write the problems done so far (the first ones)")
    p.add_argument("--out", default=None, help="output .jsonl (default calibration/<name>.jsonl)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing calibration file")
    p.add_argument("--preset", action="append", default=[], metavar="NAME", help="a memory preset (repeatable)")
    p.set_defaults(func=run_calibrate)
    return p


def run_calibrate(args: Any, console: Console | None = None) -> int:
    """Run ``ahazero calibrate`` with parsed ``args``; returns the exit code (config errors raise ConfigError).

    Example:
        >>> import argparse
        >>> run_calibrate(argparse.Namespace(config="c.yaml", overrides=[], k=8, band="0.1", model="base",
        ...               limit=None, batch_size=8, out=None, overwrite=False, preset=[]))
        Traceback (most recent call last):
        ...
        ahazero.config.schema.ConfigError: --band must be LOW,HIGH (e.g. 0.1,0.7), got '0.1'
    """
    from ahazero.models.loading import gpu_available
    from ahazero.training.assemble import load_for_device

    console = console or Console()
    settings = CalibrationSettings(k=args.k, band=parse_band(args.band), model=args.model, limit=args.limit,
                                   batch_size=args.batch_size, max_seconds=getattr(args, "max_seconds", None))
    settings.check()
    cfg = load_for_device(args.config, cuda=gpu_available(), presets=args.preset, overrides=args.overrides)
    summary = calibrate(cfg, settings, out=args.out, overwrite=args.overwrite)
    console.print(render_summary(summary), markup=False, highlight=False)
    console.print("wrote " + ", ".join(summary["files"]))
    return 0
