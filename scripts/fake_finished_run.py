"""Make a checkout look used: a finished run for every shipped config, a sweep, a calibration file, logs.

CI runs the offline test suite a second time after this (``.ci/run``), so a test that reads or
writes the checkout's ``runs/``, ``sweeps/``, ``calibration/`` or ``logs/`` instead of its own
temporary folder fails there, as it would for a user who ran ``make train`` before ``make test``.

For each ``configs/*.yaml`` it writes ``runs/<name>/`` and, for a recipe with a CPU profile,
``runs/<cpu name>/``: ``config.yaml``, ``run.json``, ``metrics.jsonl`` (2 steps), ``traces/``,
``checkpoints/checkpoint-2/``, ``model/config.json`` (a stand-in: loading it as a model fails,
loudly) and ``eval/base.json``. Each fake holds a ``FAKE_RUN`` marker; a folder that already
exists is left alone, and ``--remove`` deletes only folders that carry the marker.
Standard library only (and PyYAML, to read the configs' names).

Usage:
    python scripts/fake_finished_run.py [--root .]            # write the fakes
    python scripts/fake_finished_run.py [--root .] --remove   # delete them again

Example:
    >>> import pathlib, tempfile
    >>> root = pathlib.Path(tempfile.mkdtemp())
    >>> written = write_fake_run(root / "runs" / "demo", "demo")
    >>> sorted(p.name for p in written.iterdir())[:4]
    ['FAKE_RUN', 'checkpoints', 'config.yaml', 'eval']
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

import yaml

MARKER = "FAKE_RUN"
_NOTE = "written by scripts/fake_finished_run.py; not a real run\n"


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def _jsonl(rows: list[dict]) -> str:
    return "".join(json.dumps(r) + "\n" for r in rows)


def write_fake_run(run: Path, name: str, *, max_steps: int = 2) -> Path:
    """Write a small finished run into ``run`` (which must not exist yet) and return it.

    Example:
        >>> import pathlib, tempfile
        >>> run = write_fake_run(pathlib.Path(tempfile.mkdtemp()) / "x", "x")
        >>> (run / "model" / "config.json").is_file(), (run / "checkpoints" / "checkpoint-2").is_dir()
        (True, True)
    """
    run.mkdir(parents=True)
    _write(run / MARKER, _NOTE)
    _write(run / "config.yaml", yaml.safe_dump({"name": name, "model": {"name_or_path": "tiny"},
                                                "task": {"name": "arithmetic"},
                                                "rewards": [{"name": "accuracy", "weight": 1.0}],
                                                "grpo": {"max_steps": max_steps}}, sort_keys=False))
    _write(run / "run.json", json.dumps({"seed": 0, "device": "cpu", "note": _NOTE.strip()}) + "\n")
    steps = range(1, max_steps + 1)
    _write(run / "metrics.jsonl", _jsonl([{"step": s, "reward": 0.5, "rewards/accuracy/mean": 0.5,
                                           "behaviour/accuracy": 0.5, "behaviour/format_rate": 1.0,
                                           "behaviour/reflection_rate": 0.25, "behaviour/think_tokens_mean": 20.0,
                                           "behaviour/truncation_rate": 0.0} for s in steps]))
    for s in steps:
        _write(run / "traces" / f"step-{s:06d}.jsonl", _jsonl([{
            "step": s, "prompt_id": "fake-0", "problem": "1 + 1", "gold": "2", "prefill": "<think>",
            "completion": "fake</think><answer>2</answer>", "extracted_answer": "2", "correct": True,
            "formatted": True, "reward": 1.5, "reflections": [], "thinking_tokens": 1, "completion_tokens": 6}]))
    checkpoint = run / "checkpoints" / f"checkpoint-{max_steps}"
    _write(checkpoint / "trainer_state.json", json.dumps({"global_step": max_steps, "max_steps": max_steps}) + "\n")
    _write(checkpoint / "config.json", "{}\n")
    _write(run / "model" / "config.json", "{}\n")
    _write(run / "eval" / "base.json", json.dumps({"tag": "base", "model": "tiny", "task": "arithmetic",
                                                   "split": "test", "n": 2, "pass@1": 0.5}) + "\n")
    return run


def run_names(configs: Path) -> list[str]:
    """The run names the shipped configs write: ``name`` and, with a CPU profile, its ``name`` there.

    Example:
        >>> import pathlib, tempfile
        >>> d = pathlib.Path(tempfile.mkdtemp())
        >>> _ = (d / "a.yaml").write_text("name: a\\ncpu_overrides: {name: a-cpu}\\n")
        >>> run_names(d)
        ['a', 'a-cpu']
    """
    names: set[str] = set()
    for path in sorted(configs.glob("*.yaml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
        for section in (data, data.get("cpu_overrides") or {}):
            if isinstance(section.get("name"), str):
                names.add(section["name"])
    return sorted(names)


def _runs(root: Path) -> dict[Path, str]:
    """The fake run folders under ``root``, with the run name each holds."""
    return {root / "runs" / name: name for name in run_names(root / "configs")}


def _other_folders(root: Path) -> dict[Path, dict[str, str]]:
    """The other fake folders under ``root`` (a sweep per config, calibration files, logs) and their files."""
    folders: dict[Path, dict[str, str]] = {}
    for path in sorted((root / "configs").glob("*.yaml")):
        folders[root / "sweeps" / path.stem] = {
            "plan.json": json.dumps({"name": path.stem, "config": f"configs/{path.name}", "variants": []}) + "\n",
            "summary.json": json.dumps({"name": path.stem, "variants": []}) + "\n"}
    folders[root / "calibration"] = {f"{p.stem}.jsonl": _jsonl([{"id": "fake-0", "k": 2, "correct": 1}])
                                     for p in sorted((root / "configs").glob("*.yaml"))}
    folders[root / "logs"] = {"status.txt": _NOTE}
    return folders


def write_all(root: Path) -> list[Path]:
    """Write the fakes under ``root`` (runs, sweeps, calibration files, logs); return the folders written."""
    written = []
    for run, name in _runs(root).items():
        if run.exists():
            print(f"kept {run} (exists)", file=sys.stderr)
            continue
        written.append(write_fake_run(run, name))
    for folder, files in _other_folders(root).items():
        if folder.exists():
            print(f"kept {folder} (exists)", file=sys.stderr)
            continue
        _write(folder / MARKER, _NOTE)
        for file_name, text in files.items():
            _write(folder / file_name, text)
        written.append(folder)
    return written


def remove_all(root: Path) -> list[Path]:
    """Delete the fake folders under ``root`` (only those holding the marker); return them."""
    removed = []
    for folder in [*_runs(root), *_other_folders(root)]:
        if (folder / MARKER).is_file():
            shutil.rmtree(folder)
            removed.append(folder)
    for folder in (root / "runs", root / "sweeps"):
        if folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()
    return removed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--root", default=".", help="the checkout (default: the working folder)")
    parser.add_argument("--remove", action="store_true", help="delete the fakes this script wrote")
    args = parser.parse_args(argv)
    root = Path(args.root)
    if not (root / "configs").is_dir():
        print(f"no configs/ folder in {root}: give the checkout with --root", file=sys.stderr)
        return 2
    if args.remove:
        print(f"removed {len(remove_all(root))} fake folder(s) under {root}")
    else:
        print(f"wrote {len(write_all(root))} fake folder(s) under {root}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
