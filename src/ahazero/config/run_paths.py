"""Where a run may be written: ``<output_root>/<name>``, checked before any model loads.

``name`` is one plain folder name (letters, digits, ``.``, ``_``, ``-``; at most 100
characters), so the run directory is always a direct child of ``output_root``.
``output_root`` may be relative (to the working folder) or absolute, but not the filesystem
root; the run directory, with every symlink resolved, may not lie in a system folder
(:data:`SYSTEM_FOLDERS`); it must be writable (the checks of every output folder,
:mod:`ahazero.config.output_paths`: no symlink to nowhere or symlink loop on the way, no
special filesystem); and when it exists it must be a run
directory (holding ``config.yaml``, ``metrics.jsonl``, ``traces/``, ``eval/``, ...) or
empty, so ``output_root=. name=src`` cannot write into a source folder.

Example:
    >>> check_run_dir("/etc/ahazero", "/etc")
    Traceback (most recent call last):
    ...
    ValueError: output_root: the run directory /etc/ahazero would be inside the system folder /etc; ...
"""

from __future__ import annotations

import os
from pathlib import Path

from ahazero.config.output_paths import SYSTEM_FOLDERS, folder_problem, system_folder

__all__ = ["RUN_ENTRIES", "SYSTEM_FOLDERS", "check_run_dir"]

#: What a run directory holds; an existing folder with none of these (and other files) is not a run.
RUN_ENTRIES = ("config.yaml", "run.json", "metrics.jsonl", "traces", "checkpoints", "model", "tensorboard",
               "eval", "report", "sweep.log", "eval.log")  # the last two: a run a sweep has started


def _check_existing(run_dir: Path) -> None:
    if not run_dir.exists():
        return
    if not run_dir.is_dir():
        raise ValueError(f"name: the run directory {run_dir} exists and is not a folder; choose another name=")
    visible = sorted(p.name for p in run_dir.iterdir() if not p.name.startswith("."))
    if visible and not any(name in RUN_ENTRIES for name in visible):
        shown = ", ".join(visible[:5]) + (", ..." if len(visible) > 5 else "")
        raise ValueError(f"name: the run directory {run_dir} is a folder that holds no run ({shown}); "
                         "choose another name= or output_root=")


def check_run_dir(run_dir: str | Path, output_root: str | Path) -> None:
    """Raise :class:`ValueError` (keyed ``output_root`` or ``name``) when a run may not go to ``run_dir``.

    Example:
        >>> import tempfile
        >>> root = tempfile.mkdtemp()
        >>> check_run_dir(f"{root}/demo", root)
        >>> check_run_dir("/demo", "/")
        Traceback (most recent call last):
        ...
        ValueError: output_root: '/' is the filesystem root; give a folder for runs, e.g. 'runs'
    """
    run_dir, root = Path(run_dir), Path(output_root)
    resolved_root = Path(os.path.realpath(root))
    if resolved_root == Path(resolved_root.anchor):
        raise ValueError(f"output_root: {str(output_root)!r} is the filesystem root; give a folder for runs, "
                         "e.g. 'runs'")
    folder = system_folder(run_dir)
    if folder is not None:
        raise ValueError(f"output_root: the run directory {run_dir} would be inside the system folder {folder}; "
                         "give a folder of your own, e.g. 'runs'")
    _check_existing(run_dir)
    problem = folder_problem(run_dir, space=False)  # a full disk: reported by the run that meets it
    if problem is not None:
        raise ValueError(f"output_root: cannot write the run directory {run_dir} ({problem})")
