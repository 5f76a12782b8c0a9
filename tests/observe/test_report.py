"""`ahazero report`: a self-contained HTML report from synthetic run directories."""

from __future__ import annotations

import argparse
import base64
import json
import random
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from rich.console import Console

pytest.importorskip("matplotlib")

from ahazero.observe.report import (  # noqa: E402
    add_parser,
    build_report,
    highlight_html,
    load_run,
    report_paths,
    run_report,
)
from ahazero.observe.report.build import NotARunError  # noqa: E402
from ahazero.observe.tracing import TraceWriter  # noqa: E402

REPO = Path(__file__).resolve().parents[2]
STEPS = 30


def make_run(root: Path, *, rise_at: int | None, seed: int = 0, base: bool = True, n: int = 16) -> Path:
    """A run dir like training writes: metrics.jsonl, traces/, config.yaml, eval/base.json (+ samples)."""
    rng = random.Random(seed)
    writer = TraceWriter(root / "traces")
    metrics = []
    for step in range(1, STEPS + 1):
        p = 0.45 if rise_at is not None and step >= rise_at else 0.05
        records = []
        for i in range(n):
            reflective = rng.random() < p
            correct = rng.random() < 0.2 + step / 60
            thinking = ("2+2 is 5? Wait, let me check: 4" if reflective else "2+2 is 4") + " ok" * (step % 5)
            records.append({
                "step": step, "prompt_id": f"p{step}-{i}", "problem": f"Compute: {step} + {i}", "prefill": "<think>",
                "completion": f"{thinking}</think> <answer>4</answer>", "thinking": thinking,
                "extracted_answer": "4", "gold": "4" if correct else "5",
                "rewards": {"accuracy": float(correct), "think_format": 1.0}, "reward": float(correct) + 0.5,
                "advantage": 0.0, "thinking_tokens": len(thinking.split()), "answer_tokens": 1,
                "completion_tokens": len(thinking.split()) + 4, "truncated": False,
                "reflections": ["wait", "let me check"] if reflective else [], "language_consistency": 1.0,
                "correct": correct, "formatted": True,
            })
        writer.write(step, records)
        rate = sum(bool(r["reflections"]) for r in records) / n
        acc = sum(r["correct"] for r in records) / n
        think = sorted(r["thinking_tokens"] for r in records)
        metrics.append({
            "step": step, "reward": acc + 0.5, "rewards/accuracy/mean": acc, "rewards/think_format/mean": 1.0,
            "behaviour/accuracy": acc, "behaviour/format_rate": 1.0, "behaviour/truncation_rate": 0.0,
            "behaviour/think_tokens_mean": sum(think) / n, "behaviour/think_tokens_p10": think[1],
            "behaviour/think_tokens_p90": think[-2], "behaviour/reflection_rate": rate,
            "behaviour/think_tokens_closed_mean": sum(think) / n,
            "behaviour/language_consistency": 1.0, "behaviour/accuracy_reflective": 0.5 if rate else None,
            "behaviour/accuracy_non_reflective": acc,
            "timing/tokens_per_second": 4000.0 + step, "timing/generation_seconds": 2.5,
        })
    metrics.append({"step": STEPS, "train_runtime": 99.0})
    (root / "metrics.jsonl").write_text("\n".join(json.dumps(m) for m in metrics) + "\n")
    (root / "config.yaml").write_text(
        "name: demo\nmodel: {name_or_path: tiny-test-model}\ntask: {name: arithmetic}\n"
        "rewards:\n  - {name: accuracy, weight: 1.0}\n  - {name: think_format, weight: 0.5}\n"
        f"grpo: {{per_device_train_batch_size: {n}}}\n")
    if base:
        (root / "eval").mkdir()
        greedy = {"behaviour/reflection_rate": 0.175, "behaviour/accuracy_reflective": 0.25,
                  "behaviour/accuracy_non_reflective": 0.28}
        (root / "eval" / "base.json").write_text(json.dumps({
            "tag": "base", "model": "tiny-test-model", "n": 40, "pass@1": 0.275, "format_rate": 0.255,
            "think_tokens_mean": 104.2, "reflection_rate": 0.175, "language_consistency": 1.0,
            "truncation_rate": 0.08, "greedy": greedy}))
        (root / "eval" / "step-30.json").write_text(json.dumps({
            "tag": "step-30", "model": "ckpt", "n": 40, "pass@1": 0.61, "pass@4": 0.8, "maj@4": 0.7,
            "format_rate": 1.0, "think_tokens_mean": 20.0, "reflection_rate": 0.02,
            "language_consistency": 1.0, "truncation_rate": 0.0}))
        (root / "eval" / "base-samples.jsonl").write_text(json.dumps({
            "id": "b1", "problem": "Compute: 1+1", "gold": "2",
            "completion": "First we evaluate the sum: 1+1 = 3. \\boxed{3}", "extracted_answer": "3",
            "correct": False, "reflections": ["evaluate"], "thinking_tokens": 9}) + "\n")
    return root


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("runs")
    return make_run(root / "rising", rise_at=15, seed=1), make_run(root / "flat", rise_at=None, seed=2, base=False)


