"""scripts/gpu_aha_sweep.sh end to end in its SMOKE mode: every command it runs on the GPU, on the tiny model."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from helpers import REPO

SCRIPT = REPO / "scripts" / "gpu_aha_sweep.sh"


@pytest.mark.slow
def test_the_smoke_mode_calibrates_sweeps_four_variants_and_summarises(tmp_path, tiny_model_dir):
    env = {**os.environ, "SMOKE": "1", "WORK": str(tmp_path), "AHAZERO": f"{sys.executable} -m ahazero",
           "PYTHON": sys.executable}
    done = subprocess.run(["bash", str(SCRIPT)], env=env, capture_output=True, text=True, timeout=1500)
    assert done.returncode == 0, done.stdout + done.stderr
    status = (tmp_path / "logs" / "status.txt").read_text()
    for line in ("0-preflight: ok", "1-calibrate: ok", "kept 32 in [0, 1]", "2-sweep: ok", "3-summary:", "done in"):
        assert line in status, status
    data = json.loads((tmp_path / "sweeps" / "aha-sweep" / "summary.json").read_text())
    assert [r["variant"] for r in data["variants"]] == ["cal", "cal-b512", "nocal", "ref"]
    assert [r["status"] for r in data["variants"]] == ["finished"] * 4 and len(data["base_evals"]) == 2
    assert all(r["pass1_base"] is not None and r["pass1_final"] is not None for r in data["variants"])
    assert data["variants"][3]["run_dir"].endswith("runs/aha-sweep-ref")
    assert (tmp_path / "runs" / "aha-sweep-ref" / "config.yaml").read_text().count("name: arithmetic") == 1
    assert "  ref: finished" in status
    # started again: the calibration is reused and every variant is skipped as finished
    again = subprocess.run(["bash", str(SCRIPT)], env=env, capture_output=True, text=True, timeout=600)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "1-calibrate: reusing" in again.stdout
    assert (tmp_path / "logs" / "2-sweep.log").read_text().count("finished earlier, skipped") == 4
