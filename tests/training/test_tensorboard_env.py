"""Each run's TensorBoard events go to its own folder, also when one process trains twice."""

from __future__ import annotations

import os

from helpers import base_config

from ahazero.config.schema import validate_dict
from ahazero.training.tensorboard_env import VARIABLE, tensorboard_dir


def test_set_for_the_run_only_and_a_users_folder_wins(tmp_path, monkeypatch):
    monkeypatch.delenv(VARIABLE, raising=False)
    with tensorboard_dir(tmp_path / "a"):
        assert os.environ[VARIABLE] == str(tmp_path / "a")
    assert VARIABLE not in os.environ
    monkeypatch.setenv(VARIABLE, "mine")
    with tensorboard_dir(tmp_path / "b"):
        assert os.environ[VARIABLE] == "mine"
    assert os.environ[VARIABLE] == "mine"


def test_two_runs_in_one_process_each_log_into_their_own_folder(tmp_path, tiny_model_dir, monkeypatch):
    from ahazero.training.assemble import train

    monkeypatch.delenv(VARIABLE, raising=False)
    for name in ("first", "second"):
        cfg = validate_dict(base_config(
            name=name, output_root=str(tmp_path), logging={"report_to": ["tensorboard"]},
            grpo={"num_generations": 4, "per_device_train_batch_size": 8, "max_steps": 1, "save_steps": 10,
                  "max_completion_length": 8},
        ))
        train(cfg)
    for name in ("first", "second"):
        assert list((tmp_path / name / "tensorboard").rglob("events.out.tfevents.*")), name
    assert VARIABLE not in os.environ
