"""Make a ``.gguf`` checkpoint trainable: dequantize once into a cached Hugging Face folder.

``transformers`` can read GGUF files, but the loaded model carries a GGUF quantizer marker
that makes ``Trainer`` refuse to train it and ``save_pretrained`` refuse to save it, and some
transformers versions assign the wrong special tokens to GGUF tokenizers. The conversion
here rebuilds the model from its config without the marker, takes the eos / bos / padding
ids from the GGUF metadata itself, and saves a plain folder that reloads in seconds.

Example:
    >>> gguf_special_token_ids("model.gguf")  # doctest: +SKIP
    {'eos': 151645, 'bos': 151643, 'pad': 151643}
"""

from __future__ import annotations

import logging
import shutil
import tempfile
from pathlib import Path
from typing import Any

from ahazero.cache.fetch import file_sha256
from ahazero.cache.paths import cache_dir

__all__ = ["convert_gguf", "convert_gguf_into", "gguf_special_token_ids"]

logger = logging.getLogger(__name__)

_SPECIAL_KEYS = {
    "eos": "tokenizer.ggml.eos_token_id",
    "bos": "tokenizer.ggml.bos_token_id",
    "pad": "tokenizer.ggml.padding_token_id",
}


def gguf_special_token_ids(path: str | Path) -> dict[str, int]:
    """The eos / bos / pad token ids recorded in a GGUF file's metadata (those present).

    Example:
        >>> gguf_special_token_ids("model.gguf")  # doctest: +SKIP
        {'eos': 151645, 'bos': 151643, 'pad': 151643}
    """
    from gguf import GGUFReader

    reader = GGUFReader(str(path))
    found: dict[str, int] = {}
    for short, key in _SPECIAL_KEYS.items():
        field = reader.fields.get(key)
        if field is not None and field.data:
            found[short] = int(field.parts[field.data[0]][0])
    return found


def _apply_special_tokens(ids: dict[str, int], tokenizer: Any, model: Any) -> None:
    for short, attr in (("eos", "eos_token"), ("bos", "bos_token"), ("pad", "pad_token")):
        if short in ids:
            setattr(tokenizer, attr, tokenizer.convert_ids_to_tokens(ids[short]))
            setattr(model.config, f"{attr}_id", ids[short])
            setattr(model.generation_config, f"{attr}_id", ids[short])


def convert_gguf_into(path: str | Path, out_dir: str | Path) -> Path:
    """Dequantize a GGUF file into a plain, trainable Hugging Face folder ``out_dir``.

    Example:
        >>> convert_gguf_into("model.gguf", "model-hf")  # doctest: +SKIP
        PosixPath('model-hf')
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = Path(path).expanduser().resolve()
    out_dir = Path(out_dir)
    tokenizer = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
    quantized = AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name, dtype=torch.float32)
    config = quantized.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    missing, unexpected = model.load_state_dict(quantized.state_dict(), strict=False)
    missing = [k for k in missing if not (k == "lm_head.weight" and config.tie_word_embeddings)]
    if missing or unexpected:
        raise RuntimeError(f"GGUF conversion mismatch: missing {missing[:5]}, unexpected {unexpected[:5]}")
    if config.tie_word_embeddings:
        model.tie_weights()
    model.generation_config = quantized.generation_config
    _apply_special_tokens(gguf_special_token_ids(path), tokenizer, model)
    del quantized
    model.to(torch.bfloat16).save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    return out_dir


def convert_gguf(path: str | Path, out_root: str | Path | None = None) -> Path:
    """Convert a GGUF file to a trainable Hugging Face folder, cached by content hash.

    Returns the folder; a second call with the same file returns at once. The folder is
    written under a temporary name and renamed into place when complete.

    Example:
        >>> convert_gguf("qwen2.5-coder-0.5b-instruct-q4_k_m.gguf")  # doctest: +SKIP
        PosixPath('.../converted/qwen2.5-coder-0.5b-instruct-q4_k_m-1d9614638d18')
    """
    path = Path(path).expanduser().resolve()
    root = Path(out_root) if out_root is not None else cache_dir() / "converted"
    target = root / f"{path.stem}-{file_sha256(path)[:12]}"
    if (target / "config.json").is_file():
        return target
    root.mkdir(parents=True, exist_ok=True)
    logger.info("converting %s to a trainable model in %s (once; takes about a minute)", path.name, target)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=root))
    try:
        convert_gguf_into(path, staging)
        if target.exists():
            shutil.rmtree(staging)
        else:
            staging.rename(target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target
