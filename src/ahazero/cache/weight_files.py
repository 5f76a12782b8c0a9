"""Are a model's weight files whole? Cheap checks of headers and directories, nothing loaded.

A ``.safetensors`` file is whole when its header parses and its tensors end exactly at the end
of the file (sharded weights: every shard of the index); a torch file (``.pt``, ``.pth``,
``.bin``) when it is a zip archive whose central directory and member headers are readable,
and one of at most 64 MiB also passes its CRC check. Used before a resume (a checkpoint's
files, :mod:`ahazero.observe.checkpoints`) and before a model loads (``--model``,
:mod:`ahazero.models.model_argument`).

Example:
    >>> import tempfile
    >>> weights_problem(tempfile.mkdtemp())
    'no model weights (model.safetensors is missing)'
"""

from __future__ import annotations

import json
import struct
import zipfile
from pathlib import Path

__all__ = ["safetensors_problem", "torch_file_problem", "weights_problem"]

#: Torch files up to this size are CRC-checked in full; larger ones only structurally.
CRC_LIMIT = 64 * 2**20
_MAX_HEADER = 100 * 2**20  # safetensors refuses headers larger than this too


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
