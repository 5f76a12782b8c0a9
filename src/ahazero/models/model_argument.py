"""Is a model argument loadable? One check for ``--model`` and ``model.name_or_path``, before any model loads.

A model argument is one of:

- a named model (``ahazero models``);
- a local Hugging Face folder: a readable ``config.json`` (or ``adapter_config.json`` of a
  LoRA adapter) and whole weights (:func:`ahazero.cache.weight_files.weights_problem`: every
  safetensors header parses and its tensors end at the end of the file);
- a ``.gguf`` file that starts with the GGUF magic bytes;
- a hub id (``org/name`` or ``name``); with ``HF_HUB_OFFLINE`` (or ``TRANSFORMERS_OFFLINE``)
  set it must be in the local Hugging Face cache.

Anything else is a :class:`ModelArgumentError`, one line naming the argument, what is wrong
and what would work. What only loading can find (a damaged tokenizer, an architecture this
transformers does not know, the hub unreachable) becomes one line too:
:func:`ahazero.models.loading.load_model_and_tokenizer` raises :class:`ModelLoadError`.

Example:
    >>> check_model_argument("tiny")
    'named'
    >>> import tempfile
    >>> check_model_argument(tempfile.mkdtemp())
    Traceback (most recent call last):
    ...
    ahazero.models.model_argument.ModelArgumentError: --model ...: an empty folder, not a model; give a model folder (config.json and weights), a .gguf file, a hub id (org/name) or a named model (...)
"""

from __future__ import annotations

import difflib
import json
import os
import re
import stat
from pathlib import Path

from ahazero.cache.paths import file_kind
from ahazero.cache.weight_files import weights_problem
from ahazero.config.output_paths import broken_symlink
from ahazero.config.schema import ConfigError

__all__ = ["GGUF_MAGIC", "ModelArgumentError", "ModelLoadError", "check_model_argument", "hub_offline",
           "model_argument_problem"]

#: The first four bytes of every GGUF file.
GGUF_MAGIC = b"GGUF"

#: A hub repository id: ``name`` or ``org/name`` (the hub's own rule for the characters).
_HUB_ID = re.compile(r"(?:[A-Za-z0-9][A-Za-z0-9._-]{0,95}/)?[A-Za-z0-9][A-Za-z0-9._-]{0,95}")


class ModelArgumentError(ConfigError):
    """A model argument that names nothing loadable; the message names it and the valid kinds."""


class ModelLoadError(ModelArgumentError):
    """A model that passed the checks but failed to load (damaged tokenizer, unknown architecture, hub offline)."""


def _valid_kinds() -> str:
    from ahazero.models.registry import NAMED_MODELS

    return ("give a model folder (config.json and weights), a .gguf file, a hub id (org/name) or a named model "
            f"({', '.join(sorted(NAMED_MODELS))})")


def hub_offline() -> bool:
    """True when the environment forbids the hub (``HF_HUB_OFFLINE`` or ``TRANSFORMERS_OFFLINE`` set to 1/true).

    Example:
        >>> import os
        >>> os.environ["HF_HUB_OFFLINE"] = "1"
        >>> hub_offline()
        True
    """
    return any(os.environ.get(key, "").strip().lower() in ("1", "true", "yes", "on")
               for key in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))


def _in_hub_cache(repo_id: str, revision: str | None) -> bool:
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:  # pragma: no cover - transformers depends on it
        return True
    try:
        found = try_to_load_from_cache(repo_id, "config.json", revision=revision)
    except ValueError:  # not a valid repository id
        return False
    return isinstance(found, str)


def _gguf_problem(path: Path) -> str | None:
    try:
        with path.open("rb") as fh:
            magic = fh.read(4)
    except OSError as err:
        return f"cannot be read ({err.strerror or err})"
    if magic != GGUF_MAGIC:
        return "not a GGUF file (it does not start with the GGUF magic bytes)"
    return None


