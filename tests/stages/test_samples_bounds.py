"""Samples files read with bounded memory: long texts cut while reading (with a warning), bad files named by line."""

from __future__ import annotations

import json
import logging
import random

import pytest
from helpers import base_config

import ahazero.stages.samples_reader as reader
from ahazero.cli import main
from ahazero.stages.samples import SamplesError, read_samples
from ahazero.stages.samples_reader import Cut, read_records
from ahazero.stages.sft import load_sft_records, text_cap

RECORD = {"id": "p0", "problem": "Compute: 1 + 2", "prefill": "<think>\n",
          "completion": "1 + 2 = 3\n</think>\n<answer>3</answer>"}


def write_lines(path, *records):
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r, ensure_ascii=False)) + "\n" for r in records),
                    encoding="utf-8")
    return path


@pytest.mark.parametrize(("content", "message"), [
    (b"\x00\x01\x02binary\xff\n", ":1 holds NUL bytes: a binary file, not JSON lines"),
    (json.dumps(RECORD).encode() + b"\n\xff\xfe{\"id\": 1}\n", ":2 is not UTF-8 text (byte 0): a binary file"),
    (b"[1, 2, 3]\n", ":1 is not a JSON object"),
    (b'"just a string"\n', ":1 is not a JSON object"),
    (b"[" * 100_000 + b"]" * 100_000 + b"\n", ":1 is nested too deeply to read"),
])
def test_a_file_that_is_not_json_lines_is_named_with_its_line(tmp_path, content, message):
    path = tmp_path / "s.jsonl"
    path.write_bytes(content)
    with pytest.raises(SamplesError) as info:
        read_samples(path)
    assert str(info.value) == f"{path}{message}" or str(info.value).startswith(f"{path}{message}")


@pytest.mark.parametrize(("change", "message"), [
    ({"completion": 42}, "kept record 1 has no 'completion' text (it holds a int)"),
    ({"problem": 3.5}, "kept record 1 has no 'problem' text (it holds a float)"),
    ({"problem": None}, "kept record 1 has no 'problem' text"),
    ({"prefill": 7}, "kept record 1 has a 'prefill' that is not text (a int)"),
    ({"completion": ["a", "b"]}, "kept record 1 has no 'completion' text (it holds a list)"),
])
def test_a_number_where_text_belongs_is_an_error_not_a_traceback(tmp_path, change, message):
    path = write_lines(tmp_path / "s.jsonl", {**RECORD, **change})
    with pytest.raises(SamplesError) as info:
        load_sft_records(path)
    assert str(info.value) == f"{path}: {message}"


def test_the_sft_command_says_so_on_one_line(tmp_path, capsys):
    import yaml

    binary = tmp_path / "b.jsonl"
    binary.write_bytes(bytes(range(256)) * 4)
    numbers = write_lines(tmp_path / "n.jsonl", {**RECORD, "completion": 5})
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump(base_config(output_root=str(tmp_path / "runs"), logging={"report_to": []})))
    for data, message in ((binary, f"{binary}:1 holds NUL bytes"), (numbers, "has no 'completion' text")):
        assert main(["sft", str(config), f"sft.data={data}"]) == 2
        err = capsys.readouterr().err
        assert err.startswith("config error: sft.data: ") and message in err and err.count("\n") == 1
    assert not (tmp_path / "runs").exists()


def test_long_texts_are_cut_to_what_max_length_can_hold_with_a_warning(tmp_path, caplog):
    cap, _ = text_cap(8)
    long = {**RECORD, "completion": "x" * (cap + 100), "rewards": {"judge": "y" * (cap * 2)}}
    path = write_lines(tmp_path / "s.jsonl", RECORD, long, RECORD)
    with caplog.at_level(logging.WARNING, logger="ahazero.stages.samples"):
        records = load_sft_records(path, max_length=8)
    assert [len(r["completion"]) for r in records] == [len(RECORD["completion"]), cap, len(RECORD["completion"])]
    assert records[1]["rewards"]["judge"] == "y" * cap and records[1]["problem"] == RECORD["problem"]
    assert (f"s.jsonl:2: 'completion' ({cap + 100:,} characters), 'rewards' ({cap * 2:,} characters) cut to "
            f"{cap:,} characters (SFT reads at most sft.max_length=8 tokens)") in caplog.text
    assert text_cap(None)[0] == text_cap(10**9)[0] == 2**20  # never more than a hard cap


ALPHABET = ["a", " ", "é", "日本", "😀", "\n", '"', "\\", "\u2028", "\x01", "{", "}", "[", ",", ":"]


