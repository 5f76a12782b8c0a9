"""Can a checkpoint be resumed from? Cheap checks of every file a resume reads.

A checkpoint folder (``checkpoints/checkpoint-<step>/``) is complete when

- ``trainer_state.json`` parses and names the folder's step (transformers writes it last, so a
  run killed while saving leaves it missing or cut short);
- the model weights are whole: a ``.safetensors`` file's header parses and its tensors end
  exactly at the end of the file (sharded weights: every shard of the index); a torch file
  (``.pt``, ``.pth``, ``.bin``) is a zip archive whose central directory and member headers are
  readable, and one of at most 64 MiB also passes its CRC check;
- the optimizer and scheduler states (``optimizer.pt``, ``scheduler.pt``) and at least one
  RNG state (``rng_state.pth``, or ``rng_state_<rank>.pth`` of a multi-process run) are present
  and whole. Without ``optimizer.pt`` or ``scheduler.pt`` transformers resumes with a fresh
  optimizer and says nothing, so such a checkpoint is not complete.

DeepSpeed and FSDP checkpoints keep their states in folders of their own
(``global_step*/``, ``optimizer_0/``); their presence is checked, their contents are not.
Nothing is read beyond headers and directories, except the CRC of small torch files.

Example:
    >>> import tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp()) / "checkpoint-4"
    >>> folder.mkdir()
    >>> checkpoint_problem(folder)
    'trainer_state.json: missing (the run was killed while saving this checkpoint?)'
"""

from __future__ import annotations

import json
import struct
import zipfile
from pathlib import Path

__all__ = ["checkpoint_problem", "is_torn", "safetensors_problem", "torch_file_problem", "weights_problem"]

#: Torch files up to this size are CRC-checked in full; larger ones only structurally.
CRC_LIMIT = 64 * 2**20
_MAX_HEADER = 100 * 2**20  # safetensors refuses headers larger than this too
_KILLED = "(the run was killed while saving this checkpoint?)"


def safetensors_problem(path: str | Path) -> str | None:
    """None when a ``.safetensors`` file is whole: the header parses and the tensors end at the end of the file.

    Example:
        >>> import tempfile, pathlib, json, struct
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "model.safetensors"
        >>> head = json.dumps({"w": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}).encode()
        >>> _ = p.write_bytes(struct.pack("<Q", len(head)) + head + bytes(8))
        >>> safetensors_problem(p) is None
        True
        >>> _ = p.write_bytes(p.read_bytes()[:-3])
        >>> safetensors_problem(p)
        'model.safetensors: truncated (its tensors end at byte 77, the file has 74)'
    """
    path = Path(path)
    name = path.name
    try:
        size = path.stat().st_size
        with path.open("rb") as fh:
            head = fh.read(8)
            if len(head) < 8:
                return f"{name}: truncated ({size} bytes)"
            (n,) = struct.unpack("<Q", head)
            if n > _MAX_HEADER or 8 + n > size:
                return f"{name}: truncated or damaged (a header of {n} bytes in a file of {size})"
            header = json.loads(fh.read(n).decode("utf-8"))
    except FileNotFoundError:
        return f"{name}: missing"
    except (OSError, UnicodeDecodeError, ValueError) as err:
        return f"{name}: damaged header ({type(err).__name__})"
    if not isinstance(header, dict):
        return f"{name}: damaged header (not an object)"
    end = 0
    for key, entry in header.items():
        if key == "__metadata__":
            continue
        offsets = entry.get("data_offsets") if isinstance(entry, dict) else None
        if (not isinstance(offsets, list) or len(offsets) != 2
                or not all(isinstance(x, int) and x >= 0 for x in offsets) or offsets[0] > offsets[1]):
            return f"{name}: damaged header (tensor {key!r})"
        end = max(end, offsets[1])
    if 8 + n + end != size:
        what = "truncated" if 8 + n + end > size else "damaged"
        return f"{name}: {what} (its tensors end at byte {8 + n + end}, the file has {size})"
    return None


def torch_file_problem(path: str | Path) -> str | None:
    """None when a torch file (``torch.save``'s zip format) is whole; else what is wrong.

    Example:
        >>> import tempfile, pathlib, zipfile
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "optimizer.pt"
        >>> with zipfile.ZipFile(p, "w") as zf:
        ...     zf.writestr("archive/data.pkl", b"x" * 1000)
        >>> torch_file_problem(p) is None
        True
        >>> _ = p.write_bytes(p.read_bytes()[:500])
        >>> torch_file_problem(p)
        'optimizer.pt: truncated or damaged (not a readable zip archive)'
    """
    path = Path(path)
    name = path.name
    try:
        size = path.stat().st_size
        if not zipfile.is_zipfile(path):
            return f"{name}: truncated or damaged (not a readable zip archive)"
        with zipfile.ZipFile(path) as zf, path.open("rb") as fh:
            infos = zf.infolist()
            if not infos:
                return f"{name}: damaged (an empty archive)"
            for info in infos:
                fh.seek(info.header_offset)
                local = fh.read(30)
                if len(local) < 30 or local[:4] != b"PK\x03\x04":
                    return f"{name}: damaged (the entry {info.filename!r} is unreadable)"
                name_len, extra_len = struct.unpack("<HH", local[26:30])
                if info.header_offset + 30 + name_len + extra_len + info.compress_size > size:
                    return f"{name}: truncated (the entry {info.filename!r} runs past the end of the file)"
            if size <= CRC_LIMIT:
                bad = zf.testzip()
                if bad is not None:
                    return f"{name}: damaged (the entry {bad!r} fails its CRC check)"
    except FileNotFoundError:
        return f"{name}: missing"
    except (OSError, zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, ValueError, RuntimeError) as err:
        return f"{name}: truncated or damaged ({type(err).__name__}: {err})"
    return None


