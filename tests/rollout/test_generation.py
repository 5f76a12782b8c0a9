"""Rollout backends: resolution, config conflicts, what each sets in GRPOConfig, and training with each."""

from __future__ import annotations

import pytest
import torch
from helpers import base_config

from ahazero.config.backend_choice import backend_grpo_settings, resolve_backend
from ahazero.config.schema import ConfigError, validate_dict
from ahazero.config.validate import build_grpo_config, check_config, resolved_backend
from ahazero.models.loading import load_model_and_tokenizer
from ahazero.observe.rundir import read_metrics
from ahazero.rollout.graph_sampler import GraphSampler
from ahazero.training.assemble import build_trainer, train


def cfg_with(tmp_path=None, **changes):
    data = base_config(**changes)
    if tmp_path is not None:
        data["output_root"] = str(tmp_path)
    return validate_dict(data)


def test_auto_is_hf_on_cpu_and_graph_on_a_gpu(monkeypatch):
    monkeypatch.setattr("ahazero.config.backend_choice.vllm_available", lambda: False)
    assert resolve_backend("auto", cuda=False) == "hf"
    assert resolve_backend("auto", cuda=True) == "graph"
    monkeypatch.setattr("ahazero.config.backend_choice.vllm_available", lambda: True)
    assert resolve_backend("auto", cuda=True) == "vllm"


def test_vllm_without_vllm_is_a_config_error(monkeypatch):
    monkeypatch.setattr("ahazero.config.backend_choice.vllm_available", lambda: False)
    cfg = cfg_with(generation={"backend": "vllm"})
    with pytest.raises(ConfigError, match=r"generation.backend: backend 'vllm' needs vLLM \(pip install vllm\)"):
        check_config(cfg, cuda=True)


def test_unknown_backend_names_the_choices():
    with pytest.raises(ConfigError, match="generation.backend.*'auto', 'hf', 'compiled', 'graph', 'paged'"):
        cfg_with(generation={"backend": "fast"})


def test_each_backend_sets_its_grpo_fields():
    # prompt buckets never reach GRPOConfig: TRL would pad the loss's batch with them too
    args = build_grpo_config(cfg_with(generation={"backend": "compiled", "prompt_bucket": 32}), cuda=False)
    assert args.cache_implementation == "static" and args.pad_to_multiple_of is None
    args = build_grpo_config(cfg_with(generation={"backend": "graph"}), cuda=False)
    assert args.pad_to_multiple_of is None and args.cache_implementation is None
    args = build_grpo_config(cfg_with(generation={"backend": "paged"}), cuda=False)
    assert args.use_transformers_continuous_batching
    args = build_grpo_config(cfg_with(generation={"backend": "hf"}), cuda=False)
    assert args.pad_to_multiple_of is None and not args.use_vllm
    assert backend_grpo_settings("vllm") == {"use_vllm": True, "vllm_mode": "colocate"}


def test_grpo_generation_keys_conflict_with_a_named_backend():
    with pytest.raises(ConfigError, match="grpo.use_vllm and generation.backend both choose"):
        resolved_backend(cfg_with(generation={"backend": "graph"}, grpo={"use_vllm": True}), cuda=True)
    # with 'auto' the grpo section's own choice is kept
    assert resolved_backend(cfg_with(grpo={"cache_implementation": "static"}), cuda=True) == "custom"


def test_graph_refuses_sampling_settings_it_does_not_implement():
    with pytest.raises(ConfigError, match="'graph' does not implement grpo.repetition_penalty"):
        resolved_backend(cfg_with(generation={"backend": "graph"}, grpo={"repetition_penalty": 1.1}), cuda=True)
    # auto falls back to transformers' compiled path for them
    assert resolved_backend(cfg_with(grpo={"min_p": 0.05}), cuda=True) == "compiled"
    assert resolved_backend(cfg_with(grpo={"top_p": 0.9, "top_k": 20}), cuda=True) == "graph"


@pytest.mark.parametrize("backend", ["graph", "compiled"])
def test_training_with_a_backend_logs_rollout_timing(backend, tmp_path, tiny_model_dir):
    cfg = cfg_with(tmp_path, generation={"backend": backend}, logging={"report_to": ["none"]},
                   grpo={"num_generations": 4, "per_device_train_batch_size": 8, "max_steps": 2,
                         "max_completion_length": 12, "save_strategy": "no"})
    run_dir = train(cfg)
    rows = [r for r in read_metrics(run_dir / "metrics.jsonl") if "reward" in r]
    assert [r["step"] for r in rows] == [1, 2]
    for row in rows:
        assert row["timing/generation_seconds"] > 0 and row["timing/reward_seconds"] >= 0
        assert 8 <= row["timing/generated_tokens"] <= 8 * 12  # 8 completions of 1..12 tokens
        assert row["timing/tokens_per_second"] == pytest.approx(
            row["timing/generated_tokens"] / row["timing/generation_seconds"], rel=1e-6)