def random_text(rng, n):
    return "".join(rng.choice(ALPHABET) for _ in range(n))


@pytest.mark.parametrize("seed", range(8))
def test_a_line_longer_than_the_byte_cap_streams_and_keeps_a_prefix_of_each_text(tmp_path, monkeypatch, seed):
    """Tiny caps and chunks: escapes, surrogate pairs and UTF-8 characters split between chunks stay whole."""
    rng = random.Random(seed)
    monkeypatch.setattr(reader, "MAX_LINE_BYTES", 600)
    monkeypatch.setattr(reader, "CHUNK_BYTES", rng.choice([1, 2, 3, 7, 64]))
    limit = rng.choice([5, 16, 40])
    record = {"id": random_text(rng, 3), "problem": random_text(rng, 30), "n": 3, "kept": True,
              "completion": random_text(rng, 400), "rewards": {"accuracy": 1.0, "note": random_text(rng, 200)},
              "list": [random_text(rng, 50), 2.5, None, {"deep": random_text(rng, 60)}]}
    ascii_only = rng.random() < 0.5
    path = tmp_path / "s.jsonl"
    short = {"id": "q", "ok": True}
    path.write_text(json.dumps(record, ensure_ascii=ascii_only) + "\n" + json.dumps(short) + "\n", encoding="utf-8")
    (n1, got, cuts), (n2, second, none) = list(read_records(path, max_text_chars=limit))
    assert (n1, n2, second, none) == (1, 2, short, [])

    def check(original, kept):
        if isinstance(original, str):
            assert original.startswith(kept) and len(kept) <= limit
            assert kept == original or len(json.dumps(original, ensure_ascii=ascii_only).encode()) - 2 > limit
        elif isinstance(original, dict):
            assert original.keys() == kept.keys()
            for key in original:
                check(original[key], kept[key])
        elif isinstance(original, list):
            assert len(original) == len(kept)
            for a, b in zip(original, kept, strict=True):
                check(a, b)
        else:
            assert original == kept

    check(record, got)
    assert {c.field for c in cuts} <= {"id", "problem", "completion", "rewards", "list"}
    assert {c.unit for c in cuts} == {"bytes"} and "completion" in {c.field for c in cuts}


def test_a_line_whose_json_besides_its_texts_is_too_big_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(reader, "MAX_LINE_BYTES", 1000)
    monkeypatch.setattr(reader, "CHUNK_BYTES", 100)
    path = write_lines(tmp_path / "s.jsonl", {"id": "a", "numbers": list(range(2000))}, RECORD)
    with pytest.raises(SamplesError, match=r"s\.jsonl:1 holds more than 0\.000953674 MiB of JSON besides its texts"):
        read_samples(path)


def test_a_100_mb_completion_is_read_as_what_the_model_can_use(tmp_path, caplog):
    path = tmp_path / "s.jsonl"
    with path.open("w", encoding="utf-8") as fh:
        fh.write(json.dumps({**RECORD, "completion": "1 + 2 = 3. " * 10_000_000}) + "\n")
        fh.write(json.dumps(RECORD) + "\n")
    assert path.stat().st_size > 100 * 2**20
    with caplog.at_level(logging.WARNING, logger="ahazero.stages.samples"):
        records = load_sft_records(path, max_length=1024)
    assert [len(r["completion"]) for r in records] == [65536, len(RECORD["completion"])]
    assert "s.jsonl:1: 'completion' (110,000,000 bytes) cut to 65,536 characters" in caplog.text


def test_the_reader_on_its_own(tmp_path):
    path = write_lines(tmp_path / "s.jsonl", RECORD, "", "  ", {"id": "x" * 20})
    assert list(read_records(path, max_text_chars=15)) == [
        (1, RECORD | {"completion": RECORD["completion"][:15]}, [Cut("completion", len(RECORD["completion"]))]),
        (4, {"id": "x" * 15}, [Cut("id", 20)])]


def test_a_streamed_line_names_only_the_texts_it_cut(tmp_path, monkeypatch):
    monkeypatch.setattr(reader, "MAX_LINE_BYTES", 200)
    monkeypatch.setattr(reader, "CHUNK_BYTES", 16)
    record = {"id": "a", "rewards": {"accuracy": 1.0, "think_format": 0.5}, "completion": "z" * 500, "kept": True}
    path = write_lines(tmp_path / "s.jsonl", record)
    [(_, got, cuts)] = read_records(path, max_text_chars=50)
    assert got == {**record, "completion": "z" * 50}
    assert cuts == [Cut("completion", 500, "bytes")]
