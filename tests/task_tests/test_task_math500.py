"""MATH-500 from a local fixture file (written here) and a mocked hub: the seeded disjoint split."""

from __future__ import annotations

import json
from pathlib import Path

import datasets
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ahazero.tasks import TaskDataError, get_task
from ahazero.tasks.math500 import Math500Task, parse_level

SUBJECTS = ["Algebra", "Geometry", "Number Theory", "Precalculus"]


def record(i: int) -> dict:
    return {
        "problem": f"What is ${i}^2 + \\frac{{1}}{{2}}$?",
        "solution": f"${i}^2 = {i * i}$, so the answer is $\\boxed{{{i * i}\\frac{{1}}{{2}}}}$.",
        "answer": f"{i * i}\\frac{{1}}{{2}}",
        "subject": SUBJECTS[i % 4],
        "level": 1 + i % 5,
        "unique_id": f"test/{SUBJECTS[i % 4].lower()}/{100 + i}.json",
    }


@pytest.fixture
def math_file(tmp_path: Path) -> Path:
    path = tmp_path / "math500.jsonl"
    path.write_text("".join(json.dumps(record(i)) + "\n" for i in range(30)), encoding="utf-8")
    return path


def test_seeded_disjoint_split_covers_every_problem(math_file):
    task = get_task("math500", source=str(math_file), test_size=8)
    train, test = task.load("train"), task.load("test")
    assert (len(train), len(test)) == (22, 8)
    assert not set(train["problem"]) & set(test["problem"])
    assert {*train["id"], *test["id"]} == {record(i)["unique_id"] for i in range(30)}
    assert train.column_names == ["id", "problem", "answer", "solution", "subject", "level"]
    by_id = {r["unique_id"]: r for r in map(record, range(30))}
    for row in [*train, *test]:
        source = by_id[row["id"]]
        assert row == {
            "id": source["unique_id"],
            "problem": source["problem"],
            "answer": source["answer"],
            "solution": source["solution"],
            "subject": source["subject"],
            "level": source["level"],
        }


def test_split_is_deterministic_and_seed_dependent(math_file):
    a = Math500Task(source=str(math_file), test_size=8, seed=0).load("test")
    b = Math500Task(source=str(math_file), test_size=8, seed=0).load("test")
    c = Math500Task(source=str(math_file), test_size=8, seed=1).load("test")
    assert a.to_list() == b.to_list()
    assert set(a["id"]) != set(c["id"])


def test_caps_and_full_test_set(math_file):
    task = Math500Task(source=str(math_file), test_size=10, num_train=4, num_test=3)
    train, test = task.load("train"), task.load("test")
    assert (len(train), len(test)) == (4, 3)
    full = Math500Task(source=str(math_file), test_size=10).load("test")
    assert set(test["id"]) <= set(full["id"])
    everything = Math500Task(source=str(math_file), test_size=30)
    assert len(everything.load("test")) == 30
    with pytest.raises(TaskDataError, match=r"test_size=30 puts all 30 problems of .*math500\.jsonl in the test "
                                            r"split, so there is nothing to train on; lower test_size"):
        everything.load("train")


def test_identical_problems_stay_in_one_split(tmp_path):
    rows = [record(i) for i in range(10)]
    rows += [{**record(i), "unique_id": f"dup/{i}"} for i in range(3)]  # same text, other id
    path = tmp_path / "dups.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    for seed in range(5):
        task = Math500Task(source=str(path), test_size=4, seed=seed)
        train, test = task.load("train"), task.load("test")
        assert not set(train["problem"]) & set(test["problem"])
        assert len(train) + len(test) == 13