def _file_problem(path: Path) -> str | None:
    return safetensors_problem(path) if path.suffix == ".safetensors" else torch_file_problem(path)


def weights_problem(folder: str | Path) -> str | None:
    """None when a model folder (a checkpoint or ``model/``) holds whole weights; else what is wrong or missing.

    Looks for a safetensors index and its shards, ``model.safetensors``, ``adapter_model.safetensors``
    (LoRA), ``pytorch_model.bin`` or ``adapter_model.bin``; FSDP's and DeepSpeed's own formats are
    accepted unchecked.

    Example:
        >>> import tempfile
        >>> weights_problem(tempfile.mkdtemp())
        'no model weights (model.safetensors is missing)'
    """
    folder = Path(folder)
    for index_name in ("model.safetensors.index.json", "adapter_model.safetensors.index.json"):
        index = folder / index_name
        if index.is_file():
            try:
                weight_map = json.loads(index.read_text(encoding="utf-8"))["weight_map"]
                shards = sorted(set(weight_map.values()))
            except (OSError, ValueError, KeyError, TypeError, AttributeError):
                return f"{index_name}: damaged"
            for shard in shards:
                problem = safetensors_problem(folder / shard)
                if problem:
                    return problem
            return None
    for file_name in ("model.safetensors", "adapter_model.safetensors", "pytorch_model.bin", "adapter_model.bin"):
        if (folder / file_name).exists():
            return _file_problem(folder / file_name)
    if any(folder.glob("pytorch_model_fsdp*")) or (folder / "latest").is_file():
        return None
    return "no model weights (model.safetensors is missing)"


def _trainer_state_problem(folder: Path, step: int | None) -> str | None:
    path = folder / "trainer_state.json"
    if not path.is_file():
        return f"trainer_state.json: missing {_KILLED}"
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return f"trainer_state.json: truncated or damaged (not JSON) {_KILLED}"
    saved = state.get("global_step") if isinstance(state, dict) else None
    if isinstance(saved, bool) or not isinstance(saved, int):
        return "trainer_state.json: damaged (no integer global_step)"
    if step is not None and saved != step:
        return f"trainer_state.json: says step {saved}, not {step}"
    return None


def is_torn(problem: str | None) -> bool:
    """True for the problem of a checkpoint cut short while it was being saved (a kill, not damage).

    Example:
        >>> is_torn(checkpoint_problem("no/such/checkpoint-3")), is_torn("optimizer.pt: missing")
        (True, False)
    """
    return bool(problem) and problem.startswith("trainer_state.json") and problem.endswith(_KILLED)


def checkpoint_problem(folder: str | Path) -> str | None:
    """None when the checkpoint can be resumed from; else the first missing or damaged file and why.

    Example:
        >>> import tempfile, pathlib
        >>> folder = pathlib.Path(tempfile.mkdtemp()) / "checkpoint-2"
        >>> folder.mkdir()
        >>> _ = (folder / "trainer_state.json").write_text('{"global_step": 2}')
        >>> checkpoint_problem(folder)
        'no model weights (model.safetensors is missing)'
    """
    folder = Path(folder)
    suffix = folder.name.removeprefix("checkpoint-")
    problem = _trainer_state_problem(folder, int(suffix) if suffix.isdigit() else None)
    if problem:
        return problem
    problem = weights_problem(folder)
    if problem:
        return problem
    deepspeed = (folder / "latest").is_file() or any(folder.glob("global_step*"))
    if not deepspeed:
        optimizer = next((folder / n for n in ("optimizer.pt", "optimizer.bin") if (folder / n).is_file()), None)
        if optimizer is not None:
            problem = torch_file_problem(optimizer)
        elif not any(p.is_dir() and "optimizer" in p.name for p in folder.iterdir()):
            problem = "optimizer.pt: missing (a resume would start a fresh optimizer)"
        if problem:
            return problem
        if not (folder / "scheduler.pt").is_file():
            return "scheduler.pt: missing (a resume would start a fresh optimizer and schedule)"
        problem = torch_file_problem(folder / "scheduler.pt")
        if problem:
            return problem
    rng = sorted(folder.glob("rng_state*.pth"))
    if not rng:
        return "rng_state.pth: missing (a resume would not continue the random sequence)"
    for path in [*rng, *([folder / "scaler.pt"] if (folder / "scaler.pt").is_file() else [])]:
        problem = torch_file_problem(path)
        if problem:
            return problem
    return None
