"""``ahazero eval``: held-out accuracy and behaviours of a base model or a trained run.

Scores with the run's own reward functions (same verifier as training): pass@1 from greedy
decoding, and pass@k / maj@k from ``k`` samples per problem. The correctness reward grades
like the field whatever the training reward reads: an ``accuracy`` reward with
``answer_source: tags`` is used with ``any`` for pass@1 (answer tags, else the final
``\boxed{}``), and the strict reading, only answers inside ``<answer>`` tags, is reported
beside it as ``pass@1_in_tags`` (for any ``accuracy`` reward).
Also reports format rate, thinking length, reflection rate (R1's words and Dr. GRPO's
keywords), language consistency and self-correction (``self_check``, :mod:`ahazero.observe.self_check`);
a trained model's results carry the base model's (``eval/base.json``, when present) and the
first training step's reflection rates beside them.
Results go to ``runs/<name>/eval/<tag>.json`` and ``<tag>.md``, and every completion to
``<tag>-samples.jsonl``.

Example:
    >>> majority_answer(["4", " 4", "5"])
    '4'
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ahazero.cache.atomic_files import atomic_write_lines, atomic_write_text
from ahazero.config.output_paths import check_output_folder
from ahazero.config.schema import ExperimentConfig
from ahazero.eval_sampler import graph_completions, uses_graph_sampler
from ahazero.observe import self_check
from ahazero.observe.behaviours import describe, summarize
from ahazero.observe.rundir import RunDir, read_metrics
from ahazero.observe.tracing import CORRECTNESS_REWARDS, FORMAT_REWARDS, first_reward
from rewards.accuracy import AccuracyReward

__all__ = ["EvalError", "EvalSettings", "check_settings", "evaluate", "graders", "majority_answer",
           "reference_numbers", "render_markdown", "resolve_eval_model"]

logger = logging.getLogger("ahazero.eval")


class EvalError(ValueError):
    """An ``ahazero eval`` argument that cannot work (no such checkpoint, run or path; a bad number)."""


@dataclass
class EvalSettings:
    """How to evaluate: split, size, decoding."""

    split: str = "test"
    limit: int | None = None
    batch_size: int = 64
    max_new_tokens: int = 512
    samples: int = 0  # k for pass@k / maj@k; 0 = greedy only
    temperature: float = 1.0
    top_p: float = 1.0
    seed: int = 0


def majority_answer(answers: Sequence[str | None]) -> str | None:
    """The most common extracted answer (whitespace-normalised); ties go to the first seen.

    Example:
        >>> majority_answer([None, "1/2", "0.5", "1/2"])
        '1/2'
    """
    normal = ["".join(a.split()) for a in answers if a is not None and a.strip()]
    if not normal:
        return None
    counts = Counter(normal)
    best = max(counts.values())
    return next(a for a in normal if counts[a] == best)


def check_settings(settings: EvalSettings) -> None:
    """Raise :class:`EvalError` for settings that cannot work, before any model loads.

    Example:
        >>> check_settings(EvalSettings(limit=0))
        Traceback (most recent call last):
        ...
        ahazero.evaluate.EvalError: --limit must be at least 1 (got 0); leave it out to evaluate every problem
    """
    if settings.split not in ("train", "test"):
        raise EvalError(f"--split must be train or test (got {settings.split!r})")
    if settings.limit is not None and settings.limit < 1:
        raise EvalError(f"--limit must be at least 1 (got {settings.limit}); leave it out to evaluate every problem")
    if settings.batch_size < 1:
        raise EvalError(f"--batch-size must be at least 1 (got {settings.batch_size})")
    if settings.max_new_tokens < 1:
        raise EvalError(f"--max-new-tokens must be at least 1 (got {settings.max_new_tokens})")
    if settings.samples < 0 or settings.samples == 1:
        raise EvalError(f"--samples must be 0 (greedy only) or at least 2 for pass@k and maj@k "
                        f"(got {settings.samples})")
    if not (math.isfinite(settings.temperature) and settings.temperature > 0):
        raise EvalError(f"--temperature must be a finite number > 0 (got {settings.temperature})")
    if not (math.isfinite(settings.top_p) and 0 < settings.top_p <= 1):
        raise EvalError(f"top_p must be in (0, 1] (got {settings.top_p})")


#: A ``--model`` value shaped like a checkpoint tag.
_STEP_TAG = re.compile(r"step-(.*)")


def _run_models(run: RunDir) -> str:
    """What ``--model`` can name in this run, for error messages."""
    from ahazero.models.loading import is_model_folder

    names = ["base"] + (["final"] if is_model_folder(run.model) else [])
    steps = run.checkpoint_steps()
    if steps:
        names += [f"latest (step-{steps[-1]})"] + [f"step-{s}" for s in steps]
    return ", ".join(names)


def _missing_run(cfg: ExperimentConfig, model: str) -> EvalError:
    root = Path(cfg.output_root)
    runs = sorted(p.name for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
    listed = (f"runs in {root}/: {', '.join(runs)}" if runs
              else f"{root} holds no runs" if root.is_dir() else f"there is no folder {root}")
    return EvalError(f"--model {model}: there is no run directory {cfg.run_dir} (name={cfg.name}); {listed}; "
                     "give the run's name= or --model base")


def _looks_like_path(model: str) -> bool:
    return model.startswith(("/", ".", "~")) or model.count("/") > 1 or model.endswith(".gguf")


def resolve_eval_model(cfg: ExperimentConfig, model: str | None) -> tuple[str, str]:
    """Pick the model to evaluate and a tag for the result files, or raise :class:`EvalError`.

    ``model`` may be ``base`` (the config's model), ``final`` (the run's saved model),
    ``latest`` (the newest weights: the final model once the run has one, else its newest
    checkpoint), ``step-N`` (a checkpoint), or any model path / hub id / name.
    With ``None``: the run's final model if it exists, else the base model. ``final``,
    ``latest`` and ``step-N`` need the run directory; a missing one is an error listing the
    runs that exist, and a missing checkpoint lists the checkpoints that do. Anything shaped
    ``step-...`` is a checkpoint tag, never a hub id; a local path must exist.
    Another run's model is tagged after that run (``runs/default/model`` -> ``default-final``,
    ``runs/default/checkpoints/checkpoint-60`` -> ``default-step-60``), so transfer results
    (``ahazero eval configs/gsm8k.yaml --model runs/default/model name=default-on-gsm8k``)
    say what they evaluated.

    Example:
        >>> from ahazero.config.schema import validate_dict
        >>> cfg = validate_dict({"name": "nope", "model": {"name_or_path": "tiny"},
        ...     "task": {"name": "arithmetic"}, "rewards": [{"name": "accuracy"}]})
        >>> resolve_eval_model(cfg, None)
        ('tiny', 'base')
        >>> resolve_eval_model(cfg, "step-abc")
        Traceback (most recent call last):
        ...
        ahazero.evaluate.EvalError: --model step-abc: a checkpoint is named step-N with N a number, ...
        >>> import pathlib, tempfile
        >>> ckpt = pathlib.Path(tempfile.mkdtemp()) / "default" / "checkpoints" / "checkpoint-60"
        >>> ckpt.mkdir(parents=True)
        >>> resolve_eval_model(cfg, str(ckpt))[1]
        'default-step-60'
    """
    from ahazero.models.loading import is_model_folder

    run = RunDir(cfg.run_dir)
    if model is None:
        if not run.root.is_dir():
            logger.warning("%s does not exist yet: evaluating the base model %s", run.root, cfg.model.name_or_path)
        model = "final" if is_model_folder(run.model) else "base"
    if model == "base":
        return cfg.model.name_or_path, "base"
    step_tag = _STEP_TAG.fullmatch(model)
    if model in ("final", "latest") or (step_tag and not Path(model).exists()):
        if step_tag and not step_tag.group(1).isdigit():
            raise EvalError(f"--model {model}: a checkpoint is named step-N with N a number, e.g. step-10; "
                            f"this run has: {_run_models(run)}")
        if not run.root.is_dir():
            raise _missing_run(cfg, model)
        if model == "final":
            if not is_model_folder(run.model):
                raise EvalError(f"--model final: {run.model} holds no final model yet; this run has: "
                                f"{_run_models(run)}")
            return str(run.model), "final"
        if model == "latest" and is_model_folder(run.model):
            return str(run.model), "final"  # written after the last step: newer than every checkpoint
        steps = run.checkpoint_steps()
        if not steps:
            raise EvalError(f"--model {model}: {run.checkpoints} has no checkpoints; this run has: {_run_models(run)}")
        step = steps[-1] if model == "latest" else int(model[5:])
        if step not in steps:
            raise EvalError(f"--model {model}: no checkpoint for step {step} in {run.checkpoints}; "
                            f"this run has: {_run_models(run)}")
        return str(run.checkpoints / f"checkpoint-{step}"), f"step-{step}"
    path = Path(model).expanduser()
    if _looks_like_path(model) and not path.exists() and not path.is_symlink():  # a link to nowhere: checked later
        raise EvalError(f"--model {model}: no such file or folder; give a model folder, a .gguf file, a hub id, "
                        f"a named model, or one of this run's: {_run_models(run)}")
    return model, _path_tag(Path(model))


def _path_tag(path: Path) -> str:
    """A result-file tag for a model given by path: named after its run when it is a run's model."""
    run_like = path.is_dir() or path.parent.name == "checkpoints"
    if run_like and path.name == "model" and path.parent.name:
        return f"{path.parent.name}-final"
    if run_like and path.name.startswith("checkpoint-") and path.name[11:].isdigit():
        return f"{path.parent.parent.name or 'run'}-step-{path.name[11:]}"
    return path.name.replace(".", "_") or "model"