def test_graph_backend_hands_generation_to_the_sampler(tmp_path, tiny_model_dir):
    cfg = cfg_with(tmp_path, generation={"backend": "graph"}, logging={"report_to": ["none"]},
                   grpo={"num_generations": 4, "per_device_train_batch_size": 8, "max_steps": 1,
                         "max_completion_length": 12})
    trainer = build_trainer(cfg)
    assert isinstance(trainer.graph_sampler, GraphSampler)
    assert trainer.generation_bucket == 64 and trainer.pad_to_multiple_of is None


@pytest.mark.parametrize("backend", ["graph", "compiled"])
def test_prompt_buckets_pad_generation_but_not_the_loss_batch(backend, tmp_path, tiny_model_dir, monkeypatch):
    """Generation sees prompts padded to the bucket; the batch the loss is computed on does not."""
    cfg = cfg_with(tmp_path, generation={"backend": backend, "prompt_bucket": 64}, logging={"report_to": ["none"]},
                   grpo={"num_generations": 4, "per_device_train_batch_size": 8, "max_steps": 1,
                         "max_completion_length": 8, "save_strategy": "no"})
    trainer = build_trainer(cfg)
    widths = {}
    if backend == "graph":
        sample = GraphSampler.generate

        def spy(self, model, input_ids, attention_mask, **kwargs):
            widths["generation"] = input_ids.shape[1]
            return sample(self, model, input_ids, attention_mask, **kwargs)

        monkeypatch.setattr(GraphSampler, "generate", spy)
    else:
        generate = trainer.model.generate

        def spy(*args, input_ids=None, **kwargs):
            widths["generation"] = input_ids.shape[1]
            return generate(*args, input_ids=input_ids, **kwargs)

        monkeypatch.setattr(trainer.model, "generate", spy)
    score = trainer._generate_and_score_completions

    def capture(inputs):
        out = score(inputs)
        widths["loss"] = out["prompt_ids"].shape[1]
        widths["unpadded_row"] = bool(out["prompt_mask"][:, 0].any())
        return out

    monkeypatch.setattr(trainer, "_generate_and_score_completions", capture)
    trainer.train()
    assert widths["generation"] % 64 == 0
    assert widths["loss"] < widths["generation"] and widths["unpadded_row"]  # padded to the longest prompt only
    assert trainer.pad_to_multiple_of is None  # restored after each generation


def test_graph_sampling_matches_generate_in_distribution(tiny_model_dir):
    """First-token frequencies: GraphSampler vs model.generate differ no more than two generate seeds do.

    A low temperature makes the random tiny model's next-token distribution peaked enough
    (a few hundred tokens, top one ~75%) for 3,000 samples to tell distributions apart.
    """
    model, tok = load_model_and_tokenizer("tiny", dtype="float32")
    model.eval()
    n = 3000
    enc = tok(["12 + 7 ="] * n, return_tensors="pt", padding=True, padding_side="left")
    eos = [model.generation_config.eos_token_id]
    vocab = model.config.vocab_size

    def reference(seed):
        torch.manual_seed(seed)
        out = model.generate(**enc, max_new_tokens=1, do_sample=True, temperature=0.15, top_k=0, top_p=1.0,
                             pad_token_id=tok.pad_token_id)
        return torch.bincount(out[:, -1], minlength=vocab).float() / n

    torch.manual_seed(3)
    ours = GraphSampler(compile=False).generate(model, enc["input_ids"], enc["attention_mask"], max_new_tokens=1,
                                                eos_token_ids=eos, pad_token_id=tok.pad_token_id, temperature=0.15)
    ours = torch.bincount(torch.tensor([row[0] for row in ours]), minlength=vocab).float() / n
    a, b = reference(1), reference(2)
    tvd = lambda p, q: 0.5 * (p - q).abs().sum().item()  # noqa: E731
    assert tvd(ours, a) < 1.5 * tvd(a, b) + 0.02
    # and the check has power: the same sampler at a slightly different temperature fails it
    torch.manual_seed(3)
    hot = GraphSampler(compile=False).generate(model, enc["input_ids"], enc["attention_mask"], max_new_tokens=1,
                                               eos_token_ids=eos, pad_token_id=tok.pad_token_id, temperature=0.2)
    hot = torch.bincount(torch.tensor([row[0] for row in hot]), minlength=vocab).float() / n
    assert tvd(hot, a) > 1.5 * tvd(a, b) + 0.02


