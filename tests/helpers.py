"""Test helpers shared by several test modules."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

#: The canonical code-made reflective trace of the shared contract (after the "<think>" prefill).
CANONICAL = """Compute (47 + 38) * 2 step by step.
Step 1: 47 + 38 = 75
Step 2: 75 * 2 = 150
So the answer is 150.
Let me check by undoing each step: 150 / 2 = 75, 75 - 38 = 37, but the problem has 47.
Wait, 47 + 38 is 85, not 75. Let me redo it.
Step 1: 47 + 38 = 85
Step 2: 85 * 2 = 170
So the answer is 170.
Let me check by undoing each step: 170 / 2 = 85, 85 - 38 = 47. It checks out.
</think>
<answer>170</answer>"""
#: The same without a slip, and the matched control without any check line.
NO_SLIP = "\n".join(CANONICAL.splitlines()[:1] + CANONICAL.splitlines()[6:])
CONTROL = "\n".join(line for line in NO_SLIP.splitlines() if not line.startswith("Let me check"))


def qwen_shape():
    """The memory model's shape of Qwen2.5-Coder-0.5B-Instruct as the default recipe loads it (630,167,424 parameters)."""
    from ahazero.config.memory_model import ModelShape

    return ModelShape(hidden=896, intermediate=4864, layers=24, heads=14, kv_heads=2, head_dim=64, vocab=151936,
                      parameters=630_167_424)


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


#: Prompts of different lengths: a left-padded batch whose rows stop at different steps.
MIXED_PROMPTS = ["1 + 2 =", "What is 17 times 3, step by step?", "x"]


def left_batch(tok, texts, device="cpu"):
    """``(input_ids, attention_mask)`` of ``texts``, left-padded, on ``device``."""
    enc = tok(texts, return_tensors="pt", padding=True, padding_side="left")
    return enc["input_ids"].to(device), enc["attention_mask"].to(device)


def eos_list(model) -> list[int]:
    """The model's generation-config EOS id(s) as a list."""
    eos = model.generation_config.eos_token_id
    return list(eos) if isinstance(eos, list | tuple) else [eos]


def generate_until_eos(model, tok, ids, mask, eos, max_new_tokens) -> list[list[int]]:
    """``model.generate``'s greedy completions, each cut after its first EOS (as the graph sampler returns them)."""
    out = model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=max_new_tokens, do_sample=False,
                         eos_token_id=eos, pad_token_id=tok.pad_token_id)[:, ids.shape[1]:]
    rows = []
    for row in out.tolist():
        cut = next((i + 1 for i, t in enumerate(row) if t in eos), len(row))
        rows.append(row[:cut])
    return rows


def loss_batch(vocab: int, pad: int, *, completion_lengths: list[int], prompt_lengths: list[int],
               generations: int = 1, width: int = 40, prompt_width: int = 9, seed: int = 0) -> dict:
    """A generation batch as TRL hands it to the loss: left-padded prompts, right-padded completions.

    Row ``r`` has prompt ``r // generations`` (``prompt_lengths`` gives each prompt's length) and a
    completion of ``completion_lengths[r]`` tokens (0: a row masked out of the loss).
    """
    import torch

    g = torch.Generator().manual_seed(seed)
    rows = len(completion_lengths)
    prompts = torch.randint(1, vocab, (rows // generations, prompt_width), generator=g).repeat_interleave(
        generations, dim=0)
    prompt_len = torch.tensor(prompt_lengths).repeat_interleave(generations)
    prompt_mask = (torch.arange(prompt_width) >= prompt_width - prompt_len[:, None]).long()
    completion_mask = (torch.arange(width) < torch.tensor(completion_lengths)[:, None]).long()
    completion_ids = torch.randint(1, vocab, (rows, width), generator=g).masked_fill(completion_mask == 0, pad)
    return {"prompt_ids": prompts.masked_fill(prompt_mask == 0, pad), "prompt_mask": prompt_mask,
            "completion_ids": completion_ids, "completion_mask": completion_mask,
            "advantages": torch.randn(rows, generator=g), "num_items_in_batch": completion_mask.sum()}
