"""Test helpers shared by several test modules."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def base_config(**changes) -> dict:
    """A minimal valid config dict for tests."""
    data = {
        "name": "t",
        "model": {"name_or_path": "tiny", "dtype": "float32"},
        "task": {"name": "arithmetic", "num_train": 32, "num_test": 8},
        "rewards": [{"name": "accuracy", "weight": 1.0}, {"name": "think_format", "weight": 0.5}],
        "grpo": {"num_generations": 4, "per_device_train_batch_size": 8, "max_steps": 2},
    }
    data.update(changes)
    return data
