"""groups.zero_variance: drop masks groups whose accuracy does not vary out of the loss, and logs their share."""

from __future__ import annotations

import json
from collections import defaultdict
from types import SimpleNamespace

import pytest
import torch
from helpers import base_config
from safetensors.torch import load_file

from ahazero.config.schema import ConfigError, validate_dict
from ahazero.config.validate import check_config
from ahazero.observe.rundir import read_metrics
from ahazero.training.assemble import train
from ahazero.training.trainer import AhaGRPOTrainer, zero_variance_groups


def test_zero_variance_flags_ignore_rewards_that_did_not_apply():
    nan = float("nan")
    values = torch.tensor([1.0, 1.0, 1.0, 0.0, nan, 0.0, nan, nan, 0.5, 0.5 + 1e-9])
    assert zero_variance_groups(values, 2).tolist() == [True, False, True, True, True]


def fake_trainer(rewards, *, mode="drop", column=0, process_index=0, generations=4):
    return SimpleNamespace(
        _last_rewards=torch.tensor(rewards, dtype=torch.float32), _group_column=column, zero_variance=mode,
        reward_weights=torch.tensor([1.0, 0.5]), num_generations=generations,
        _metrics={"train": defaultdict(list)},
        accelerator=SimpleNamespace(process_index=process_index, gather=lambda t: t),
    )


# 3 groups of 4: all wrong but format varies | one right | all right
REWARDS = [[0, 1], [0, 0], [0, 1], [0, 0], [1, 1], [0, 1], [0, 0], [0, 1], [1, 1], [1, 1], [1, 0], [1, 1]]


def test_drop_masks_the_groups_whose_accuracy_does_not_vary():
    trainer = fake_trainer(REWARDS)
    output = {"advantages": torch.ones(12), "completion_mask": torch.ones(12, 5, dtype=torch.long),
              "num_items_in_batch": torch.tensor(60)}
    dropped = AhaGRPOTrainer._zero_variance_rows(trainer, output)
    assert dropped.tolist() == [True] * 4 + [False] * 4 + [True] * 4
    AhaGRPOTrainer._drop_from_loss(trainer, output, dropped)
    assert output["completion_mask"].sum(dim=1).tolist() == [0] * 4 + [5] * 4 + [0] * 4
    assert int(output["num_items_in_batch"]) == 20  # the token normaliser counts the kept group only
    metrics = trainer._metrics["train"]
    assert metrics["behaviour/zero_variance_groups"] == [pytest.approx(2 / 3)]
    assert metrics["behaviour/groups_dropped"] == [pytest.approx(2 / 3)]


def test_keep_only_logs_and_total_decides_on_the_weighted_sum():
    trainer = fake_trainer(REWARDS, mode="keep")
    assert AhaGRPOTrainer._zero_variance_rows(trainer, {"advantages": torch.ones(12)}) is None
    assert trainer._metrics["train"]["behaviour/zero_variance_groups"] == [pytest.approx(2 / 3)]
    assert "behaviour/groups_dropped" not in trainer._metrics["train"]
    total = fake_trainer(REWARDS, column=None)  # 1.0 x accuracy + 0.5 x format
    dropped = AhaGRPOTrainer._zero_variance_rows(total, {"advantages": torch.ones(12)})
    assert dropped.tolist() == [False] * 12  # format varies in every group, so the total does too


def test_each_process_gets_its_own_slice_of_the_gathered_groups():
    trainer = fake_trainer(REWARDS, process_index=1)
    dropped = AhaGRPOTrainer._zero_variance_rows(trainer, {"advantages": torch.ones(6)})
    assert dropped.tolist() == [False, False, True, True, True, True]  # rows 6-11


def test_a_reward_not_in_the_config_is_refused_before_any_model_loads():
    cfg = validate_dict(base_config(groups={"zero_variance": "drop", "reward": "acuracy"}))
    with pytest.raises(ConfigError, match="groups.reward: 'acuracy' is not a reward of this config; valid "
                                          "choices: accuracy, think_format or 'total'"):
        check_config(cfg, cuda=False)
    with pytest.raises(ConfigError, match="groups.zero_variance"):
        validate_dict(base_config(groups={"zero_variance": "resample"}))
    check_config(validate_dict(base_config(groups={"zero_variance": "drop", "reward": "total"})), cuda=False)


def run(tmp_path, mode):
    cfg = validate_dict(base_config(
        name=f"zv-{mode}", output_root=str(tmp_path),
        rewards=[{"name": "accuracy"}, {"name": "helpers:length_parity_reward", "weight": 0.5}],
        groups={"zero_variance": mode},
        logging={"report_to": []},
        grpo={"num_generations": 4, "per_device_train_batch_size": 8, "max_steps": 1, "save_steps": 1,
              "max_completion_length": 12, "learning_rate": 1e-3, "gradient_checkpointing": False},
    ))
    return train(cfg)


def test_dropped_groups_do_not_move_the_policy_although_another_reward_varies(tmp_path, tiny_model_dir):
    initial = load_file(tiny_model_dir / "model.safetensors")
    changed = {}
    for mode in ("drop", "keep"):
        run_dir = run(tmp_path, mode)
        row = next(r for r in read_metrics(run_dir / "metrics.jsonl") if "reward" in r)
        assert row["behaviour/zero_variance_groups"] == 1.0  # the random model never answers right
        assert row["rewards/length_parity_reward/std"] > 0  # ... but this reward varies
        after = load_file(run_dir / "checkpoints" / "checkpoint-1" / "model.safetensors")
        changed[mode] = any(not torch.equal(initial[k], after[k]) for k in initial)
        traces = [json.loads(line) for line in (run_dir / "traces" / "step-000001.jsonl").read_text().splitlines()]
        if mode == "drop":
            assert row["behaviour/groups_dropped"] == 1.0
            assert {t["advantage"] for t in traces} == {0.0}
        else:
            assert "behaviour/groups_dropped" not in row
            assert any(t["advantage"] != 0.0 for t in traces)
    assert changed == {"drop": False, "keep": True}
