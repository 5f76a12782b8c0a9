"""Write a real GGUF file from the tiny model, so the GGUF loading path is tested offline.

Tensor names come from gguf's own name map (as llama.cpp's converter does), the tokenizer
is stored as a 'gpt2' BPE vocabulary with merges, and the special token ids are recorded in
the metadata. The eos token is deliberately *not* the one the transformers tokenizer would
pick by default, to check that conversion reads it from the metadata.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np


def write_tiny_gguf(model_dir: Path, out_path: Path, *, eos_token: str = "<|im_end|>") -> Path:
    import gguf
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(model_dir)
    cfg = model.config
    tok = json.loads((model_dir / "tokenizer.json").read_text())
    vocab = tok["model"]["vocab"]
    added = {t["content"]: (t["id"], t["special"]) for t in tok["added_tokens"]}
    size = cfg.vocab_size
    tokens = [""] * size
    types = [gguf.TokenType.NORMAL] * size
    for text, idx in vocab.items():
        tokens[idx] = text
    for text, (idx, special) in added.items():
        tokens[idx] = text
        types[idx] = gguf.TokenType.CONTROL if special else gguf.TokenType.USER_DEFINED
    merges = [m if isinstance(m, str) else " ".join(m) for m in tok["model"]["merges"]]

    writer = gguf.GGUFWriter(str(out_path), "qwen2")
    writer.add_name("tiny-qwen2")
    writer.add_context_length(cfg.max_position_embeddings)
    writer.add_block_count(cfg.num_hidden_layers)
    writer.add_feed_forward_length(cfg.intermediate_size)
    writer.add_embedding_length(cfg.hidden_size)
    writer.add_head_count(cfg.num_attention_heads)
    writer.add_head_count_kv(cfg.num_key_value_heads)
    writer.add_rope_freq_base(float(getattr(cfg, "rope_theta", None) or cfg.rope_parameters["rope_theta"]))
    writer.add_layer_norm_rms_eps(cfg.rms_norm_eps)
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("qwen2")
    writer.add_token_list(tokens)
    writer.add_token_types(types)
    writer.add_token_merges(merges)
    writer.add_eos_token_id(added[eos_token][0])
    writer.add_bos_token_id(added["<|endoftext|>"][0])
    writer.add_pad_token_id(added["<|endoftext|>"][0])
    writer.add_chat_template((model_dir / "chat_template.jinja").read_text()
                             if (model_dir / "chat_template.jinja").exists()
                             else json.loads((model_dir / "tokenizer_config.json").read_text())["chat_template"])
    names = gguf.get_tensor_name_map(gguf.MODEL_ARCH.QWEN2, cfg.num_hidden_layers)
    for name, tensor in model.state_dict().items():
        if name == "lm_head.weight" and cfg.tie_word_embeddings:
            continue
        gguf_name = names.get_name(name, try_suffixes=(".weight", ".bias"))
        assert gguf_name is not None, name
        writer.add_tensor(gguf_name, tensor.detach().float().numpy().astype(np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return out_path
