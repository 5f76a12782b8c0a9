"""Named models: short names that resolve to a ready-to-load folder in the cache.

Adding a model is a few lines: an entry in :data:`NAMED_MODELS` with a function that
produces its folder.

Example:
    >>> sorted(NAMED_MODELS)[:1]
    ['tiny']
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

__all__ = ["NAMED_MODELS", "NamedModel", "prepare_named_model"]


@dataclass(frozen=True)
class NamedModel:
    """A model that ahazero knows how to produce without the user naming files."""

    description: str
    build: Callable[[Path], Path]  # writes the model folder into the given empty dir


def _build_tiny(target: Path) -> Path:
    from ahazero.tiny_model import build_tiny_model

    return build_tiny_model(target)


NAMED_MODELS: dict[str, NamedModel] = {
    "tiny": NamedModel(
        description="2-layer random-init Qwen2 with a locally trained tokenizer (offline tests, smoke runs)",
        build=_build_tiny,
    ),
}


def prepare_named_model(name: str) -> Path:
    """Return the cache folder of a named model, producing it first when missing.

    The folder is written to a temporary sibling and renamed into place, so an interrupted
    build never leaves a half-written model behind.

    Example:
        >>> import os, tempfile
        >>> os.environ["AHAZERO_CACHE"] = tempfile.mkdtemp()
        >>> (prepare_named_model("tiny") / "config.json").is_file()
        True
    """
    from ahazero.models import cache_dir

    if name not in NAMED_MODELS:
        raise ValueError(f"unknown model name '{name}'; valid choices: {', '.join(sorted(NAMED_MODELS))}")
    final = cache_dir() / "models" / name
    if (final / "config.json").is_file():
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=final.parent))
    try:
        NAMED_MODELS[name].build(staging)
        if final.exists():  # a concurrent build won; keep theirs
            shutil.rmtree(staging)
        else:
            staging.rename(final)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return final
