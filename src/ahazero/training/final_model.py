"""The trained model's final folder: ``model/``, written whole beside it, then renamed into place."""

from __future__ import annotations

from typing import Any

from ahazero.observe.rundir import RunDir

__all__ = ["save_final_model"]


def save_final_model(trainer: Any, run_dir: RunDir, *, main: bool = True) -> None:
    """Write the trained model beside ``model/`` and rename it into place (the main process renames).

    A LoRA run saves its adapter, except when it started from another LoRA run's model: its
    adapter would name the first run's base model and lose the first run's training, so the
    merged weights (base + both adapters) are saved instead.

    Example:
        >>> save_final_model(trainer, RunDir("runs/default"))   # doctest: +SKIP
    """
    from ahazero.models.loading import MERGED_ADAPTER

    staged = run_dir.root / ".model.tmp"  # written whole, then renamed over model/
    model = trainer.accelerator.unwrap_model(trainer.model)
    if hasattr(model, "peft_config") and getattr(model.get_base_model(), MERGED_ADAPTER, None):
        merged = model.merge_and_unload()
        if main:
            merged.save_pretrained(str(staged))
            trainer.processing_class.save_pretrained(str(staged))
    else:
        trainer.save_model(str(staged))
    if main:
        run_dir.replace_model(staged)