def test_directory_parquet_and_sparse_records(tmp_path):
    directory = tmp_path / "repo"
    directory.mkdir()
    (directory / "test.jsonl").write_text("".join(json.dumps(record(i)) + "\n" for i in range(5)))
    assert len(Math500Task(source=str(directory), test_size=2).load("train")) == 3
    sparse = [{"problem": f"p{i}", "answer": i, "level": f"Level {i}"} for i in range(1, 5)]
    pq.write_table(pa.Table.from_pylist(sparse), tmp_path / "sparse.parquet")
    rows = Math500Task(source=str(tmp_path / "sparse.parquet"), test_size=1).load("train")
    assert len(rows) == 3
    assert all(r["id"].startswith("math500-") and r["subject"] == "" and r["solution"] == "" for r in rows)
    assert sorted(rows["level"]) == sorted(int(a) for a in rows["answer"])


def test_errors(tmp_path, math_file):
    with pytest.raises(FileNotFoundError, match="source file not found"):
        Math500Task(source=str(tmp_path / "nope.jsonl")).load("test")
    with pytest.raises(ValueError, match="test_size=31 is more than the 30 distinct problems"):
        Math500Task(source=str(math_file), test_size=31).load("test")
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({"question": "?", "answer": "1"}) + "\n")
    with pytest.raises(ValueError, match="missing column 'problem'; the data has columns: question, answer"):
        Math500Task(source=str(bad), test_size=1).load("test")
    dup = tmp_path / "dup.jsonl"
    dup.write_text("".join(json.dumps({**record(i), "unique_id": "same"}) + "\n" for i in range(3)))
    with pytest.raises(ValueError, match="duplicate unique_id 'same'"):
        Math500Task(source=str(dup), test_size=1).load("test")


def test_hub_loading_uses_the_test_split(monkeypatch):
    import ahazero.tasks.bundled as bundled

    monkeypatch.setattr(bundled, "hub_reachable", lambda timeout=3.0: True)
    calls = []

    def fake_load_dataset(*args, **kwargs):
        calls.append((args, kwargs))
        return datasets.Dataset.from_list([record(i) for i in range(120)])

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    task = Math500Task()
    assert (len(task.load("train")), len(task.load("test"))) == (20, 100)
    assert calls == [(("HuggingFaceH4/MATH-500",), {"split": "test"})] * 2


def test_hub_failure_explains_the_local_alternative(monkeypatch):
    def unreachable(*args, **kwargs):
        raise OSError("network is unreachable")

    monkeypatch.setattr(datasets, "load_dataset", unreachable)
    with pytest.raises(TaskDataError) as info:
        Math500Task(source="someone/MATH-500-mirror").load("train")  # no bundled copy of a mirror
    message = str(info.value)
    assert "'someone/MATH-500-mirror'" in message and "OSError: network is unreachable" in message
    assert "source='/path/to/math500/test.jsonl'" in message


def test_parse_level():
    assert [parse_level(v) for v in (3, "4", "Level 2", None, "Level ?", True)] == [3, 4, 2, None, None, None]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", r"bad\.jsonl is empty; .*the task needs the columns problem, answer"),
        (b'{"problem": "1+1?"}\n', r"bad\.jsonl: missing column 'answer'; the data has columns: problem"),
        (b"\x00\x01\x02\xff\xfe binary", r"bad\.jsonl: byte \d+ is not UTF-8 text"),
        (b"[1, 2]", r"bad\.jsonl:1: expected a JSON object per line"),
    ],
)
def test_bad_data_files_get_one_clear_error_naming_the_file(tmp_path, content, message):
    from ahazero.tasks._checked_read import DataFileError

    bad = tmp_path / "bad.jsonl"
    bad.write_bytes(content)
    with pytest.raises(DataFileError, match=message) as info:
        Math500Task(source=str(bad), test_size=1).load("test")
    assert "\n" not in str(info.value) and str(info.value).startswith("task 'math500': ")
    (tmp_path / "dir").mkdir()
    (tmp_path / "dir" / "test.jsonl").write_bytes(content)
    with pytest.raises(DataFileError, match=r"dir/test\.jsonl"):
        Math500Task(source=str(tmp_path / "dir"), test_size=1).load("train")
