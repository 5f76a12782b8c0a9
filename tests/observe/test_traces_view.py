"""`ahazero traces`: the rich viewer, rendered into a recording console and read back as text."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest
from helpers import trace_record
from rich.console import Console

from ahazero.observe.trace_select import compare_groups, completion_spans, parse_steps, select_steps
from ahazero.observe.traces_cli import add_parser, run_traces
from ahazero.observe.traces_view import STYLES, highlight_completion
from ahazero.observe.tracing import TraceWriter


def _record(step: int, pid: str, text: str, *, correct: bool, reward: float, truncated: bool = False) -> dict:
    return trace_record(step, pid, text, correct=correct, reward=reward, truncated=truncated, advantage=0.25)


@pytest.fixture
def run(tmp_path: Path) -> Path:
    """Three steps; prompt 'alpha' is traced at steps 1 and 3 (early: no reflection, late: reflects)."""
    root = tmp_path / "demo"
    w = TraceWriter(root / "traces")
    w.write(1, [
        _record(1, "alpha", "2+2 is 5</think><answer>5</answer>", correct=False, reward=0.5),
        _record(1, "beta", "easy sum 4</think><answer>4</answer>", correct=True, reward=1.5),
    ])
    w.write(2, [
        _record(2, "gamma", "long " * 40 + "ramble", correct=False, reward=0.0, truncated=True),
        _record(2, "delta", "4 but wait let me check ok 4</think><answer>4</answer>", correct=True, reward=1.5),
    ])
    w.write(3, [
        _record(3, "alpha", "2+2 is 5? Wait, that is wrong. 2+2=4</think><answer>4</answer>", correct=True,
                reward=1.5),
        _record(3, "epsilon", "sum 4</think><answer>4</answer>", correct=True, reward=1.5),
    ])
    return root


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ahazero")
    sub = parser.add_subparsers(dest="command", required=True)
    add_parser(sub)
    return parser


def view(*argv: str) -> tuple[int, str]:
    """Run `ahazero traces ARGV` the way the CLI will, and return (exit code, rendered text)."""
    args = _parser().parse_args(["traces", *argv])
    console = Console(record=True, width=160, force_terminal=False, color_system=None)
    code = args.func(args, console=console)
    return code, console.export_text()


def test_parser_wires_run_traces():
    args = _parser().parse_args(["traces", "r", "--steps", "1:5", "--correct", "--reflective", "--sort", "length"])
    assert args.func is run_traces
    assert (args.steps, args.correct, args.reflective, args.sort, args.truncated) == ("1:5", True, True, "length", None)
    with pytest.raises(SystemExit):  # --correct and --wrong exclude each other
        _parser().parse_args(["traces", "r", "--correct", "--wrong"])
    with pytest.raises(SystemExit):
        _parser().parse_args(["traces", "r", "--step", "1", "--last"])


def test_step_selection_helpers():
    assert parse_steps("3:7") == (3, 7) and parse_steps(":2") == (None, 2) and parse_steps("9") == (9, 9)
    with pytest.raises(ValueError):
        parse_steps("a:b")
    assert select_steps([1, 2, 3, 5], steps="2:4") == [2, 3]
    assert select_steps([1, 2, 3, 5], steps="3:") == [3, 5]
    assert select_steps([1, 2, 3, 5], last=True) == [5]
    assert select_steps([1, 2, 3, 5], step=4) == []


def test_summary_table_without_a_step(run):
    code, text = view(str(run))
    assert code == 0
    assert "per-step behaviour" in text
    lines = {line.split()[0]: line for line in text.splitlines() if line.split() and line.split()[0].isdigit()}
    assert set(lines) == {"1", "2", "3"}
    assert "50.0%" in lines["2"]  # step 2: one of two reflective / truncated / correct
    assert "aha:" in text and "too few steps" in text
    assert "Compute alpha" not in text  # no completions without a step or a filter


def test_one_step_shows_its_completions(run):
    code, text = view(str(run), "--step", "2")
    assert code == 0
    assert "step 2 · gamma" in text and "step 2 · delta" in text
    assert "step 1 ·" not in text and "step 3 ·" not in text
    assert "truncated" in text and "reflections: wait, let me check" in text
    assert "2 of 2 matching completions shown (step 2)" in text


def test_last_and_filters(run):
    _, text = view(str(run), "--last", "--grep", "WRONG")
    assert "step 3 · alpha" in text and "epsilon" not in text
    _, text = view(str(run), "--steps", "1:3", "--wrong")
    shown = {line for line in text.splitlines() if "╭─ step" in line}
    assert len(shown) == 2 and any("alpha" in s for s in shown) and any("gamma" in s for s in shown)
    assert "matching" in text  # the summary gains a column with the filtered counts
    _, text = view(str(run), "--reflective", "--correct")
    assert "step 2 · delta" in text and "step 3 · alpha" in text and "beta" not in text
    _, text = view(str(run), "--no-reflective", "--truncated")
    assert "step 2 · gamma" in text and "1 of 1 matching" in text
    _, text = view(str(run), "--min-reward", "1.0", "--max-reward", "1.5", "--steps", ":1")
    assert "beta" in text and "step 1 · alpha" not in text
    code, text = view(str(run), "--step", "1", "--grep", "no such words")
    assert code == 0 and "no completion matches the filters (step 1)" in text and "╭─ step" not in text


def test_sort_and_limit(run):
    _, text = view(str(run), "--sort", "thinking", "--limit", "1")
    assert "step 2 · gamma" in text and "1 of 6 matching" in text
    _, text = view(str(run), "--sort", "reward", "--ascending", "--limit", "1")
    assert "step 2 · gamma" in text
    _, text = view(str(run), "--step", "2", "--max-chars", "60")
    assert "characters omitted" in text


def test_json_lines(run):
    code, text = view(str(run), "--json", "--reflective")
    assert code == 0
    records = [json.loads(line) for line in text.splitlines() if line.strip()]
    assert [(r["step"], r["prompt_id"]) for r in records] == [(2, "delta"), (3, "alpha")]
    assert all(r["reflections"] for r in records)
    _, text = view(str(run), "--json", "--sort", "reward", "--limit", "2")
    assert [json.loads(line)["reward"] for line in text.splitlines()] == [1.5, 1.5]


def test_compare_prompt_side_by_side(run):
    code, text = view(str(run), "--compare", "alpha")
    assert code == 0
    assert "prompt 'alpha' at step 1 and step 3" in text
    header = next(line for line in text.splitlines() if "early: step 1" in line)
    assert "late: step 3" in header  # side by side: both on one line
    assert "reflective 0.0%" in text and "reflective 100.0%" in text
    pair = next(line for line in text.splitlines() if "step 1 · alpha" in line)
    assert "step 3 · alpha" in pair


def test_compare_first_last_picks_the_repeated_prompt(run):
    _, text = view(str(run), "--compare-first-last")
    assert "prompt 'alpha' at step 1 and step 3" in text


def test_compare_falls_back_to_first_and_last_step(tmp_path):
    w = TraceWriter(tmp_path / "r" / "traces")
    w.write(1, [_record(1, "a", "4</think>4", correct=True, reward=1.0)])
    w.write(9, [_record(9, "b", "wait 4</think>4", correct=True, reward=1.0)])
    _, text = view(str(tmp_path / "r"), "--compare-first-last")
    assert "no prompt was traced at two different steps" in text
    assert "early: step 1" in text and "late: step 9" in text


def test_compare_unknown_prompt_and_json(run):
    code, text = view(str(run), "--compare", "nope")
    assert code == 1 and "not in the selected traces" in text
    _, text = view(str(run), "--compare", "alpha", "--json")
    assert [json.loads(line)["step"] for line in text.splitlines()] == [1, 3]


def test_missing_run_and_empty_run(tmp_path):
    code, text = view(str(tmp_path / "nope"))
    assert code == 2 and "no run directory" in text
    (tmp_path / "empty").mkdir()
    code, text = view(str(tmp_path / "empty"))
    assert code == 1 and "no traces" in text
    code, text = view(str(tmp_path / "empty"), "--steps", "x:y")
    assert code == 1


def test_bad_range_and_unknown_step(run):
    code, text = view(str(run), "--steps", "a:b")
    assert code == 2 and "bad step range" in text
    code, text = view(str(run), "--step", "42")
    assert code == 1 and "traced steps: 1–3" in text


def test_run_in_progress(run):
    """A half-written step (temp file) and a torn line do not break the viewer."""
    (run / "traces" / ".step-000004.tmp").write_text('{"step": 4, "prompt_id": "zeta"}\n')
    with (run / "traces" / "step-000003.jsonl").open("a") as fh:
        fh.write('{"step": 3, "prompt_id": "tor')
    code, text = view(str(run), "--last")
    assert code == 0 and "step 3 · alpha" in text and "zeta" not in text and "· tor " not in text
    assert "2 of 2 matching completions shown (step 3)" in text


def test_highlighting_styles():
    record = _record(5, "x", "2+2=5? Wait, let me check. 4</think><answer>4</answer>", correct=True, reward=1)
    text = highlight_completion(record)
    styled = {(text.plain[s.start:s.end], str(s.style)) for s in text.spans}
    assert ("Wait", STYLES["reflection"]) in styled
    assert ("let me check", STYLES["reflection"]) in styled
    assert ("4", STYLES["answer"]) in styled
    assert ("</think>", STYLES["tag"]) in styled
    thinking = next(t for t, style in styled if style == STYLES["thinking"])
    assert thinking.startswith("2+2=5?") and "</think>" not in thinking
    # No closing tag (a truncated completion): everything is thinking, and "checking" is not "check".
    spans = completion_spans("<think>checking wait", ["wait"])
    assert (7, 20, "thinking") in spans and [s for s in spans if s[2] == "reflection"] == [(16, 20, "reflection")]


def test_compare_groups_pure():
    recs = [{"step": 1, "prompt_id": "a"}, {"step": 2, "prompt_id": "b"}, {"step": 4, "prompt_id": "b"},
            {"step": 6, "prompt_id": "a"}]
    early, late, note = compare_groups(recs)
    assert note == "prompt 'a' at step 1 and step 6"  # the widest span wins
    _, late, note = compare_groups([{"step": 2, "prompt_id": "c"}], "c")
    assert late == [] and "step 2 only" in note


HOSTILE = "clear\x1b[2J title\x1b]0;pwned\x07 csi\x9b31m bell\x07 back\x08 cr\r del\x7f ok\ttab\nline"


def terminal_output(*argv: str, root: Path) -> tuple[int, str]:
    """Run `ahazero traces` into a real terminal console (colours on) and return the raw bytes written."""
    import io

    args = _parser().parse_args(["traces", str(root), *argv])
    buffer = io.StringIO()
    console = Console(file=buffer, width=160, force_terminal=True, color_system="truecolor")
    code = args.func(args, console=console)
    return code, buffer.getvalue()


def raw_controls(text: str) -> list[str]:
    """Control characters in ``text`` other than newline, tab and rich's own colour codes (ESC [ ... m)."""
    import re

    without_colours = re.sub(r"\x1b\[[0-9;]*m", "", text)
    return re.findall(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]", without_colours)


def test_escape_sequences_in_completions_never_reach_the_terminal(tmp_path):
    root = tmp_path / "hostile"
    record = _record(1, "p\x1b[31m[bold]", HOSTILE + "</think><answer>4\x1b[5m</answer>", correct=True, reward=1.0)
    record["problem"] = "What is 2+2?\x1b]0;title\x07 [/]"
    TraceWriter(root / "traces").write(1, [record])
    for argv in (["--step", "1"], ["--compare-first-last"], ["--steps", "1:1", "--sort", "reward"], []):
        code, out = terminal_output(*argv, root=root)
        assert code == 0 and raw_controls(out) == [], (argv, out)
    code, out = terminal_output("--step", "1", root=root)
    for shown in (r"clear\x1b[2J", r"title\x1b]0;pwned\x07", r"csi\x9b31m", r"cr\x0d", r"del\x7f", r"p\x1b[31m[bold]"):
        assert shown in out, shown
    code, out = terminal_output("--step", "1", "--json", root=root)
    assert code == 0 and raw_controls(out) == []
    assert json.loads(out)["completion"].startswith(HOSTILE)  # the JSON still decodes to the exact text
