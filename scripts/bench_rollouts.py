"""Benchmark rollout generation backends and memory presets on a config (what ``make bench`` runs).

Each case trains the config for a few GRPO steps in its own process and reports generated
tokens per second, the step split into generation / reward / update, peak GPU memory and
the reward means; results print as a table and go to a JSON file. All options are those of
``ahazero bench`` (``--help`` lists them).

Example:
    python scripts/bench_rollouts.py configs/default.yaml --backends hf,compiled,graph
    python scripts/bench_rollouts.py configs/default.yaml --backends "" --presets lora-24gb,full-bf16
"""

from __future__ import annotations

import sys

from ahazero.cli import main

if __name__ == "__main__":
    sys.exit(main(["bench", *sys.argv[1:]]))
