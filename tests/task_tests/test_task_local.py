"""The ``local`` task: user files in .jsonl/.json/.parquet, column mapping, splitting, errors."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ahazero.tasks import get_task
from ahazero.tasks._io import read_records
from ahazero.tasks.local_file import LocalFileTask, answer_text


def rows(n: int, start: int = 0) -> list[dict]:
    return [
        {
            "question": f"What is {i} times 3?",
            "value": 3 * i if i % 2 else float(3 * i),
            "hint": f"h{i}",
            "key": f"k{i}",
            "tags": [i, i + 1],
        }
        for i in range(start, start + n)
    ]


def write(path: Path, records: list[dict]) -> Path:
    if path.suffix == ".parquet":
        pq.write_table(pa.Table.from_pylist(records), path)
    elif path.suffix == ".json":
        path.write_text(json.dumps(records), encoding="utf-8")
    else:
        path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def mapped(path: Path, **options) -> LocalFileTask:
    return LocalFileTask(train_path=str(path), problem_column="question", answer_column="value", **options)


@pytest.mark.parametrize("suffix", [".jsonl", ".json", ".parquet"])
def test_reads_each_format_and_maps_columns(tmp_path, suffix):
    path = write(tmp_path / f"data{suffix}", rows(20))
    task = mapped(path, test_size=5, extra_columns=["hint", "tags"])
    assert task.columns == ("id", "problem", "answer", "hint", "tags")
    train, test = task.load("train"), task.load("test")
    assert (len(train), len(test)) == (15, 5)
    for row in [*train, *test]:
        i = int(row["id"].removeprefix("local-"))
        assert row["problem"] == f"What is {i} times 3?"
        assert row["answer"] == str(3 * i)  # ints and integral floats both become "3i"
        assert row["hint"] == f"h{i}" and row["tags"] == [i, i + 1]
    assert train.column_names == list(task.columns)


def test_class_columns_are_the_base_columns():
    assert LocalFileTask.columns == ("id", "problem", "answer")
    assert get_task("local", train_path="x.jsonl").columns == ("id", "problem", "answer")


def test_auto_split_is_seeded_disjoint_and_complete(tmp_path):
    records = rows(40) + [{**r, "hint": "dup"} for r in rows(5)]  # 5 repeated problems
    path = write(tmp_path / "d.jsonl", records)
    a = mapped(path, test_size=0.25, seed=3)
    b = mapped(path, test_size=0.25, seed=3)
    c = mapped(path, test_size=0.25, seed=4)
    train, test = a.load("train"), a.load("test")
    assert len({*test["problem"]}) == 10  # 25% of the 40 distinct problems
    assert not set(train["problem"]) & set(test["problem"])
    assert len(train) + len(test) == 45
    assert sorted([*train["id"], *test["id"]]) == sorted(f"local-{i}" for i in range(45))
    assert a.load("test").to_list() == b.load("test").to_list()
    assert set(c.load("test")["id"]) != set(test["id"])


def test_default_test_size_is_a_tenth(tmp_path):
    task = get_task(
        "local",
        train_path=str(
            write(tmp_path / "d.jsonl", [{"problem": f"p{i}", "answer": str(i)} for i in range(50)])
        ),
    )
    assert (len(task.load("train")), len(task.load("test"))) == (45, 5)


def test_two_files_and_id_column(tmp_path):
    train_path = write(tmp_path / "train.jsonl", rows(6))
    test_path = write(tmp_path / "test.parquet", rows(3, start=100))
    task = mapped(train_path, test_path=str(test_path))
    assert list(task.load("train")["id"]) == [f"local-train-{i}" for i in range(6)]
    assert list(task.load("test")["id"]) == [f"local-test-{i}" for i in range(3)]
    keyed = mapped(train_path, test_path=str(test_path), id_column="key")
    assert list(keyed.load("test")["id"]) == ["k100", "k101", "k102"]


def test_caps_and_empty_splits(tmp_path):
    path = write(tmp_path / "d.jsonl", rows(30))
    task = mapped(path, test_size=10, num_train=7, num_test=0, extra_columns=["hint"])
    train, test = task.load("train"), task.load("test")
    assert len(train) == 7 and set(train["id"]) <= set(mapped(path, test_size=10).load("train")["id"])
    assert len(test) == 0 and test.column_names == ["id", "problem", "answer", "hint"]


def test_json_variants(tmp_path):
    data = {"data": [{"problem": "a?", "answer": 1}, {"problem": "b?", "answer": 2}]}
    (tmp_path / "wrapped.json").write_text(json.dumps(data))
    columnar = {"problem": ["a?", "b?", "c?"], "answer": ["x", "y", "z"]}
    (tmp_path / "columnar.json").write_text(json.dumps(columnar))
    (tmp_path / "lines.json").write_text('{"problem": "a?", "answer": 1}\n{"problem": "b?", "answer": 2}\n')
    for name, n in (("wrapped.json", 2), ("columnar.json", 3), ("lines.json", 2)):
        task = LocalFileTask(train_path=str(tmp_path / name), test_size=1)
        assert len(task.load("train")) + len(task.load("test")) == n


def test_missing_column_names_it_and_lists_the_file_columns(tmp_path):
    path = write(tmp_path / "d.jsonl", rows(5))
    with pytest.raises(ValueError) as info:
        LocalFileTask(train_path=str(path), test_size=1).load("train")
    assert "missing column 'problem'" in str(info.value)
    assert "question, value, hint, key, tags" in str(info.value)
    with pytest.raises(ValueError, match="missing column 'nothere'"):
        mapped(path, test_size=1, extra_columns=["nothere"]).load("test")


def test_bad_data_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="data file not found"):
        LocalFileTask(train_path=str(tmp_path / "none.jsonl")).load("train")
    csv = tmp_path / "d.csv"
    csv.write_text("problem,answer\n1+1,2\n")
    with pytest.raises(ValueError, match="unsupported file type '.csv'"):
        LocalFileTask(train_path=str(csv)).load("train")
    empty_problem = write(
        tmp_path / "e.jsonl", [{"problem": " ", "answer": 1}, {"problem": "q", "answer": 2}]
    )
    with pytest.raises(ValueError, match="row 0: 'problem' must be a non-empty string"):
        LocalFileTask(train_path=str(empty_problem), test_path=str(empty_problem)).load("train")
    no_answer = write(tmp_path / "n.jsonl", [{"problem": "q", "answer": None}])
    with pytest.raises(ValueError, match="'answer' is empty"):
        LocalFileTask(train_path=str(no_answer), test_path=str(no_answer)).load("test")
    dup_ids = write(
        tmp_path / "dup.jsonl", [{"problem": f"q{i}", "answer": 1, "key": "same"} for i in range(3)]
    )
    with pytest.raises(ValueError, match="duplicate ids"):
        LocalFileTask(train_path=str(dup_ids), test_path=str(dup_ids), id_column="key").load("train")
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"problem": "q", "answer": 1}\n{not json\n')
    with pytest.raises(ValueError, match=r"broken\.jsonl:2: invalid JSON line"):
        LocalFileTask(train_path=str(broken)).load("train")
    few = write(tmp_path / "few.jsonl", rows(3))
    with pytest.raises(ValueError, match="test_size=5 is more than the 3 distinct problems"):
        mapped(few, test_size=5).load("test")


@pytest.mark.parametrize(
    ("options", "fragment"),
    [
        ({"test_size": True}, "option 'test_size': must be an int"),
        ({"test_size": 1.5}, "option 'test_size': a fraction must be in (0, 1)"),
        ({"test_size": 0}, "option 'test_size': a count must be >= 1"),
        ({"extra_columns": ["answer"]}, "option 'extra_columns': 'answer' is a column every task provides"),
        ({"extra_columns": ["a", "a"]}, "extra_columns has duplicates"),
        ({"test_path": "t.jsonl", "test_size": 3}, "test_size only applies without test_path"),
        ({"problem_col": "q"}, "unknown option 'problem_col'; valid options: "),
    ],
)
def test_option_validation(options, fragment):
    with pytest.raises(ValueError) as info:
        get_task("local", train_path="d.jsonl", **options)
    assert fragment in str(info.value)
    assert str(info.value).startswith("task 'local': ")


def test_answer_text():
    assert [answer_text(v) for v in (7, 7.0, -0.5, " 3/4\n", "\\frac{1}{2}")] == [
        "7",
        "7",
        "-0.5",
        "3/4",
        "\\frac{1}{2}",
    ]


# Files that are not data: a clear error naming the file and what was expected, never a hang or a traceback.

def not_data(tmp_path: Path, kind: str) -> Path:
    if kind == "dev-zero":
        return Path("/dev/zero")
    path = tmp_path / {"fifo": "fifo.jsonl", "folder": "dir.jsonl", "empty": "empty.jsonl",
                       "blank-lines": "blank.jsonl", "random-bytes": "random.jsonl", "fake-parquet": "fake.parquet",
                       "empty-list": "empty.json", "deep": "deep.json"}[kind]
    if kind == "fifo":
        os.mkfifo(path)  # opening it for reading would block until a writer comes
    elif kind == "folder":
        path.mkdir()
    elif kind == "empty":
        path.write_bytes(b"")
    elif kind == "blank-lines":
        path.write_text("\n  \n\n")
    elif kind == "empty-list":
        path.write_text("[]")
    elif kind == "deep":
        path.write_text("[" * 100_000 + "]" * 100_000)
    else:
        path.write_bytes(bytes((i * 167 + 13) % 256 for i in range(4096)))
    return path


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("dev-zero", "/dev/zero is a character device, not a data file; expected a .jsonl, .json or .parquet file "
                     "of rows"),
        ("fifo", "{path} is a named pipe (FIFO), not a data file"),
        ("folder", "{path} is a folder, not a data file"),
        ("empty", "{path} is empty; expected a .jsonl, .json or .parquet file of rows"),
        ("blank-lines", "{path} holds no rows; expected a .jsonl, .json or .parquet file of rows"),
        ("empty-list", "{path} holds no rows"),
        ("random-bytes", "{path}: byte 1 is not UTF-8 text; expected JSON text"),
        ("fake-parquet", "{path}: not a readable Parquet file (Parquet magic bytes not found"),
        ("deep", "{path}: JSON nested too deeply"),
    ],
)
def test_files_that_are_not_data(tmp_path, kind, message):
    path = not_data(tmp_path, kind)
    with pytest.raises(ValueError) as info:
        read_records(path)
    assert str(info.value).startswith(message.format(path=path))
    with pytest.raises(ValueError) as info:  # the same through the task, at load time
        LocalFileTask(train_path=str(path), test_path=str(path)).load("train")
    assert str(info.value).startswith(message.format(path=path))


def test_check_data_reads_only_the_head_and_names_missing_columns(tmp_path):
    data = tmp_path / "qa.jsonl"
    data.write_text('{"question": "1+1", "value": 2}\n{"broken\n')  # the second line is read at load time
    task = mapped(data, test_size=1)
    task.check_data()
    with pytest.raises(ValueError, match=r"qa.jsonl:2: invalid JSON line"):
        task.load("train")
    with pytest.raises(ValueError, match=r"^train_path: .*qa.jsonl: missing column\(s\) 'problem', 'answer'; the data "
                                         r"has columns: question, value$"):
        LocalFileTask(train_path=str(data)).check_data()
    keyed = write(tmp_path / "train.parquet", rows(3))
    unkeyed = write(tmp_path / "test.parquet", [{"question": "q", "value": 1}])
    with pytest.raises(ValueError, match=r"^test_path: .*test.parquet: missing column\(s\) 'key'; the data has "
                                         r"columns: question, value$"):
        mapped(keyed, test_path=str(unkeyed), id_column="key").check_data()


def test_json_files_are_read_up_to_a_cap(tmp_path, monkeypatch):
    from ahazero.tasks import _io

    path = write(tmp_path / "d.jsonl", rows(50))
    monkeypatch.setattr(_io, "MAX_JSON_BYTES", 1000)
    with pytest.raises(ValueError, match=r"d.jsonl is \d+ bytes, more than the 1000 read from a JSON file; convert it "
                                         r"to .parquet"):
        read_records(path)
    assert len(read_records(write(tmp_path / "d.parquet", rows(50)))) == 50  # Parquet has no cap


def test_a_raw_line_separator_inside_a_string_is_not_a_line_break(tmp_path):
    path = tmp_path / "u.jsonl"
    path.write_text(json.dumps({"problem": "a\u2028b", "answer": 1}, ensure_ascii=False) + "\r\n", encoding="utf-8")
    assert read_records(path) == [{"problem": "a\u2028b", "answer": 1}]
