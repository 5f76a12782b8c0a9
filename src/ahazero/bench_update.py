"""The update's A/B in ``ahazero bench --update-variants``: each way of computing it, on the same batch, in one run.

:class:`UpdateProbe` is called by the trainer with each generation batch's micro-batches
(as TRL split them) before the real update. For every variant it regroups them as that
variant would (:meth:`~ahazero.training.trainer.AhaGRPOTrainer.regroup`), runs each
micro-batch's loss forward and backward, timed with the GPU synchronised, and records the
tokens computed, the peak memory, and how far the gradient lies from the first variant's
(``grad_rel_diff``: ``|g - g_first| / |g_first|``, a check that the variants are exact on the
real model). The gradients are then dropped and training goes on with the config's own
update, so every variant sees the same model and the same completions.

Variants (:data:`UPDATE_VARIANTS`): ``padded`` (TRL's micro-batches), ``sorted``
(``update.sort_by_length``), ``packed`` (``update.packing``), ``shared`` (``packing`` +
``share_prompts``). :func:`summarize_variants` averages the measured steps and adds each
variant's tokens per second, model FLOP rate (:func:`update_flops`; the bench puts it against
the GPU's peak as MFU) and speed-up over the first variant.

Example:
    >>> parse_update_variants("padded,shared")
    ['padded', 'shared']
    >>> update_flops({"update_real_tokens": 1000, "update_loss_tokens": 400},
    ...              {"matmul_parameters": 5e8, "head_parameters": 1e8})
    2640000000000.0
"""

from __future__ import annotations

import difflib
import statistics
import time
from typing import Any

import torch

from ahazero.config.schema import ConfigError

__all__ = ["UPDATE_VARIANTS", "UpdateProbe", "parse_update_variants", "summarize_variants", "update_flops",
           "update_rates"]

#: variant -> (trainer attributes it sets, what it is)
UPDATE_VARIANTS: dict[str, tuple[dict[str, bool], str]] = {
    "padded": ({"sort_by_length": False, "packing": False, "share_prompts": False},
               "TRL's micro-batches: every row padded to the step's longest prompt and completion"),
    "sorted": ({"sort_by_length": True, "packing": False, "share_prompts": False},
               "update.sort_by_length: rows sorted by length into micro-batches, padding columns cut"),
    "packed": ({"sort_by_length": False, "packing": True, "share_prompts": False},
               "update.packing: each micro-batch's tokens in one row, no padding"),
    "shared": ({"sort_by_length": False, "packing": True, "share_prompts": True},
               "update.packing + update.share_prompts: rows grouped by prompt, each prompt computed once"),
}


