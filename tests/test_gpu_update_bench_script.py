"""scripts/gpu_update_bench.sh end to end in its SMOKE mode: every command it runs on the GPU, on the tiny model."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from helpers import REPO

SCRIPT = REPO / "scripts" / "gpu_update_bench.sh"


@pytest.mark.slow
def test_the_smoke_mode_benches_the_update_measures_each_preset_and_trains_fast(tmp_path, tiny_model_dir):
    env = {**os.environ, "SMOKE": "1", "WORK": str(tmp_path), "AHAZERO": f"{sys.executable} -m ahazero",
           "PYTHON": sys.executable, "PRESETS": "lora-24gb one-minute fast"}
    done = subprocess.run(["bash", str(SCRIPT)], env=env, capture_output=True, text=True, timeout=2400)
    assert done.returncode == 0, done.stdout + done.stderr
    status = (tmp_path / "logs" / "status.txt").read_text()
    for line in ("0-preflight: ok", "1-update-ab: ok", "2-memory: lora-24gb ok", "2-memory: one-minute ok",
                 "2-memory: fast ok", "3-fast: ok", "done in"):
        assert line in status, status
    case = json.loads((tmp_path / "bench" / "update-ab.json").read_text())["cases"][0]
    assert case["status"] == "ok" and list(case["update_variants"]) == ["padded", "sorted", "packed", "shared"]
    assert all(v["status"] == "ok" for v in case["update_variants"].values())
    # the summary: each variant, each preset with its estimate, the fast run's targets
    for text in ("    shared  update", "  one-minute               measured - GiB, estimated", "fast preset (fast-update): 2 steps",
                 "targets: +30 points"):
        assert text in status, status
    run = tmp_path / "runs" / "fast-update"
    assert (run / "eval" / "base.json").is_file() and (run / "eval" / "final.json").is_file()
    assert json.loads((run / "run.json").read_text())["auto_sizes"]["source"] == "update.memory_gib"


def test_an_unknown_step_is_refused_before_anything_runs(tmp_path):
    env = {**os.environ, "SMOKE": "1", "WORK": str(tmp_path), "ONLY": "ab warmup",
           "AHAZERO": "false", "PYTHON": "false"}
    done = subprocess.run(["bash", str(SCRIPT)], env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert "ONLY: unknown step 'warmup' (choose from: ab memory fast)" in done.stderr
    assert not (tmp_path / "logs" / "status.txt").exists()
