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


def trace_record(step: int, prompt_id: str, text: str, *, correct: bool, reward: float,
                 truncated: bool = False, advantage: float = 0.0, problem: str | None = None) -> dict:
    """One trace record as training writes it (via ``build_records``), for synthetic run dirs.

    ``text`` is the completion after a ``<think>`` prefill; ``reward`` sets the total directly.
    """
    from ahazero.observe.behaviours import describe
    from ahazero.observe.tracing import build_records

    record = build_records(
        step=step,
        rows=[{"id": prompt_id, "problem": problem or f"Compute {prompt_id}", "prefill": "<think>", "answer": "4"}],
        completions=[text],
        rewards={"accuracy": [float(correct)], "think_format": [1.0]},
        weights=[1.0, 0.5],
        advantages=[advantage],
        completion_tokens=[len(text.split()) + 2],
        truncated=[truncated],
        behaviours=[describe("<think>" + text)],
    )[0]
    record["reward"] = reward
    return record


def length_parity_reward(completions, **kwargs) -> list[float]:
    """A reward that varies within a group whatever the model writes (for tests of group handling)."""
    return [float(len(str(c)) % 2) for c in completions]
