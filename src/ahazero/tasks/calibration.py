"""Difficulty calibration files: each train problem's pass rate under the base model, and the band filter.

``ahazero calibrate`` samples ``k`` completions per train problem and writes one JSON line
per problem (``id``, ``pass_rate``, ``correct``, ``k``, plus the problem and gold for
reading). A task with the ``calibration`` option keeps only the train problems whose pass
rate lies in ``pass_rate_band`` (inclusive): problems the model always solves teach it to
be brief, problems it never solves give no accuracy signal. The held-out split is never
filtered.

Example:
    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "calibration.jsonl"
    >>> write_calibration(path, [{"id": "a", "correct": 0, "k": 8}, {"id": "b", "correct": 3, "k": 8}])
    >>> read_calibration(path)
    {'a': 0.0, 'b': 0.375}
    >>> band_counts({"a": 0.0, "b": 0.375}, ["a", "b", "c"], (0.1, 0.7))
    BandCounts(total=3, kept=1, below=1, above=0, missing=1)
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

from ahazero.cache.atomic_files import atomic_writer

__all__ = ["BandCounts", "CalibrationError", "band_counts", "in_band", "read_calibration", "write_calibration"]


class CalibrationError(ValueError):
    """A calibration file is missing, unreadable, or matches none of the task's problems."""


class BandCounts(NamedTuple):
    """How a band split the train problems: kept, below / above the band, not in the file."""

    total: int
    kept: int
    below: int
    above: int
    missing: int

    def describe(self, band: Sequence[float]) -> str:
        """One line for logs and run records.

        Example:
            >>> BandCounts(10, 4, 5, 1, 0).describe((0.1, 0.7))
            'kept 4 of 10 train problems with a base pass rate in [0.1, 0.7] (5 below, 1 above, 0 not calibrated)'
        """
        return (f"kept {self.kept} of {self.total} train problems with a base pass rate in [{band[0]:g}, "
                f"{band[1]:g}] ({self.below} below, {self.above} above, {self.missing} not calibrated)")


def write_calibration(path: str | Path, rows: Iterable[dict[str, Any]]) -> None:
    """Write per-problem results (each with ``id``, ``correct`` and ``k``) atomically, adding ``pass_rate``.

    Example:
        >>> import tempfile, pathlib
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "c.jsonl"
        >>> write_calibration(p, [{"id": "x", "correct": 1, "k": 4, "problem": "Compute: 2 * 3"}])
        >>> json.loads(p.read_text())["pass_rate"]
        0.25
    """
    with atomic_writer(path) as fh:
        for row in rows:
            k = int(row["k"])
            record = {"id": str(row["id"]), "pass_rate": int(row["correct"]) / k if k else None,
                      **{key: value for key, value in row.items() if key != "id"}}
            fh.write(json.dumps(record, ensure_ascii=False) + "\n")


def read_calibration(path: str | Path) -> dict[str, float]:
    """``{problem id: pass rate}`` from a calibration file; :class:`CalibrationError` naming the file otherwise.

    Example:
        >>> import tempfile, pathlib
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "c.jsonl"
        >>> _ = p.write_text('{"id": "x", "pass_rate": 0.5}\\nnot json\\n')
        >>> read_calibration(p)
        Traceback (most recent call last):
        ...
        ahazero.tasks.calibration.CalibrationError: calibration file ...c.jsonl, line 2: not a JSON object
    """
    path = Path(path)
    if not path.is_file():
        raise CalibrationError(f"calibration file {path} not found; write it with `ahazero calibrate CONFIG` "
                               "(see `ahazero calibrate --help`)")
    rates: dict[str, float] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            record = None
        if not isinstance(record, dict):
            raise CalibrationError(f"calibration file {path}, line {number}: not a JSON object")
        rate = record.get("pass_rate")
        if "id" not in record or isinstance(rate, bool) or not isinstance(rate, int | float) \
                or not math.isfinite(rate) or not 0.0 <= rate <= 1.0:
            raise CalibrationError(f"calibration file {path}, line {number}: needs 'id' and a 'pass_rate' in [0, 1]")
        rates[str(record["id"])] = float(rate)
    if not rates:
        raise CalibrationError(f"calibration file {path} holds no problems")
    return rates


def in_band(rate: float, band: Sequence[float]) -> bool:
    """True when ``band[0] <= rate <= band[1]`` (a small tolerance for k-sample fractions).

    Example:
        >>> in_band(0.125, (0.125, 0.7)), in_band(0.75, (0.1, 0.7))
        (True, False)
    """
    return band[0] - 1e-9 <= rate <= band[1] + 1e-9


def band_counts(rates: dict[str, float], ids: Sequence[str], band: Sequence[float]) -> BandCounts:
    """Count how ``band`` splits the problems ``ids`` (see :class:`BandCounts`).

    Example:
        >>> band_counts({"a": 0.9}, ["a"], (0.1, 0.7)).above
        1
    """
    kept = below = above = missing = 0
    for problem_id in ids:
        rate = rates.get(problem_id)
        if rate is None:
            missing += 1
        elif in_band(rate, band):
            kept += 1
        elif rate < band[0]:
            below += 1
        else:
            above += 1
    return BandCounts(len(ids), kept, below, above, missing)