@pytest.mark.parametrize("requested", ["auto", "graph"])
def test_a_model_the_graph_sampler_cannot_run(requested, tmp_path, tiny_model_dir, monkeypatch, caplog):
    """Picked by 'auto', graph falls back to TRL's generate with a warning; asked for by name, it fails."""
    from ahazero.rollout.backends import configure_generation

    def unsupported(self, model, *args, **kwargs):
        raise NotImplementedError("this architecture has no static cache")

    monkeypatch.setattr(GraphSampler, "generate", unsupported)
    cfg = cfg_with(tmp_path, generation={"backend": "hf"}, logging={"report_to": ["none"]},
                   grpo={"num_generations": 4, "per_device_train_batch_size": 8, "max_steps": 1,
                         "max_completion_length": 8, "save_strategy": "no"})
    trainer = build_trainer(cfg)
    configure_generation(trainer, "graph", requested=requested)  # as on a GPU
    if requested == "graph":
        with pytest.raises(NotImplementedError, match="no static cache"):
            trainer.train()
        return
    with caplog.at_level("WARNING", logger="ahazero.training.trainer"):
        trainer.train()
    assert "the 'graph' sampler cannot run this model (NotImplementedError" in caplog.text
    assert trainer.graph_sampler is None and trainer.state.global_step == 1


def test_use_cpu_on_a_gpu_machine_resolves_the_cpu_backend_everywhere(tmp_path):
    cfg = cfg_with(tmp_path, grpo={"use_cpu": True})
    checked = check_config(cfg, cuda=True)
    assert checked.backend == "hf" and checked.grpo_args.pad_to_multiple_of is None


@pytest.mark.parametrize(("prompt", "completion", "widened"), [(100, 92, True), (128, 192, True), (128, 128, False),
                                                                 (113, 80, False), (64, 0, True)])
def test_loss_batches_avoid_odd_multiples_of_64(prompt, completion, widened):
    """Widths 192 and 320 gave non-finite gradients on an H200; one masked column moves off them."""
    from ahazero.training.trainer import avoid_unstable_length

    ids = torch.arange(2 * prompt).reshape(2, prompt) + 1
    out = {"prompt_ids": ids.clone(), "prompt_mask": torch.ones(2, prompt, dtype=torch.long),
           "completion_ids": torch.ones(2, completion, dtype=torch.long)}
    avoid_unstable_length(out, pad_token_id=0)
    assert (out["prompt_ids"].shape[1] + completion) % 128 != 64
    assert out["prompt_ids"].shape[1] == prompt + widened
    assert torch.equal(out["prompt_ids"][:, -prompt:], ids)  # the prompt itself is untouched
    if widened:
        assert out["prompt_ids"][:, 0].tolist() == [0, 0] and out["prompt_mask"][:, 0].tolist() == [0, 0]


def test_vision_language_batches_are_left_alone():
    from ahazero.training.trainer import avoid_unstable_length

    out = {"prompt_ids": torch.ones(1, 100, dtype=torch.long), "prompt_mask": torch.ones(1, 100),
           "completion_ids": torch.ones(1, 92, dtype=torch.long), "token_type_ids": torch.zeros(1, 100)}
    assert avoid_unstable_length(out, pad_token_id=0)["prompt_ids"].shape == (1, 100)


def test_training_with_the_fast_paths(tmp_path, tiny_model_dir):
    """The 'fast-rollouts' settings train end to end; the decode counts reach the metrics."""
    cfg = cfg_with(tmp_path, generation={"backend": "graph", "share_prefill": True, "compact_rows": True},
                   update={"sort_by_length": True}, logging={"report_to": ["none"]},
                   grpo={"num_generations": 4, "per_device_train_batch_size": 4, "gradient_accumulation_steps": 2,
                         "max_steps": 2, "max_completion_length": 12, "save_strategy": "no"})
    trainer = build_trainer(cfg)
    assert trainer.graph_sampler.share_prefill and trainer.graph_sampler.compact_rows and trainer.sort_by_length
    trainer.train()
    assert trainer.state.global_step == 2
    for timing in trainer.rollout_timings:
        assert timing["rows"] == 8 and timing["prefill_rows"] == 2  # two prompts, four completions each
        assert timing["decode_steps"] >= 1 and timing["decode_seconds"] > 0
        attended = timing["decode_kv_positions"] / timing["decode_rows"]  # the static cache's length
        assert attended % 64 == 12  # prompts padded to the 64-token bucket, plus 12 new tokens


def test_trl_generate_gets_estimated_decode_counts(tmp_path, tiny_model_dir):
    cfg = cfg_with(tmp_path, generation={"backend": "hf"}, logging={"report_to": ["none"]},
                   grpo={"num_generations": 4, "per_device_train_batch_size": 8, "max_steps": 1,
                         "max_completion_length": 12, "save_strategy": "no"})
    trainer = build_trainer(cfg)
    trainer.train()
    (timing,) = trainer.rollout_timings
    assert timing["decode_estimated"] == 1 and timing["decode_rows"] == 8 * timing["decode_steps"]
    assert 0 <= timing["decode_steps"] <= 11 and timing["decode_seconds"] == timing["generation_seconds"]
