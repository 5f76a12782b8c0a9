"""The tables the CLI prints stay readable at 80 columns: every number whole (never cut or wrapped), no line
wider than the terminal; on a narrower one, optional columns go first and the table says so."""

from __future__ import annotations

import argparse
import io
import re

from helpers import trace_record
from rich.console import Console

from ahazero.experiments.calibrate import render_summary as calibration_summary
from ahazero.experiments.summary import render_table
from ahazero.observe.terminal import Column, FittedTable
from ahazero.observe.traces_cli import add_parser
from ahazero.observe.traces_view import render_summary
from ahazero.observe.tracing import TraceWriter


def draw(renderable, width: int = 80) -> str:
    console = Console(record=True, width=width, file=io.StringIO(), color_system=None)
    console.print(renderable)
    return console.export_text()


def whole(cell: str, text: str) -> bool:
    """``cell`` appears in ``text`` and is not a piece of a longer number or word (not cut, not wrapped)."""
    return re.search(rf"(?<![\w.%]){re.escape(cell)}(?![\w%]|\.\d)", text) is not None


def assert_fits_with_every_number_whole(table: FittedTable, width: int = 80) -> str:
    text = draw(table, width)
    assert max(len(line) for line in text.splitlines()) <= width and "…" not in text
    for row in table.rows:
        for i in table.widths(width):
            cell = row[i].plain if hasattr(row[i], "plain") else str(row[i])
            if not table.columns[i].wraps:
                assert whole(cell, text), (cell, text)
    return text


def big_step(step: int) -> dict:
    return {"step": step, "n": 1024, "reward": -1.234, "behaviour/accuracy": 1.0, "behaviour/format_rate": 0.999,
            "behaviour/think_tokens_mean": 1234.5, "behaviour/think_tokens_p10": 123, "behaviour/think_tokens_p90": 2048,
            "behaviour/reflection_rate": 1.0, "behaviour/reflection_rate_drgrpo": 0.125,
            "behaviour/truncation_rate": 1.0, "behaviour/language_consistency": 0.987}


def test_the_traces_summary_fits_80_columns_with_every_column_and_number():
    rows = [big_step(s) for s in (1, 250, 9999)]
    table = render_summary(rows, matching={1: 1024, 250: 7, 9999: 512}, title="default-cpu: steps 1–9999")
    text = assert_fits_with_every_number_whole(table)
    assert len(table.widths(80)) == 12 and "left out" not in text  # all columns, filters' count included
    for cell in ("1024", "-1.23", "100.0%", "99.9%", "1234.5", "123–2048", "12.5%", "0.987", "9999"):
        assert whole(cell, text), cell
    assert "acc: accuracy" in " ".join(text.split())  # the short headers are spelled out


def test_a_narrow_terminal_leaves_optional_columns_out_and_says_which():
    table = render_summary([big_step(1)], matching={1: 3})
    text = assert_fits_with_every_number_whole(table, width=60)
    assert "p10–p90, refl DrGRPO, lang left out at this width" in " ".join(text.split())
    assert not whole("123–2048", text) and whole("1234.5", text)


def test_too_narrow_for_the_columns_each_row_becomes_a_paragraph():
    table = FittedTable([Column("variant", justify="left", wraps=True), Column("pass@1 base → trained")],
                        [["lr=1e-05", "28.5% → 51.0%"]])
    text = draw(table, width=12)
    assert table.fits(80) and not table.fits(12)
    for word in ("variant", "lr=1e-05", "28.5%", "51.0%"):
        assert whole(word, text)


def test_the_traces_command_at_80_columns(tmp_path):
    run = tmp_path / "demo"
    writer = TraceWriter(run / "traces")
    for step in (1, 2):
        writer.write(step, [trace_record(step, "alpha", "2+2 is 5? Wait, 2+2=4</think><answer>4</answer>",
                                         correct=True, reward=1.5, advantage=0.25),
                            trace_record(step, "beta", "long " * 60, correct=False, reward=-0.125, truncated=True,
                                         advantage=-0.5)])
    parser = argparse.ArgumentParser()
    add_parser(parser.add_subparsers())
    for argv in ([], ["--step", "2"], ["--compare", "beta"], ["--wrong", "--steps", "1:2"]):
        console = Console(record=True, width=80, file=io.StringIO(), color_system=None)
        args = parser.parse_args(["traces", str(run), *argv])
        assert args.func(args, console=console) == 0
        text = console.export_text()
        assert max(len(line) for line in text.splitlines()) <= 80 and "…" not in text, argv
        if argv:  # the completions' numbers, in the text of each panel (titles are cut where panels are narrow)
            assert whole("-0.12", text) and whole("-0.50)", text), argv


def test_the_sweep_summary_table_at_80_columns():
    rows = [{"variant": label, "status": status, "steps": 300, "train_seconds": 898.7, "pass1_base": 0.285,
             "pass1_final": 0.513, "format_final": 0.97, "think_closed_growth": 1.62,
             "reflection_r1": {"first_step": 0.185, "end": 0.4}, "target": {"met": met}}
            for label, status, met in (("lr=1e-05,beta=0.04", "finished", True), ("seed-3", "failed (exit 1)", None))]
    table = render_table(rows)
    text = assert_fits_with_every_number_whole(table)
    assert whole("28.5% → 51.3%", text) and whole("18.5% → 40.0%", text) and whole("300", text)


def test_the_calibration_summary_at_80_columns_only_moves_line_breaks():
    summary = {"file": "calibration/aha-multiplication.jsonl", "model": "qwen2.5-coder-0.5b-instruct",
               "task": {"name": "multiplication"}, "k": 8, "band": [0.1, 0.7], "n": 4000, "kept": 1234,
               "below": 2345, "above": 421, "mean_pass_rate": 0.1734, "histogram": {f"{i}/8": 100 * i for i in range(9)},
               "sampling": {"temperature": 1.0, "max_new_tokens": 256}, "truncation_rate": 0.0125,
               "backend": "graph", "seconds": 412.3, "use": "task.calibration=calibration/aha-multiplication.jsonl"}
    markdown = calibration_summary(summary)
    console = Console(record=True, width=80, file=io.StringIO(), markup=False, highlight=False)
    console.print(markdown)
    text = console.export_text()
    assert max(len(line) for line in text.splitlines()) <= 80
    assert " ".join(text.split()) == " ".join(markdown.split())  # nothing cut: words wrapped whole
    for number in ("1234", "2345", "4000", "17.3%", "1.2%", "412"):
        assert whole(number, text), number
