"""task.calibration + task.pass_rate_band: the train split keeps the problems in the band, nothing else changes."""

from __future__ import annotations

import logging

import pytest
from helpers import base_config

from ahazero.config.schema import ConfigError, validate_dict
from ahazero.config.validate import check_config
from ahazero.tasks import get_task
from ahazero.tasks.calibration import BandCounts, write_calibration

OPTIONS = {"num_train": 40, "num_test": 10, "seed": 3}


def calibrate_by_hand(path, ids, correct_of_8):
    write_calibration(path, [{"id": i, "correct": c, "k": 8} for i, c in zip(ids, correct_of_8)])


def test_the_band_keeps_only_problems_the_base_model_sometimes_solves(tmp_path):
    plain = get_task("arithmetic", **OPTIONS)
    ids = plain.load("train")["id"]
    path = tmp_path / "calibration.jsonl"
    calibrate_by_hand(path, ids, [i % 9 for i in range(len(ids))])  # 0/8 .. 8/8 in turn
    task = get_task("arithmetic", calibration=str(path), pass_rate_band=[0.1, 0.7], **OPTIONS)
    kept = task.load("train")
    rates = {i: (n % 9) / 8 for n, i in enumerate(ids)}
    assert kept["id"] == [i for i in ids if 0.1 <= rates[i] <= 0.7]  # 1/8 .. 5/8, in the original order
    assert task.load("test").to_list() == plain.load("test").to_list()  # held-out problems never filtered
    counts = task.calibration_counts()
    assert counts == BandCounts(total=40, kept=len(kept), below=5, above=12, missing=0)
    edges = get_task("arithmetic", calibration=str(path), pass_rate_band=[0.125, 0.125], **OPTIONS)
    assert len(edges.load("train")) == sum(1 for r in rates.values() if r == 0.125)  # inclusive band


def test_problems_missing_from_the_file_are_dropped_with_a_warning(tmp_path, caplog):
    ids = get_task("arithmetic", **OPTIONS).load("train")["id"]
    path = tmp_path / "c.jsonl"
    calibrate_by_hand(path, ids[:10], [4] * 10)  # calibrated with --limit 10
    task = get_task("arithmetic", calibration=str(path), **OPTIONS)
    with caplog.at_level(logging.WARNING, logger="ahazero.tasks"):
        assert len(task.load("train")) == 10
    assert "30 of 40 train problems are not in" in caplog.text
    assert task.calibration_counts().missing == 30


def test_careless_use_gets_one_clear_error(tmp_path):
    with pytest.raises(ValueError, match="calibration file .*nope.jsonl not found; write it with `ahazero calibrate"):
        get_task("arithmetic", calibration=str(tmp_path / "nope.jsonl"))
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "a", "pass_rate": 0.5}\n{"id": "b", "pass_rate": 3}\n')
    with pytest.raises(ValueError, match="bad.jsonl, line 2: needs 'id' and a 'pass_rate' in \\[0, 1\\]"):
        get_task("arithmetic", calibration=str(bad))
    with pytest.raises(ValueError, match="pass_rate_band must be \\[low, high\\]"):
        get_task("arithmetic", pass_rate_band=[0.7, 0.1])
    other = tmp_path / "other.jsonl"
    calibrate_by_hand(other, ["chain-123"], [3])  # written for another task
    with pytest.raises(ValueError, match="holds none of the 40 train problems"):
        get_task("arithmetic", calibration=str(other), **OPTIONS).load("train")
    ids = get_task("arithmetic", **OPTIONS).load("train")["id"]
    solved = tmp_path / "solved.jsonl"
    calibrate_by_hand(solved, ids, [8] * len(ids))
    with pytest.raises(ValueError, match="leaves no train problem: kept 0 of 40 .* 40 above"):
        get_task("arithmetic", calibration=str(solved), **OPTIONS).load("train")


def test_a_band_without_a_file_is_reported_not_ignored(caplog):
    with caplog.at_level(logging.WARNING, logger="ahazero.tasks"):
        get_task("arithmetic", pass_rate_band=[0.2, 0.6])
    assert "pass_rate_band has no effect without the 'calibration' option" in caplog.text


def test_a_missing_file_fails_the_config_check_before_any_model_loads(tmp_path):
    cfg = validate_dict(base_config(output_root=str(tmp_path),
                                    task={"name": "arithmetic", "calibration": str(tmp_path / "none.jsonl")}))
    with pytest.raises(ConfigError, match="^task: .*calibration file .*none.jsonl not found"):
        check_config(cfg, cuda=False)