def graders(funcs: Sequence[Any]) -> tuple[Any | None, Any | None]:
    """The rewards that grade an eval: ``(pass@1's, pass@1_in_tags')``, each None when there is none.

    pass@1 is graded like the field: the config's correctness reward, except that an
    ``accuracy`` reward reading only answer tags (``answer_source: tags``, a training choice)
    is used with ``answer_source: any``. The second is the same ``accuracy`` reward with
    ``answer_source: tags`` (None for other correctness rewards).

    Example:
        >>> from rewards import get_reward
        >>> field, strict = graders([get_reward("accuracy", answer_source="tags"), get_reward("think_format")])
        >>> field.answer_source, strict.answer_source
        ('any', 'tags')
        >>> graders([get_reward("countdown")])[1] is None
        True
    """
    correct_f = first_reward(funcs, CORRECTNESS_REWARDS)
    if not isinstance(correct_f, AccuracyReward):
        return correct_f, None
    return (dataclasses.replace(correct_f, answer_source="any"),
            dataclasses.replace(correct_f, answer_source="tags"))


def _score(func: Any, texts: list[str], rows: list[dict[str, Any]]) -> list[float | None]:
    columns = {key: [row[key] for row in rows] for key in rows[0] if key != "prompt"}
    return list(func(prompts=[r["prompt"] for r in rows], completions=texts, **columns))


