"""Can a checkpoint be resumed from? Cheap checks of every file a resume reads.

A checkpoint folder (``checkpoints/checkpoint-<step>/``) is complete when

- ``trainer_state.json`` parses and names the folder's step (transformers writes it last, so a
  run killed while saving leaves it missing or cut short);
- the model weights are whole (:mod:`ahazero.cache.weight_files`: a ``.safetensors`` file's
  header parses and its tensors end exactly at the end of the file; a torch file (``.pt``,
  ``.pth``, ``.bin``) is a zip archive whose directory and member headers are readable, and
  one of at most 64 MiB also passes its CRC check);
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
from pathlib import Path

from ahazero.cache.weight_files import safetensors_problem, torch_file_problem, weights_problem

__all__ = ["checkpoint_problem", "is_torn", "safetensors_problem", "torch_file_problem", "weights_problem"]

_KILLED = "(the run was killed while saving this checkpoint?)"


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