@pytest.fixture(scope="module")
def single(runs) -> tuple[Path, str]:
    path = build_report([runs[0]])
    return path, path.read_text(encoding="utf-8")


PLOT_TITLES = ["Reward: accuracy", "Reward: think_format", "Total reward", "Accuracy", "Format rate",
               "Thinking length (tokens)", "Thinking length, closed &lt;/think&gt; only (tokens)", "Reflection rate",
               "Language consistency", "Truncation rate", "Rollout throughput (generated tokens/s)",
               "Rollout generation time per step (s)"]


def test_single_run_report_is_written_beside_the_run(runs, single):
    path, _ = single
    assert path == runs[0] / "report" / "report.html"
    pngs = sorted(p.name for p in path.parent.glob("*.png"))
    assert "reflection-rate.png" in pngs and "thinking-length-tokens.png" in pngs and "aha-rising.png" in pngs
    for name in pngs:
        assert (path.parent / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_report_is_self_contained(single):
    _, html = single
    assert 'src="http' not in html and "href=\"http" not in html
    assert "<script" not in html and "<link" not in html
    imgs = re.findall(r"<img [^>]*>", html)
    assert len(imgs) >= len(PLOT_TITLES) + 1
    for tag in imgs:
        src = re.search(r'src="([^"]+)"', tag).group(1)
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.split(",", 1)[1])[:4] == b"\x89PNG"


def test_report_has_every_plot_and_the_aha_verdict(runs, single):
    _, html = single
    for title in PLOT_TITLES:
        assert f'alt="{title}"' in html, title
    result = load_run(runs[0]).aha
    assert result.aha_step is not None and 13 <= result.aha_step <= 16
    assert f"reflection rises significantly at step {result.aha_step}" in html
    assert "before (baseline)" in html and "after (aha window)" in html
    assert "<mark>Wait</mark>" in html or "<mark>let me check</mark>" in html


def test_report_states_the_base_model_reference(single):
    _, html = single
    assert "base model (eval, greedy)" in html
    assert "Before any RL, the base model already uses reflection phrases in <b>17.5%</b>" in html
    assert "no more accurate than the others (25.0% vs 28.0%)" in html
    assert "<mark>evaluate</mark>" in html  # the base model's own (superficial) reflection, highlighted
    assert "Held-out evaluation" in html and "step-30" in html and "pass@4" in html and "61.0%" in html


def test_two_runs_overlay_with_a_legend(runs, tmp_path, monkeypatch):
    """Several runs: one report, each run drawn in its own colour and named in the legend."""
    from matplotlib.axes import Axes

    labels: list[tuple[str, str]] = []
    original = Axes.legend

    def spy(self, *args, **kwargs):
        if self.get_title(loc="left") == "Reflection rate":
            labels.extend((line.get_label(), line.get_color()) for line in self.get_lines())
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Axes, "legend", spy)
    path = build_report(list(runs), tmp_path / "cmp")
    html = path.read_text(encoding="utf-8")
    assert path == tmp_path / "cmp" / "report.html"
    named = dict(label for label in labels if label[0] in ("rising", "flat"))
    assert set(named) == {"rising", "flat"} and named["rising"] != named["flat"]
    assert (tmp_path / "cmp" / "aha-rising.png").is_file() and (tmp_path / "cmp" / "aha-flat.png").is_file()
    assert "<b>rising</b>: reflection rises significantly" in html
    assert "<b>flat</b>: no significant rise in reflection over 30 steps" in html
    assert "No <code>eval/base.json</code>" in html  # the flat run has no base eval


