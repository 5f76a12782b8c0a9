"""GSM8K from local fixture files (written here) and from a mocked hub; never the real hub."""

from __future__ import annotations

import json
from pathlib import Path

import datasets
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ahazero.tasks import TaskDataError, get_task
from ahazero.tasks.gsm8k import GSM8KTask, extract_gsm8k_answer


def raw(i: int, split: str) -> dict[str, str]:
    total = 1000 * i + 250
    return {
        "question": f"[{split} {i}] Ann has {i} boxes of 1,000 pens and 250 more pens. How many pens?",
        "answer": f"{i} * 1000 = <<{i}*1000={1000 * i}>>{1000 * i}\n"
        f"{1000 * i} + 250 = {total}\n#### {total:,}",
    }


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture
def gsm_dir(tmp_path: Path) -> Path:
    write_jsonl(tmp_path / "gsm8k" / "train.jsonl", [raw(i, "train") for i in range(20)])
    write_jsonl(tmp_path / "gsm8k" / "test.jsonl", [raw(i, "test") for i in range(6)])
    return tmp_path / "gsm8k"


@pytest.mark.parametrize(
    ("text", "gold"),
    [
        ("so 72\n#### 72", "72"),
        ("#### 1,250", "1250"),
        ("#### $1,250.", "1250"),
        ("#### -5", "-5"),
        ("x #### 3 #### 0.5", "0.5"),
        ("####  18 ", "18"),
        ("#### 1,000,000.", "1000000"),
    ],
)
def test_extract_gsm8k_answer(text, gold):
    assert extract_gsm8k_answer(text) == gold


@pytest.mark.parametrize("text", ["the answer is 5", "#### ", "####$."])
def test_extract_gsm8k_answer_rejects_missing_answers(text):
    with pytest.raises(ValueError, match="GSM8K answer"):
        extract_gsm8k_answer(text)


def test_loads_a_local_directory(gsm_dir):
    task = get_task("gsm8k", source=str(gsm_dir))
    train, test = task.load("train"), task.load("test")
    assert (len(train), len(test)) == (20, 6)
    assert train.column_names == ["id", "problem", "answer", "solution"]
    row = test[2]
    assert row == {
        "id": "gsm8k-test-00002",
        "problem": raw(2, "test")["question"],
        "answer": "2250",
        "solution": raw(2, "test")["answer"],
    }
    ids = [*train["id"], *test["id"]]
    assert len(set(ids)) == len(ids)
    assert not set(train["problem"]) & set(test["problem"])


def test_explicit_split_files_override_source(tmp_path, gsm_dir):
    records = [raw(i, "other") for i in range(3)]
    json_path = tmp_path / "other.json"
    json_path.write_text(json.dumps(records), encoding="utf-8")
    parquet_path = tmp_path / "other.parquet"
    pq.write_table(pa.Table.from_pylist(records), parquet_path)
    task = GSM8KTask(source=str(gsm_dir), test_file=str(json_path))
    assert list(task.load("test")["problem"]) == [r["question"] for r in records]
    assert len(task.load("train")) == 20  # still from the source directory
    only_files = GSM8KTask(source="/nonexistent", train_file=str(parquet_path), test_file=str(json_path))
    assert list(only_files.load("train")["answer"]) == ["250", "1250", "2250"]


def test_hub_snapshot_layout(tmp_path):
    snapshot = tmp_path / "snap"
    for split, n in (("train", 4), ("test", 2)):
        (snapshot / "main").mkdir(parents=True, exist_ok=True)
        table = pa.Table.from_pylist([raw(i, split) for i in range(n)])
        pq.write_table(table, snapshot / "main" / f"{split}-00000-of-00001.parquet")
    task = GSM8KTask(source=str(snapshot))
    assert (len(task.load("train")), len(task.load("test"))) == (4, 2)


def test_caps_take_a_seeded_subset(gsm_dir):
    a = GSM8KTask(source=str(gsm_dir), num_train=5, seed=1).load("train")
    b = GSM8KTask(source=str(gsm_dir), num_train=5, seed=1).load("train")
    c = GSM8KTask(source=str(gsm_dir), num_train=5, seed=2).load("train")
    assert len(a) == 5 and a.to_list() == b.to_list()
    assert list(a["id"]) != list(c["id"])
    assert list(a["id"]) == sorted(a["id"])  # source order is kept
    full = GSM8KTask(source=str(gsm_dir), num_test=100).load("test")
    assert len(full) == 6