def _generate(model: Any, tokenizer: Any, prompts: list[str], settings: EvalSettings, *, sample: bool,
              progress_label: str, generation: Any = None) -> list[list[tuple[str, int]]]:
    """Generate ``k`` completions per prompt (1 when greedy), batched, with a progress bar.

    On a GPU with the ``auto`` or ``graph`` backend, the graph sampler decodes
    (:mod:`ahazero.eval_sampler`); otherwise ``model.generate``.
    """
    import torch
    from rich.progress import Progress

    k = settings.samples if sample else 1
    per_batch = max(1, settings.batch_size // k)
    outputs: list[list[tuple[str, int]]] = []
    device = next(model.parameters()).device
    with Progress(transient=False) as progress:
        bar = progress.add_task(progress_label, total=len(prompts))
        if generation is not None and uses_graph_sampler(device.type, generation.backend):
            return graph_completions(model, tokenizer, prompts, generation, max_new_tokens=settings.max_new_tokens,
                                     batch_size=settings.batch_size, k=k, sample=sample,
                                     temperature=settings.temperature, top_p=settings.top_p,
                                     advance=lambda n: progress.advance(bar, n))
        for start in range(0, len(prompts), per_batch):
            batch = prompts[start:start + per_batch]
            enc = tokenizer(batch, return_tensors="pt", padding=True, add_special_tokens=False).to(device)
            gen_kwargs: dict[str, Any] = {"max_new_tokens": settings.max_new_tokens,
                                          "pad_token_id": tokenizer.pad_token_id}
            if sample:
                gen_kwargs.update(do_sample=True, temperature=settings.temperature, top_p=settings.top_p,
                                  num_return_sequences=k)
            else:
                gen_kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
            with torch.inference_mode():
                out = model.generate(**enc, **gen_kwargs)
            completions = out[:, enc["input_ids"].shape[1]:]
            texts = tokenizer.batch_decode(completions, skip_special_tokens=True)
            eos = set(model.generation_config.eos_token_id if isinstance(model.generation_config.eos_token_id, list)
                      else [model.generation_config.eos_token_id])
            lengths = []
            for row in completions.tolist():
                n = len(row)
                for i, tok in enumerate(row):
                    if tok in eos or tok == tokenizer.pad_token_id:
                        n = i
                        break
                lengths.append(n)
            for i in range(len(batch)):
                outputs.append(list(zip(texts[i * k:(i + 1) * k], lengths[i * k:(i + 1) * k], strict=True)))
            progress.advance(bar, len(batch))
    return outputs


def _evaluate_texts(texts: list[str], lengths: list[int], rows: list[dict[str, Any]], checked: Any,
                    tokenizer: Any, settings: EvalSettings, cfg: ExperimentConfig) -> tuple[list[dict], dict]:
    correct_f, in_tags_f = graders(checked.reward_funcs)
    format_f = first_reward(checked.reward_funcs, FORMAT_REWARDS)
    correct = _score(correct_f, texts, rows) if correct_f else [None] * len(texts)
    in_tags = _score(in_tags_f, texts, rows) if in_tags_f else [None] * len(texts)
    formatted = _score(format_f, texts, rows) if format_f else [None] * len(texts)
    behaviours = [describe((r.get("prefill") or "") + t, tokenizer=tokenizer,
                           phrases=cfg.logging.reflection_phrases) for r, t in zip(rows, texts)]
    truncated = [n >= settings.max_new_tokens for n in lengths]
    metrics = summarize(
        behaviours,
        correct=[bool(c) for c in correct] if correct_f else None,
        formatted=[bool(f) for f in formatted] if format_f else None,
        truncated=truncated,
        completion_tokens=lengths,
    )
    if in_tags_f and texts:
        metrics["behaviour/accuracy_in_tags"] = sum(bool(c) for c in in_tags) / len(texts)
    checks = self_check.measure_self_checks([(r.get("prefill") or "") + t for r, t in zip(rows, texts)], rows,
                                 grader=correct_f, correct=correct)
    metrics.update(self_check.self_check_metrics(checks))
    samples = [
        {"id": r["id"], "problem": r.get("problem"), "gold": str(r.get("answer")), "completion": t,
         "extracted_answer": b.answer, "correct": None if c is None else bool(c),
         "correct_in_tags": None if ct is None else bool(ct), "formatted": None if f is None else bool(f),
         "thinking_tokens": b.thinking_tokens, "completion_tokens": n, "truncated": tr, "reflections": b.reflections,
         "reflections_drgrpo": b.reflections_drgrpo, "language_consistency": b.language_consistency,
         "self_check": sc.to_dict()}
        for r, t, c, ct, f, b, n, tr, sc in zip(rows, texts, correct, in_tags, formatted, behaviours, lengths,
                                                truncated, checks)
    ]
    return samples, metrics


def evaluate(cfg: ExperimentConfig, *, model: str | None = None, settings: EvalSettings | None = None,
             out_dir: str | Path | None = None) -> dict[str, Any]:
    """Evaluate a model on the config's task; write JSON, markdown and samples; return the results.

    Example:
        >>> results = evaluate(load_config("configs/smoke.yaml"), model="base")   # doctest: +SKIP
        >>> results["pass@1"]                                                   # doctest: +SKIP
        0.0
    """
    import torch
    from transformers import set_seed

    from ahazero.config.validate import check_config
    from ahazero.models.loading import load_model_and_tokenizer
    from ahazero.models.model_argument import check_model_argument
    from ahazero.training.assemble import prepare_dataset

    settings = settings or EvalSettings()
    check_settings(settings)
    checked = check_config(cfg)
    source, tag = resolve_eval_model(cfg, model)
    check_model_argument(source, label=f"--model {model or '(default)'}" + (f" -> {source}" if source != model else ""))
    out = check_output_folder(out_dir if out_dir is not None else RunDir(cfg.run_dir).root / "eval")
    lm, tokenizer = load_model_and_tokenizer(source, dtype=cfg.model.dtype, revision=None,
                                             trust_remote_code=cfg.model.trust_remote_code)
    if torch.cuda.is_available():
        lm = lm.to("cuda")
    lm.eval()
    dataset = prepare_dataset(checked.task, settings.split, tokenizer, cfg)
    if settings.limit is not None:
        dataset = dataset.select(range(min(settings.limit, len(dataset))))
    rows = [dict(r) for r in dataset]
    prompts = [r["prompt"] for r in rows]

    set_seed(settings.seed)
    greedy = _generate(lm, tokenizer, prompts, settings, sample=False, progress_label=f"greedy ({tag})",
                       generation=cfg.generation)
    texts = [g[0][0] for g in greedy]
    lengths = [g[0][1] for g in greedy]
    samples, metrics = _evaluate_texts(texts, lengths, rows, checked, tokenizer, settings, cfg)
    results: dict[str, Any] = {
        "model": source, "tag": tag, "task": cfg.task.name, "split": settings.split, "n": len(rows),
        "max_new_tokens": settings.max_new_tokens,
        "pass@1": metrics.get("behaviour/accuracy"),
    }
    if "behaviour/accuracy_in_tags" in metrics:  # an accuracy reward: also the strict, in-tags reading
        results["pass@1_in_tags"] = metrics["behaviour/accuracy_in_tags"]
    results |= {
        "format_rate": metrics.get("behaviour/format_rate"),
        "think_tokens_mean": metrics.get("behaviour/think_tokens_mean"),
        "think_tokens_closed_mean": metrics.get("behaviour/think_tokens_closed_mean"),
        "reflection_rate": metrics.get("behaviour/reflection_rate"),
        "reflection_rate_drgrpo": metrics.get("behaviour/reflection_rate_drgrpo"),
        "language_consistency": metrics.get("behaviour/language_consistency"),
        "truncation_rate": metrics.get("behaviour/truncation_rate"),
        "self_check": self_check.summarize_self_checks(self_check.checks_of(samples) or []),
        "greedy": metrics,
    }
    if settings.samples > 1:
        k = settings.samples
        sampled = _generate(lm, tokenizer, prompts, settings, sample=True, progress_label=f"sampled k={k} ({tag})",
                            generation=cfg.generation)
        flat_rows = [r for r in rows for _ in range(k)]
        flat_texts = [t for group in sampled for t, _ in group]
        flat_lengths = [n for group in sampled for _, n in group]
        s_samples, s_metrics = _evaluate_texts(flat_texts, flat_lengths, flat_rows, checked, tokenizer, settings, cfg)
        pass_k, maj_k = [], []
        for i in range(len(rows)):
            group = s_samples[i * k:(i + 1) * k]
            pass_k.append(any(s["correct"] for s in group))
            vote = majority_answer([s["extracted_answer"] for s in group])
            maj_k.append(any(s["correct"] and "".join((s["extracted_answer"] or "").split()) == vote
                             for s in group) if vote is not None else False)
        results.update({f"pass@{k}": sum(pass_k) / len(rows), f"maj@{k}": sum(maj_k) / len(rows),
                        "sampled_accuracy": s_metrics.get("behaviour/accuracy"), "sampled": s_metrics,
                        "temperature": settings.temperature, "samples": k})
        for s in s_samples:
            s["sampled"] = True
        samples += s_samples

    if tag != "base":  # the first training step only for this run's own models
        own = tag == "final" or tag.startswith("step-")
        results.update(reference_numbers(out / "base.json", RunDir(cfg.run_dir).metrics if own else None))
    files = [out / f"{tag}.json", out / f"{tag}.md", out / f"{tag}-samples.jsonl"]  # each written whole
    atomic_write_lines(files[2], (json.dumps(s, ensure_ascii=False) for s in samples))
    atomic_write_text(files[1], render_markdown(results))
    atomic_write_text(files[0], json.dumps(results, indent=2) + "\n")  # last: a sweep reads it as "evaluated"
    results["files"] = [str(p) for p in files]
    return results


#: What :func:`reference_numbers` copies from the base model's eval next to a trained model's.
REFERENCE_KEYS = ("pass@1", "pass@1_in_tags", "format_rate", "think_tokens_mean", "think_tokens_closed_mean",
                  "reflection_rate", "reflection_rate_drgrpo", "self_check")


def reference_numbers(base_json: Path, metrics_jsonl: Path | None) -> dict[str, Any]:
    """The untrained model's numbers to show beside a trained one's: ``base`` and ``first_step``.

    ``base`` holds :data:`REFERENCE_KEYS` of ``eval/base.json`` (greedy, held-out) when it
    exists; ``first_step`` the first logged training step's reflection rates (sampled
    completions of the model before any update).

    Example:
        >>> import tempfile, pathlib
        >>> d = pathlib.Path(tempfile.mkdtemp())
        >>> _ = (d / "m.jsonl").write_text('{"step": 1, "behaviour/reflection_rate": 0.25}\\n')
        >>> reference_numbers(d / "base.json", d / "m.jsonl")
        {'first_step': {'step': 1, 'reflection_rate': 0.25, 'reflection_rate_drgrpo': None}}
    """
    out: dict[str, Any] = {}
    try:
        base = json.loads(base_json.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        base = None
    if isinstance(base, dict):
        out["base"] = {k: base.get(k) for k in REFERENCE_KEYS}
    rows = read_metrics(metrics_jsonl) if metrics_jsonl is not None else []
    first = next((r for r in rows if "behaviour/reflection_rate" in r), None)
    if first is not None:
        out["first_step"] = {"step": first.get("step"), "reflection_rate": first.get("behaviour/reflection_rate"),
                             "reflection_rate_drgrpo": first.get("behaviour/reflection_rate_drgrpo")}
    return out


def _fmt(value: Any) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float):
        return f"{value:.3f}"
    return str(value)


def render_markdown(results: dict[str, Any]) -> str:
    """A markdown table of the headline numbers.

    Example:
        >>> print(render_markdown({"model": "m", "tag": "base", "task": "arithmetic", "split": "test",
        ...                        "n": 2, "pass@1": 0.5}).splitlines()[2])
        | pass@1 | 0.500 |
    """
    keys = ["pass@1", "pass@1_in_tags"] + [k for k in results if k.startswith(("pass@", "maj@"))
                                           and k not in ("pass@1", "pass@1_in_tags")] + [
        "sampled_accuracy", "format_rate", "think_tokens_mean", "think_tokens_closed_mean", "reflection_rate",
        "reflection_rate_drgrpo", "language_consistency", "truncation_rate"]
    base = results.get("base") if isinstance(results.get("base"), dict) else None
    if base:
        lines = [f"| metric | {results['tag']} | base model |", "|---|---|---|"]
        lines += [f"| {k} | {_fmt(results.get(k))} | {_fmt(base.get(k))} |" for k in keys if k in results]
    else:
        lines = [f"| metric | {results['tag']} |", "|---|---|"]
        lines += [f"| {k} | {_fmt(results.get(k))} |" for k in keys if k in results]
    lines += self_check.markdown_rows(results, base)
    header = f"**{results['tag']}** ({results['model']}) on `{results['task']}` {results['split']}, n={results['n']}"
    first = results.get("first_step") if isinstance(results.get("first_step"), dict) else None
    if first:
        header += (f"; first training step ({first.get('step')}, sampled, before any update): reflection_rate "
                   f"{_fmt(first.get('reflection_rate'))}, reflection_rate_drgrpo "
                   f"{_fmt(first.get('reflection_rate_drgrpo'))}")
    return "\n".join(lines) + "\n\n" + header + "\n"
