"""A recipe's CPU profile (``cpu_overrides``) and what it is expected to cost (``cpu_expected``).

Without a GPU, ``ahazero train`` applies the recipe's ``cpu_overrides`` and says so in its
first log line, with what the profile as shipped was measured to take: minutes, peak memory,
disk under the run directory, and the machine it was measured on. ``ahazero check`` and
``ahazero eval`` name the profile without the training cost.

Example:
    >>> cost = ProfileCost(minutes=3.5, peak_memory_gib=5.2, disk_gib=0.2, measured_on="2 CPU cores")
    >>> print(profile_line({"name": "default-cpu", "grpo.max_steps": 2}, cost, run_dir="runs/default-cpu"))
    no GPU found: running this recipe's CPU profile; as shipped it takes about 3.5 min, 5.2 GiB of memory at the peak and 0.2 GiB of disk in runs/default-cpu (measured on 2 CPU cores) (cpu_overrides: name=default-cpu, grpo.max_steps=2)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["ProfileCost", "profile_line"]


class ProfileCost(BaseModel):
    """What ``ahazero train`` with the CPU profile takes, measured (``/usr/bin/time -v``, ``du -sh``)."""

    model_config = ConfigDict(extra="forbid")

    minutes: float = Field(gt=0, description="Wall-clock minutes of the whole command (model load to final save).")
    peak_memory_gib: float = Field(gt=0, description="Peak resident memory of the process, GiB.")
    disk_gib: float = Field(ge=0, description="What the run directory holds at the end, GiB.")
    measured_on: str = Field("2 CPU cores", min_length=1, description="The machine the numbers come from.")


def profile_line(overrides: dict[str, Any], cost: ProfileCost | None = None, *,
                 run_dir: str | Path | None = None) -> str:
    """The log line that says the CPU profile applies (with its expected cost, when given).

    Example:
        >>> profile_line({"grpo.max_steps": 2})
        "no GPU found: running this recipe's CPU profile (cpu_overrides: grpo.max_steps=2)"
    """
    line = "no GPU found: running this recipe's CPU profile"
    if cost is not None:
        where = f" in {run_dir}" if run_dir is not None else ""
        line += (f"; as shipped it takes about {cost.minutes:g} min, {cost.peak_memory_gib:g} GiB of memory at the "
                 f"peak and {cost.disk_gib:g} GiB of disk{where} (measured on {cost.measured_on})")
    return line + " (cpu_overrides: " + ", ".join(f"{k}={v}" for k, v in overrides.items()) + ")"