def test_local_path_errors(tmp_path, gsm_dir):
    with pytest.raises(FileNotFoundError, match="source directory not found"):
        GSM8KTask(source=str(tmp_path / "missing")).load("train")
    with pytest.raises(ValueError, match="train_file"):
        GSM8KTask(source=str(gsm_dir / "train.jsonl")).load("train")
    with pytest.raises(FileNotFoundError, match="data file not found"):
        GSM8KTask(test_file=str(tmp_path / "nope.jsonl")).load("test")
    (tmp_path / "empty").mkdir()
    with pytest.raises(FileNotFoundError, match=r"no test data .*test\.jsonl"):
        GSM8KTask(source=str(tmp_path / "empty")).load("test")


def test_malformed_rows_are_reported(tmp_path):
    bad_column = write_jsonl(tmp_path / "a.jsonl", [{"q": "?", "answer": "#### 1"}])
    with pytest.raises(ValueError, match="missing column 'question'; the data has columns: q, answer"):
        GSM8KTask(train_file=str(bad_column)).load("train")
    no_marker = write_jsonl(tmp_path / "b.jsonl", [raw(0, "x"), {"question": "?", "answer": "5"}])
    with pytest.raises(ValueError, match=r"b\.jsonl: row 1: no '####'"):
        GSM8KTask(train_file=str(no_marker)).load("train")


@pytest.fixture
def hub_up(monkeypatch):
    """Pretend the hub answers (the tests never reach it: load_dataset is mocked too)."""
    import ahazero.tasks.bundled as bundled

    monkeypatch.setattr(bundled, "hub_reachable", lambda timeout=3.0: True)


def test_hub_loading_calls_load_dataset_with_config_and_split(monkeypatch, hub_up):
    calls = []

    def fake_load_dataset(*args, **kwargs):
        calls.append((args, kwargs))
        return datasets.Dataset.from_list([raw(i, kwargs["split"]) for i in range(3)])

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    train = GSM8KTask().load("train")
    assert calls == [(("openai/gsm8k", "main"), {"split": "train"})]
    assert list(train["answer"]) == ["250", "1250", "2250"]
    GSM8KTask(source="someone/gsm8k-mirror", hub_config="socratic").load("test")
    assert calls[-1] == (("someone/gsm8k-mirror", "socratic"), {"split": "test"})


def test_hub_failure_explains_the_local_alternative(monkeypatch):
    def unreachable(*args, **kwargs):
        raise ConnectionError("Couldn't reach 'someone/gsm8k-mirror' on the Hub")

    monkeypatch.setattr(datasets, "load_dataset", unreachable)
    with pytest.raises(TaskDataError) as info:
        GSM8KTask(source="someone/gsm8k-mirror").load("test")  # no bundled copy of a mirror
    message = str(info.value)
    assert "'someone/gsm8k-mirror'" in message and "Hugging Face Hub" in message
    assert "source='bundled'" in message
    assert "ConnectionError: Couldn't reach" in message
    assert "unreachable" in message and "source=" in message and "test_file=" in message
    assert isinstance(info.value, RuntimeError)


BAD_FILES = {
    "missing column": (b'{"q": "?", "answer": "#### 1"}\n', "missing column 'question'; the data has columns: q, answer"),
    "empty": (b"", r"test\.jsonl is empty; .*the task needs the columns question, answer"),
    "blank lines only": (b"\n\n  \n", r"test\.jsonl holds no rows"),
    "binary": (b"\x89PNG\r\n\x1a\n\x00\x00\xff\xfe", r"test\.jsonl: byte 0 is not UTF-8 text; .*binary"),
    "invalid json": (b'{"question": "?", "answer": "#### 1"}\n{"question": \n', r"test\.jsonl:2: invalid JSON line"),
}


@pytest.mark.parametrize("case", sorted(BAD_FILES))
@pytest.mark.parametrize("how", ["test_file", "source"])
def test_bad_data_files_get_one_clear_error_naming_the_file(tmp_path, case, how):
    from ahazero.tasks._checked_read import DataFileError

    content, message = BAD_FILES[case]
    (tmp_path / "test.jsonl").write_bytes(content)
    write_jsonl(tmp_path / "train.jsonl", [raw(0, "train")])
    task = GSM8KTask(test_file=str(tmp_path / "test.jsonl")) if how == "test_file" else GSM8KTask(source=str(tmp_path))
    with pytest.raises(DataFileError, match=message) as info:
        task.load("test")
    text = str(info.value)
    assert "\n" not in text and text.startswith("task 'gsm8k': ") and str(tmp_path / "test.jsonl") in text
    assert isinstance(info.value, ValueError) and isinstance(info.value, TaskDataError)


def test_binary_parquet_is_reported_naming_the_file(tmp_path):
    bad = tmp_path / "test.parquet"
    bad.write_bytes(b"PAR1 this is not parquet")
    with pytest.raises(ValueError, match=r"task 'gsm8k': .*test\.parquet.*not a parquet file"):
        GSM8KTask(test_file=str(bad)).load("test")
