"""Load a trainable model and its tokenizer from a hub id, a local folder, a ``.gguf`` file or a name.

- Hub ids and local folders go straight to ``transformers``.
- A ``.gguf`` file is dequantized once into a plain Hugging Face folder in the cache
  (see :mod:`ahazero.models.gguf`), then loaded from there.
- Named models (``ahazero models``) are resolved by :mod:`ahazero.models.registry`.

Example:
    >>> import os, tempfile
    >>> os.environ["AHAZERO_CACHE"] = tempfile.mkdtemp()
    >>> model, tok = load_model_and_tokenizer("tiny", dtype="float32")
    >>> type(model).__name__, tok.eos_token
    ('Qwen2ForCausalLM', '<|im_end|>')
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

__all__ = [
    "MERGED_ADAPTER", "gpu_available", "is_adapter_folder", "is_model_folder", "load_model_and_tokenizer", "resolve_dtype", "resolve_model_path",
]

logger = logging.getLogger(__name__)


def gpu_available() -> bool:
    """True when torch sees a CUDA device.

    Example:
        >>> isinstance(gpu_available(), bool)
        True
    """
    import torch

    return torch.cuda.is_available()


def resolve_dtype(name: str) -> Any:
    """Map a config dtype name to a torch dtype; ``auto`` is bf16 on a capable GPU, else fp32.

    Example:
        >>> import torch
        >>> resolve_dtype("float16") is torch.float16
        True
    """
    import torch

    if name == "auto":
        if torch.cuda.is_available() and torch.cuda.is_bf16_supported():
            return torch.bfloat16
        return torch.float32
    try:
        return {"bfloat16": torch.bfloat16, "float16": torch.float16, "float32": torch.float32}[name]
    except KeyError:
        raise ValueError(f"unknown dtype '{name}'; valid choices: auto, bfloat16, float16, float32") from None


def is_model_folder(path: str | Path) -> bool:
    """True for a saved model: full weights (``config.json``) or a LoRA adapter (``adapter_config.json``).

    Example:
        >>> import tempfile
        >>> is_model_folder(tempfile.mkdtemp())
        False
    """
    path = Path(path)
    return (path / "config.json").is_file() or (path / "adapter_config.json").is_file()


def is_adapter_folder(path: str | Path) -> bool:
    """True for a folder that holds a LoRA adapter alone (``adapter_config.json``, no ``config.json``).

    Example:
        >>> import tempfile, pathlib
        >>> d = pathlib.Path(tempfile.mkdtemp())
        >>> _ = (d / "adapter_config.json").write_text("{}")
        >>> is_adapter_folder(d), is_adapter_folder(d.parent)
        (True, False)
    """
    path = Path(path)
    return (path / "adapter_config.json").is_file() and not (path / "config.json").is_file()


#: The attribute a model loaded from an adapter folder carries: the folder its adapter came from.
MERGED_ADAPTER = "ahazero_merged_adapter"


def resolve_model_path(name_or_path: str) -> str:
    """Turn a config's ``model.name_or_path`` into something ``from_pretrained`` loads.

    Named models are built or fetched into the cache; ``.gguf`` files are converted once;
    local folders and hub ids pass through unchanged.

    Example:
        >>> resolve_model_path("Qwen/Qwen2.5-0.5B-Instruct")
        'Qwen/Qwen2.5-0.5B-Instruct'
    """
    from ahazero.models.registry import NAMED_MODELS, prepare_named_model

    if name_or_path in NAMED_MODELS:
        return str(prepare_named_model(name_or_path))
    path = Path(name_or_path).expanduser()
    if name_or_path.endswith(".gguf"):
        if not path.is_file():
            raise FileNotFoundError(f"GGUF file not found: {path}")
        from ahazero.models.gguf import convert_gguf

        return str(convert_gguf(path))
    if path.exists():
        if not is_model_folder(path):
            raise FileNotFoundError(f"{path} is not a model folder (no config.json or adapter_config.json)")
        return str(path)
    if name_or_path.startswith((".", "/", "~")) or name_or_path.count("/") > 1:
        raise FileNotFoundError(f"model path not found: {name_or_path}")
    return name_or_path  # a hub id


#: What a model or tokenizer that cannot be loaded raises (besides OSError and ValueError).
_LOAD_ERRORS: tuple[type[BaseException], ...] = (OSError, ValueError, EOFError)


@contextlib.contextmanager
def _one_line_load_errors(what: str) -> Iterator[None]:
    """Turn a failed load of ``what`` (truncated weights, a damaged tokenizer, the hub unreachable) into one line."""
    from ahazero.models.model_argument import ModelLoadError

    errors = _LOAD_ERRORS
    try:
        from safetensors import SafetensorError

        errors = (*errors, SafetensorError)
    except ImportError:  # pragma: no cover - transformers depends on safetensors
        pass
    try:
        yield
    except errors as err:
        lines = [line.strip() for line in str(err).splitlines() if line.strip()]
        reason = lines[0][:300] if lines else type(err).__name__
        raise ModelLoadError(f"cannot load {what}: {reason}") from err


def load_model_and_tokenizer(
    name_or_path: str,
    *,
    dtype: str = "auto",
    revision: str | None = None,
    trust_remote_code: bool = False,
) -> tuple[Any, Any]:
    """Load ``(model, tokenizer)`` ready for GRPO: pad token set, left padding, eos consistent.

    A LoRA adapter folder (a LoRA run's ``model/``) loads as its base model with the adapter
    merged in, marked with :data:`MERGED_ADAPTER`, so that a LoRA stage after a LoRA stage
    trains on the first one's result (and saves merged weights: :func:`~ahazero.training.final_model.save_final_model`).

    Example:
        >>> model, tok = load_model_and_tokenizer("tiny")
        >>> tok.padding_side
        'left'
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    with _one_line_load_errors(f"the model {name_or_path}"):
        source = resolve_model_path(name_or_path)
    logger.info("loading model from %s", source)
    kwargs: dict[str, Any] = {"revision": revision, "trust_remote_code": trust_remote_code}
    with _one_line_load_errors(f"the tokenizer of {name_or_path}"):
        tokenizer = AutoTokenizer.from_pretrained(source, **kwargs)
    with _one_line_load_errors(f"the model {name_or_path}"):
        if is_adapter_folder(source):  # base + adapter, merged: a later LoRA trains on top of it, not beside it
            from peft import AutoPeftModelForCausalLM

            model = AutoPeftModelForCausalLM.from_pretrained(source, dtype=resolve_dtype(dtype), **kwargs)
            model = model.merge_and_unload()
            setattr(model, MERGED_ADAPTER, str(source))
        else:
            model = AutoModelForCausalLM.from_pretrained(source, dtype=resolve_dtype(dtype), **kwargs)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "left"
    if model.generation_config.pad_token_id is None:
        model.generation_config.pad_token_id = tokenizer.pad_token_id
    return model, tokenizer


def lora_config(lora: Any) -> Any:
    """Build a ``peft.LoraConfig`` from the config's ``model.lora`` section (or None).

    Example:
        >>> from ahazero.config.schema import LoraConfig
        >>> lora_config(LoraConfig(r=8)).r
        8
    """
    if lora is None:
        return None
    from peft import LoraConfig as PeftLoraConfig

    return PeftLoraConfig(
        r=lora.r,
        lora_alpha=lora.alpha,
        lora_dropout=lora.dropout,
        target_modules=lora.target_modules,
        task_type="CAUSAL_LM",
    )