def parse_update_variants(text: str) -> list[str]:
    """``--update-variants``: comma-separated names from :data:`UPDATE_VARIANTS`.

    Example:
        >>> parse_update_variants("padded,packd")
        Traceback (most recent call last):
        ...
        ahazero.config.schema.ConfigError: --update-variants: unknown variant 'packd' (did you mean 'packed'?); \
valid choices: padded, sorted, packed, shared
    """
    names = [t.strip() for t in text.split(",") if t.strip()]
    for name in names:
        if name not in UPDATE_VARIANTS:
            close = difflib.get_close_matches(name, list(UPDATE_VARIANTS), n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise ConfigError(f"--update-variants: unknown variant '{name}'{hint}; valid choices: "
                              f"{', '.join(UPDATE_VARIANTS)}")
    if len(set(names)) != len(names):
        raise ConfigError("--update-variants: a variant is named twice")
    return names


def update_flops(stats: dict[str, float], facts: dict[str, float]) -> float:
    """The update's model FLOPs: 6 x body parameters x tokens computed + 6 x LM-head parameters x scored tokens.

    Padding is not counted (``update_real_tokens``); TRL's fused LM head projects only the
    scored completion tokens. Attention's own FLOPs are left out, as in the usual ``6 N T``.

    Example:
        >>> update_flops({"update_real_tokens": 10, "update_loss_tokens": 4}, {"matmul_parameters": 5.0})
        300.0
    """
    head = facts.get("head_parameters", 0.0)
    body = facts["matmul_parameters"] - head
    return 6.0 * (body * stats.get("update_real_tokens", 0.0) + head * stats.get("update_loss_tokens", 0.0))


def update_rates(stats: dict[str, float], facts: dict[str, float] | None) -> dict[str, float | None]:
    """Tokens computed and scored per second and the model TFLOP/s of an update's summed stats.

    The % of the GPU's peak (MFU) is added beside the decode step's by
    :func:`ahazero.bench_report.add_peak_shares`.

    Example:
        >>> update_rates({"update_seconds": 2.0, "update_tokens": 1e5, "update_real_tokens": 1e5,
        ...               "update_loss_tokens": 4e4}, {"matmul_parameters": 5e8, "head_parameters": 1e8})
        {'update_tokens_per_second': 50000.0, 'update_loss_tokens_per_second': 20000.0, 'update_tflops': 132.0}
    """
    seconds = stats.get("update_seconds") or 0.0
    if seconds <= 0:
        return {"update_tokens_per_second": None, "update_loss_tokens_per_second": None, "update_tflops": None}
    tflops = update_flops(stats, facts) / seconds / 1e12 if facts else None
    return {
        "update_tokens_per_second": round(stats.get("update_tokens", 0.0) / seconds, 1),
        "update_loss_tokens_per_second": round(stats.get("update_loss_tokens", 0.0) / seconds, 1),
        "update_tflops": float(f"{tflops:.4g}") if tflops is not None else None,
    }


class UpdateProbe:
    """Runs every variant's update on a generation batch's micro-batches; keeps one record per batch."""

    def __init__(self, trainer: Any, variants: list[str]) -> None:
        self.trainer, self.variants = trainer, variants
        self.records: list[dict[str, Any]] = []

    def __call__(self, micro_batches: list[dict[str, Any]]) -> None:
        trainer = self.trainer
        started = time.perf_counter()
        step = trainer.state.global_step + 1
        metrics = {key: len(values) for key, values in trainer._metrics["train"].items()}
        reference: list[torch.Tensor | None] | None = None  # the first variant's gradient
        record: dict[str, Any] = {"step": step}
        if _cuda(trainer):  # the step's peak so far (its generation); each variant then counts its own
            record["generation_peak_gib"] = torch.cuda.max_memory_allocated() / 2**30
        for name in self.variants:
            try:
                stats, grads = self._measure(name, micro_batches, reference)
            except torch.cuda.OutOfMemoryError as err:  # reported, not fatal: the next variant may fit
                stats, grads = {"status": f"error: OutOfMemoryError: {str(err).splitlines()[0][:200]}"}, None
                _free(trainer.model)
            reference = reference if reference is not None else grads
            record[name] = stats
        if _cuda(trainer):
            torch.cuda.synchronize()
            torch.cuda.reset_peak_memory_stats()
        record["probe_seconds"] = time.perf_counter() - started  # taken out of the step's time by the bench
        self.records.append(record)
        for key, values in trainer._metrics["train"].items():  # the probe's losses are not the step's
            del values[metrics.get(key, 0):]

    def _measure(self, name: str, micro_batches: list[dict[str, Any]],
                 reference: list | None) -> tuple[dict[str, Any], list | None]:
        """One variant's update on the micro-batches: its stats (and its gradient's distance from ``reference``),
        and a copy of its gradient when there is no reference yet."""
        from ahazero.training.update_meter import UpdateMeter

        trainer = self.trainer
        settings = UPDATE_VARIANTS[name][0]
        saved = {key: getattr(trainer, key) for key in settings}
        meter, trainer.update_meter = trainer.update_meter, UpdateMeter(cuda=_cuda(trainer), device=_device(trainer))
        cuda = _cuda(trainer)
        loss_sum = 0.0
        try:
            for key, value in settings.items():
                setattr(trainer, key, value)
            batches = trainer.regroup(micro_batches)
            trainer.model.zero_grad(set_to_none=True)
            if cuda:
                torch.cuda.synchronize()
                torch.cuda.reset_peak_memory_stats()
            for batch in batches:
                trainer.update_meter.begin()
                with trainer.compute_loss_context_manager():
                    loss = trainer.compute_loss(trainer.model, batch)
                trainer.accelerator.backward(loss)
                trainer._attention_back()
                trainer.update_meter.end()
                loss_sum += float(loss.detach())
            stats: dict[str, Any] = {"status": "ok", **trainer.update_meter.finish_step(), "loss": loss_sum}
            if cuda:
                stats["peak_allocated_gib"] = torch.cuda.max_memory_allocated() / 2**30
            current = [p.grad for p in trainer.model.parameters()]
            grads = None
            if reference is None:
                grads = [None if g is None else g.detach().clone() for g in current]
            else:
                stats["grad_rel_diff"] = _relative_difference(current, reference)
        finally:
            trainer._attention_back()
            trainer.model.zero_grad(set_to_none=True)
            trainer.update_meter = meter
            for key, value in saved.items():
                setattr(trainer, key, value)
        return stats, grads


def _cuda(trainer: Any) -> bool:
    return trainer.accelerator.device.type == "cuda"


def _device(trainer: Any) -> Any:
    return trainer.accelerator.device


def _free(model: Any) -> None:
    model.zero_grad(set_to_none=True)
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def _relative_difference(grads: list, reference: list) -> float:
    """``|g - r| / |r|`` over every parameter (in float32, one tensor at a time)."""
    diff = norm = 0.0
    for g, r in zip(grads, reference, strict=True):
        if g is None or r is None:
            continue
        diff += float((g.float() - r.float()).pow(2).sum())
        norm += float(r.float().pow(2).sum())
    return float(f"{(diff ** 0.5) / (norm ** 0.5):.3g}") if norm > 0 else 0.0


#: Per-variant stats summed over a step, averaged over the measured steps.
_SUMMED = ("update_seconds", "update_forward_seconds", "update_tokens", "update_real_tokens", "update_loss_tokens",
           "update_micro_batches", "loss")


def summarize_variants(records: list[dict[str, Any]], warmup: int,
                       facts: dict[str, float] | None) -> dict[str, dict[str, Any]]:
    """Per variant: mean per measured step of the update's time, tokens, rates, peak memory and gradient difference.

    Example:
        >>> recs = [{"step": s, "padded": {"status": "ok", "update_seconds": 2.0, "update_forward_seconds": 0.5,
        ...          "update_tokens": 1000.0, "update_real_tokens": 600.0, "update_loss_tokens": 300.0},
        ...          "shared": {"status": "ok", "update_seconds": 1.0, "update_forward_seconds": 0.3,
        ...          "update_tokens": 400.0, "update_real_tokens": 400.0, "update_loss_tokens": 300.0,
        ...          "grad_rel_diff": 0.002}} for s in (1, 2)]
        >>> out = summarize_variants(recs, warmup=1, facts=None)
        >>> out["shared"]["update_seconds"], out["shared"]["speedup"], out["padded"]["update_padding_share"]
        (1.0, 2.0, 0.4)
    """
    measured = records[warmup:] or records
    names = [k for k, v in (records[0] if records else {}).items() if isinstance(v, dict)]
    out: dict[str, dict[str, Any]] = {}
    for name in names:
        ok = [r[name] for r in measured if r.get(name, {}).get("status") == "ok"]
        if not ok:
            failed = next((r[name]["status"] for r in measured if name in r), "not measured")
            out[name] = {"status": failed}
            continue
        mean = {key: statistics.fmean(s.get(key, 0.0) for s in ok) for key in _SUMMED}
        summary: dict[str, Any] = {"status": "ok", "measured_steps": len(ok),
                                   **{k: round(v, 4) for k, v in mean.items()}}
        summary["update_backward_seconds"] = round(mean["update_seconds"] - mean["update_forward_seconds"], 4)
        tokens = mean["update_tokens"]
        summary["update_padding_share"] = round(1 - mean["update_real_tokens"] / tokens, 4) if tokens else None
        summary.update(update_rates(mean, facts))
        peaks = [s["peak_allocated_gib"] for s in ok if s.get("peak_allocated_gib") is not None]
        summary["peak_allocated_gib"] = round(max(peaks), 2) if peaks else None
        diffs = [s["grad_rel_diff"] for s in ok if s.get("grad_rel_diff") is not None]
        summary["grad_rel_diff"] = max(diffs) if diffs else None
        out[name] = summary
    base = next((s for s in out.values() if s.get("status") == "ok"), None)
    for summary in out.values():
        if base is not None and summary.get("status") == "ok" and summary["update_seconds"]:
            summary["speedup"] = round(base["update_seconds"] / summary["update_seconds"], 2)
    return out