def _folder_problem(path: Path) -> str | None:
    if not os.access(path, os.R_OK | os.X_OK):
        return "a folder that cannot be read (permissions)"
    names = sorted(p.name for p in path.iterdir())
    if not names:
        return f"an empty folder, not a model; {_valid_kinds()}"
    config = next((path / n for n in ("config.json", "adapter_config.json") if (path / n).exists()), None)
    if config is None:
        shown = ", ".join(names[:5]) + (", ..." if len(names) > 5 else "")
        return f"a folder without config.json ({shown}), not a model; {_valid_kinds()}"
    try:
        data = json.loads(config.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as err:
        reason = err.strerror if isinstance(err, OSError) else "not JSON"
        return f"{config.name} is damaged or unreadable ({reason})"
    if not isinstance(data, dict):
        return f"{config.name} is damaged (not a JSON object)"
    problem = weights_problem(path)
    return None if problem is None else f"the model weights are not usable: {problem}"


def model_argument_problem(value: str, *, hub: bool = True, revision: str | None = None) -> str | None:
    """Why ``value`` is not a loadable model argument, or None (see the module docstring).

    With ``hub=False`` a hub id is accepted by its shape alone (no look at the local cache);
    ``revision`` is the hub revision looked for in the cache (default: main).

    Example:
        >>> model_argument_problem("Qwen/Qwen2.5-0.5B-Instruct", hub=False) is None
        True
        >>> model_argument_problem("no such/model")
        'not a named model, a local file or folder, or a hub id (org/name); give a model folder ...'
    """
    from ahazero.models.registry import NAMED_MODELS

    text = str(value).strip()
    if not text:
        return f"empty; {_valid_kinds()}"
    if text in NAMED_MODELS:
        return None
    path = Path(text).expanduser()
    looks_like_path = text.startswith(("/", ".", "~")) or text.count("/") > 1 or text.lower().endswith(".gguf")
    if os.path.lexists(path):
        broken = broken_symlink(path)
        if broken is not None:
            return broken
        mode = path.stat().st_mode
        if stat.S_ISDIR(mode):
            return _folder_problem(path)
        if stat.S_ISREG(mode) and text.lower().endswith(".gguf"):
            return _gguf_problem(path)
        kind = file_kind(mode)
        return f"a {'file' if kind == 'regular file' else kind}, not a model; {_valid_kinds()}"
    if looks_like_path:
        return f"no such file or folder; {_valid_kinds()}"
    if not _HUB_ID.fullmatch(text):
        return f"not a named model, a local file or folder, or a hub id (org/name); {_valid_kinds()}"
    if hub and hub_offline() and not _in_hub_cache(text, revision):
        close = difflib.get_close_matches(text, list(NAMED_MODELS), n=1)
        hint = f" (did you mean the named model '{close[0]}'?)" if close else ""
        return (f"not a named model or local path, and as a hub id it is not in the local Hugging Face cache while "
                f"HF_HUB_OFFLINE is set{hint}; fetch it while online, or give a local model folder")
    return None


def check_model_argument(value: str, *, label: str | None = None, hub: bool = True,
                         revision: str | None = None) -> str:
    """Raise :class:`ModelArgumentError` (``LABEL: problem``) unless ``value`` is loadable; return its kind.

    The kind is ``named``, ``folder``, ``gguf`` or ``hub``; ``label`` names the argument in
    the error (default ``--model VALUE``).

    Example:
        >>> check_model_argument("Qwen/Qwen2.5-0.5B-Instruct", hub=False)
        'hub'
        >>> import tempfile, pathlib
        >>> notes = pathlib.Path(tempfile.mkdtemp()) / "notes.md"
        >>> _ = notes.write_text("mine")
        >>> check_model_argument(str(notes), label="model.name_or_path notes.md")
        Traceback (most recent call last):
        ...
        ahazero.models.model_argument.ModelArgumentError: model.name_or_path notes.md: a file, not a model; ...
    """
    from ahazero.models.registry import NAMED_MODELS

    problem = model_argument_problem(value, hub=hub, revision=revision)
    if problem is not None:
        raise ModelArgumentError(f"{label or f'--model {value}'}: {problem}")
    text = str(value).strip()
    if text in NAMED_MODELS:
        return "named"
    path = Path(text).expanduser()
    if path.is_dir():
        return "folder"
    return "gguf" if path.is_file() else "hub"
