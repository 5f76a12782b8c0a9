"""Benchmark rollout generation backends and presets on a config, across batch sizes (what ``make bench`` runs).

Each case trains the config for a few GRPO steps in its own process and reports generated
tokens per second, completions per second, the step split into generation / reward / update,
the decode step's time, memory bandwidth and FLOP rate against the GPU's peaks, peak GPU
memory and the reward means; results print as one table and go to one JSON file. All
options are those of ``ahazero bench`` (``--help`` lists them).

Example:
    python scripts/bench_rollouts.py configs/default.yaml --backends hf,compiled,graph
    python scripts/bench_rollouts.py configs/default.yaml --backends graph --presets fast-rollouts --batches 128,1024
    python scripts/bench_rollouts.py configs/default.yaml --backends "" --presets lora-24gb,full-bf16
"""

from __future__ import annotations

import sys

from ahazero.cli import main

if __name__ == "__main__":
    sys.exit(main(["bench", *sys.argv[1:]]))
