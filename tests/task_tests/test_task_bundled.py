"""The bundled GSM8K and MATH-500 copies: pinned, complete, packaged, and used when the hub is not there."""

from __future__ import annotations

import gzip
import hashlib
import logging
import re
import tomllib
from pathlib import Path

import datasets
import pytest
from helpers import REPO

import ahazero.tasks.bundled as bundled
from ahazero.tasks import TaskDataError, get_task
from ahazero.tasks.bundled import BUNDLED, bundled_path, read_bundled

DATA = REPO / "src" / "ahazero" / "tasks" / "data"


@pytest.mark.parametrize("key", sorted(BUNDLED))
def test_each_bundled_file_is_the_pinned_upstream_file(key):
    entry = BUNDLED[key]
    raw = gzip.decompress(bundled_path(*key).read_bytes())
    assert hashlib.sha256(raw).hexdigest() == entry.sha256
    assert raw.count(b"\n") == entry.rows and raw.endswith(b"\n")
    # the pins in the data folder's README are the same as the code's
    assert f"`{entry.sha256}`" in (DATA / "README.md").read_text(encoding="utf-8")


def test_bundled_data_is_small_licensed_and_in_the_package_data():
    sizes = {p.name: p.stat().st_size for p in DATA.glob("*.jsonl.gz")}
    assert set(sizes) == {e.filename for e in BUNDLED.values()}
    assert sum(sizes.values()) < 2_000_000
    for name in ("LICENSE-gsm8k", "LICENSE-math500"):
        text = (DATA / name).read_text(encoding="utf-8")
        assert text.startswith("MIT License") and "OpenAI" in text
    globs = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["ahazero"]
    packaged = {p.name for g in globs for p in (REPO / "src" / "ahazero").glob(g)}
    assert {*sizes, "LICENSE-gsm8k", "LICENSE-math500", "README.md"} <= packaged


def test_rows_parse_into_tasks_with_every_gold_answer():
    train, test = (get_task("gsm8k", source="bundled").load(s) for s in ("train", "test"))
    assert (len(train), len(test)) == (7473, 1319)
    assert test[0]["problem"].startswith("Janet’s ducks lay 16 eggs per day") and test[0]["answer"] == "18"
    assert all(re.fullmatch(r"-?\d+(\.\d+)?", a) for a in [*train["answer"], *test["answer"]])
    math = get_task("math500", source="bundled", test_size=500).load("test")
    assert len(math) == 500 and len(set(math["id"])) == 500
    assert all(a.strip() for a in math["answer"])
    assert sorted(set(math["level"])) == [1, 2, 3, 4, 5]


def test_without_the_hub_the_default_source_uses_the_bundled_copy_and_says_so(monkeypatch, caplog):
    def no_hub_calls(*args, **kwargs):
        raise AssertionError("load_dataset must not be called when the hub is unreachable")

    monkeypatch.setattr(datasets, "load_dataset", no_hub_calls)
    monkeypatch.setattr(bundled, "hub_reachable", lambda timeout=3.0: False)
    with caplog.at_level(logging.INFO, logger="ahazero.tasks"):
        test = get_task("gsm8k", num_test=5).load("test")
        math = get_task("math500").load("test")
    assert len(test) == 5 and len(math) == 100
    assert "Hub is not reachable; using the bundled copy of openai/gsm8k (gsm8k-test.jsonl.gz)" in caplog.text
    assert "using the bundled copy of HuggingFaceH4/MATH-500" in caplog.text
    assert "5 test rows from bundled copy" in caplog.text


def test_with_the_hub_the_default_source_loads_from_it(monkeypatch):
    calls = []

    def fake_load_dataset(*args, **kwargs):
        calls.append(args)
        return datasets.Dataset.from_list([{"question": "hub?", "answer": "#### 7"}])

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    monkeypatch.setattr(bundled, "hub_reachable", lambda timeout=3.0: True)
    rows = get_task("gsm8k").load("test")
    assert calls == [("openai/gsm8k", "main")] and rows["problem"] == ["hub?"]


def test_a_hub_that_fails_falls_back_with_a_warning(monkeypatch, caplog):
    def broken(*args, **kwargs):
        raise ConnectionError("read timed out")

    monkeypatch.setattr(datasets, "load_dataset", broken)
    monkeypatch.setattr(bundled, "hub_reachable", lambda timeout=3.0: True)
    with caplog.at_level(logging.WARNING, logger="ahazero.tasks"):
        rows = get_task("gsm8k", num_test=3).load("test")
    assert len(rows) == 3
    assert "the hub failed to serve openai/gsm8k, split test (ConnectionError: read timed out); using the " \
           "bundled copy gsm8k-test.jsonl.gz" in caplog.text


def test_other_hub_configs_have_no_bundled_copy(monkeypatch):
    monkeypatch.setattr(datasets, "load_dataset", lambda *a, **k: (_ for _ in ()).throw(OSError("offline")))
    monkeypatch.setattr(bundled, "hub_reachable", lambda timeout=3.0: False)
    with pytest.raises(TaskDataError, match="'openai/gsm8k', config 'socratic'"):
        get_task("gsm8k", hub_config="socratic").load("test")


def test_a_damaged_bundled_copy_is_refused_naming_the_file(monkeypatch, tmp_path):
    fake = tmp_path / "gsm8k-test.jsonl.gz"
    fake.write_bytes(gzip.compress(b'{"question": "edited", "answer": "#### 1"}\n'))
    monkeypatch.setattr(bundled, "bundled_path", lambda dataset, split: fake)
    with pytest.raises(TaskDataError, match=r"gsm8k-test\.jsonl\.gz does not match its pinned sha256"):
        read_bundled("gsm8k", "test")
    fake.write_bytes(b"not gzip at all")
    with pytest.raises(TaskDataError, match=r"gsm8k-test\.jsonl\.gz is not readable gzip"):
        get_task("gsm8k", source="bundled").load("test")
    with pytest.raises(ValueError, match="no bundled data for gsm8k/validation; bundled: gsm8k/test"):
        read_bundled("gsm8k", "validation")


def test_bundled_path_points_into_the_installed_package():
    path = bundled_path("gsm8k", "train")
    assert path.is_file() and path.parent.name == "data" and Path(bundled.__file__).parent == path.parent.parent