def test_runs_table_counts_skipped_updates(tmp_path):
    run = make_run(tmp_path / "nan", rise_at=None, base=False)
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    for row in rows:
        if "reward" in row:
            row["updates_skipped"] = 1 if row["step"] in (3, 4) else 0
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert load_run(run).updates_skipped == 2
    html = build_report([run]).read_text(encoding="utf-8")
    assert f"<td>2 of {STEPS}</td>" in html


def test_report_paths():
    assert report_paths(["runs/a"], None) == (Path("runs/a/report/report.html"), Path("runs/a/report"))
    assert report_paths(["runs/a", "runs/b"], None)[1] == Path("runs/report-a-vs-b")
    assert report_paths(["runs/a"], "x/r.html") == (Path("x/r.html"), Path("x"))


def test_run_in_progress_and_traces_only(tmp_path):
    """No metrics.jsonl yet (or a torn one): the curves come from the traces."""
    run = make_run(tmp_path / "live", rise_at=None, base=False)
    (run / "metrics.jsonl").write_text('{"step": 1, "rew')
    (run / "traces" / ".step-000031.tmp").write_text("{")
    data = load_run(run)
    assert data.metrics_source == "traces" and len(data.rows) == STEPS and not data.finished
    html = build_report([run]).read_text(encoding="utf-8")
    assert 'alt="Reflection rate"' in html and "in progress or stopped" in html


def test_highlight_html_escapes():
    html = highlight_html({"completion": "<b>x</b> wait <script>", "reflections": ["wait"]})
    assert "<script>" not in html and "&lt;script&gt;" in html and "<mark>wait</mark>" in html


def test_cli_entry_points(runs, tmp_path):
    parser = argparse.ArgumentParser()
    add_parser(parser.add_subparsers())
    args = parser.parse_args(["report", str(runs[1]), "--out", str(tmp_path / "one.html"), "--examples", "1"])
    assert args.func is run_report
    console = Console(record=True, width=200, file=sys.stderr)
    assert args.func(args, console=console) == 0
    text = console.export_text()
    assert "flat: no significant rise" in text and "one.html" in text
    assert (tmp_path / "one.html").is_file() and (tmp_path / "reflection-rate.png").is_file()
    bad = parser.parse_args(["report", str(tmp_path / "missing")])
    assert run_report(bad, console=Console(record=True, file=sys.stderr)) == 2


def test_the_printed_summary_at_80_columns_wraps_at_words_and_cuts_no_number(runs, tmp_path):
    import io

    console = Console(record=True, width=80, file=io.StringIO())
    args = argparse.Namespace(runs=[str(r) for r in runs], out=str(tmp_path / "both.html"), title=None, examples=1)
    assert run_report(args, console=console) == 0
    text = console.export_text()
    assert max(len(line) for line in text.splitlines()) <= 80 and "…" not in text
    flat = " ".join(text.split())
    for run in runs:
        verdict = load_run(run).aha.verdict
        assert re.search(r"\d", verdict)  # the verdict states numbers (rates, steps)
        assert " ".join(f"{run.name}: {verdict}".split()) in flat  # only the line breaks moved


@pytest.mark.slow
def test_headless_chromium_screenshot(single, tmp_path):
    """The report renders in a real browser (skipped without chromium)."""
    script = REPO / "scripts" / "screenshot_report.py"
    if not any(shutil.which(b) for b in ("chromium", "chromium-browser", "google-chrome")):
        pytest.skip("chromium not installed")
    png = tmp_path / "shot.png"
    proc = subprocess.run([sys.executable, str(script), str(single[0]), "--out", str(png), "--height", "3000"],
                          capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr
    from PIL import Image

    img = Image.open(png)
    assert img.width == 1280 and img.height > 1000
    assert len(img.convert("RGB").getcolors(maxcolors=1 << 20) or []) > 50  # plots drawn, not a blank page


def test_report_on_a_folder_that_is_not_a_run(tmp_path):
    folder = tmp_path / "not-a-run"
    folder.mkdir()
    (folder / "notes.txt").write_text("x")
    console = Console(record=True, width=200, file=sys.stderr)
    args = argparse.Namespace(runs=[str(folder)], out=None, title=None, examples=2)
    assert run_report(args, console=console) == 2
    assert "is not a run directory: it holds no metrics.jsonl, traces/ or config.yaml" in console.export_text()
    assert sorted(p.name for p in folder.iterdir()) == ["notes.txt"]  # nothing written
    with pytest.raises(NotARunError):
        build_report([folder])
    assert sorted(p.name for p in folder.iterdir()) == ["notes.txt"]
