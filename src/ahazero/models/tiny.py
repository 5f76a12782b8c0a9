"""A tiny random-init Qwen2 model and a locally trained tokenizer, for offline tests and smoke runs.

Nothing is downloaded: the tokenizer is a byte-level BPE trained with the ``tokenizers``
library on text this module generates, and the model is a 2-layer Qwen2 with random
weights. It learns nothing useful; it exists so the whole pipeline runs on 2 CPU cores.

Example:
    >>> import tempfile
    >>> path = build_tiny_model(tempfile.mkdtemp())
    >>> from transformers import AutoTokenizer
    >>> AutoTokenizer.from_pretrained(path).eos_token
    '<|im_end|>'
"""

from __future__ import annotations

import random
from pathlib import Path

__all__ = ["TINY_CHAT_TEMPLATE", "build_tiny_model"]

#: ChatML, as Qwen models use it.
TINY_CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n' }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

_SPECIAL = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
_TAGS = ["<think>", "</think>", "<answer>", "</answer>"]


def _corpus(seed: int, lines: int = 3000) -> list[str]:
    from ahazero.tasks.prompts import R1_SYSTEM_PROMPT

    rng = random.Random(seed)
    words = (
        "wait let me check the answer is so first then add subtract multiply divide we get verify "
        "however mistake retry again compute solve for x equals number total result step because"
    ).split()
    out = [R1_SYSTEM_PROMPT]
    for _ in range(lines):
        a, b = rng.randint(0, 999), rng.randint(1, 99)
        op = rng.choice("+-*/")
        chatter = " ".join(rng.choices(words, k=rng.randint(3, 12)))
        out.append(f"Compute: {a} {op} {b}. <think> {chatter} {a}{op}{b} </think> <answer> {a} </answer>")
    return out


def build_tiny_model(out_dir: str | Path, *, seed: int = 0, vocab_size: int = 512) -> Path:
    """Build and save the tiny model and tokenizer into ``out_dir``; return the folder.

    Deterministic for a given ``seed``. Takes about a second.

    Example:
        >>> import tempfile
        >>> from transformers import AutoModelForCausalLM
        >>> m = AutoModelForCausalLM.from_pretrained(build_tiny_model(tempfile.mkdtemp()))
        >>> m.config.num_hidden_layers
        2
    """
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast, Qwen2Config, Qwen2ForCausalLM

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=_SPECIAL,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator(_corpus(seed), trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=bpe,
        eos_token="<|im_end|>",
        pad_token="<|endoftext|>",
        bos_token=None,
        unk_token=None,
        additional_special_tokens=["<|im_start|>"],
        model_max_length=2048,
    )
    tokenizer.add_tokens(_TAGS)
    tokenizer.chat_template = TINY_CHAT_TEMPLATE
    tokenizer.save_pretrained(out)

    config = Qwen2Config(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=128,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=2048,
        tie_word_embeddings=True,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=None,
    )
    torch.manual_seed(seed)
    model = Qwen2ForCausalLM(config)
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.save_pretrained(out)
    return out
