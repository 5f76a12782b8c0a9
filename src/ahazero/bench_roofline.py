"""The GPU's limits the bench compares a decode step against: peak memory bandwidth and bf16 FLOP rate.

Peaks are read from the device name (``torch.cuda.get_device_name()``) in :data:`PEAKS`, the
vendors' datasheet figures; ``ahazero bench --peak-tbps/--peak-tflops`` override them (a card
not listed, or ceilings measured on the card itself). Dense bf16 tensor-core rates: where a
datasheet gives the rate with structured sparsity, the dense rate is half of it.

Example:
    >>> device_peaks("NVIDIA H200")["peak_tbps"]
    4.8
    >>> device_peaks("NVIDIA L40S")["peak_tbps"] is None   # not listed: give --peak-tbps
    True
    >>> device_peaks("NVIDIA H100 80GB HBM3", tflops=800.0)["peak_tflops"]
    800.0
"""

from __future__ import annotations

import re
from typing import Any

__all__ = ["PEAKS", "device_peaks", "percent_of_peak"]

#: (pattern in the device name, memory bandwidth TB/s, dense bf16 TFLOP/s, source). First match wins.
PEAKS: tuple[tuple[str, float, float, str], ...] = (
    (r"H200 NVL", 4.8, 835.5, "NVIDIA H200 NVL datasheet: 4.8 TB/s HBM3e; BF16 1,671 TFLOPS with sparsity"),
    (r"H200", 4.8, 989.5, "NVIDIA H200 SXM datasheet: 4.8 TB/s HBM3e; BF16 1,979 TFLOPS with sparsity"),
    (r"H100 NVL", 3.9, 835.5, "NVIDIA H100 NVL datasheet: 3.9 TB/s HBM3; BF16 1,671 TFLOPS with sparsity"),
    (r"H100 PCIe", 2.0, 756.5, "NVIDIA H100 PCIe datasheet: 2.0 TB/s HBM2e; BF16 1,513 TFLOPS with sparsity"),
    (r"H100", 3.35, 989.5, "NVIDIA H100 SXM datasheet: 3.35 TB/s HBM3; BF16 1,979 TFLOPS with sparsity"),
    (r"A100.*80GB", 2.039, 312.0, "NVIDIA A100 datasheet: 2,039 GB/s HBM2e (80GB SXM; 1,935 PCIe); BF16 312 "
                                  "TFLOPS dense"),
    (r"A100", 1.555, 312.0, "NVIDIA A100 datasheet: 1,555 GB/s HBM2 (40GB); BF16 312 TFLOPS dense"),
    (r"\bL4\b", 0.3, 121.0, "NVIDIA L4 datasheet: 300 GB/s GDDR6; BF16 242 TFLOPS with sparsity"),
    (r"RTX 4090", 1.008, 165.2, "NVIDIA Ada GPU architecture whitepaper: 1,008 GB/s GDDR6X; BF16 tensor "
                                "165.2 TFLOPS dense with FP32 accumulate"),
)


def device_peaks(name: str, *, tbps: float | None = None, tflops: float | None = None) -> dict[str, Any]:
    """The peaks for a device name: ``peak_tbps``, ``peak_tflops`` and ``peak_source`` (None when unknown).

    ``tbps`` / ``tflops`` replace the table's values (``--peak-tbps`` / ``--peak-tflops``).

    Example:
        >>> device_peaks("cpu")
        {'peak_tbps': None, 'peak_tflops': None, 'peak_source': None}
        >>> device_peaks("NVIDIA A100-SXM4-80GB")["peak_tbps"], device_peaks("NVIDIA A100-PCIE-40GB")["peak_tbps"]
        (2.039, 1.555)
    """
    match = next((row for row in PEAKS if re.search(row[0], name)), None)
    out: dict[str, Any] = {"peak_tbps": None, "peak_tflops": None, "peak_source": None}
    if match is not None:
        out = {"peak_tbps": match[1], "peak_tflops": match[2], "peak_source": match[3]}
    given = [label for label, value in (("--peak-tbps", tbps), ("--peak-tflops", tflops)) if value is not None]
    if tbps is not None:
        out["peak_tbps"] = tbps
    if tflops is not None:
        out["peak_tflops"] = tflops
    if given:
        out["peak_source"] = "; ".join(filter(None, [f"{' and '.join(given)} given", out["peak_source"]]))
    return out


def percent_of_peak(value: float | None, peak: float | None) -> float | None:
    """``100 x value / peak``, rounded to 0.1 (None when either is unknown).

    Example:
        >>> percent_of_peak(1.2, 4.8), percent_of_peak(1.2, None)
        (25.0, None)
    """
    if value is None or not peak:
        return None
    return round(100.0 * value / peak, 1)
