"""``ahazero report RUN [RUN ...]``: one self-contained HTML report of a run's behaviours (plus the PNGs).

The report shows, over training steps: each reward component and the total, accuracy, format
rate, thinking length (mean with a p10–p90 band), reflection rate, self-check (check rate and
net corrections per 100, :mod:`ahazero.observe.self_check`), language consistency and
truncation rate (several runs overlaid, one colour each); the aha test of :mod:`ahazero.observe.aha`
with its verdict and example completions from before and after the aha step (or early vs
late), reflection phrases highlighted; the base model's behaviour from ``eval/base.json``
as a dashed reference line and in a table (small models often "reflect" superficially from
step 0, so a reflection word alone is no aha moment); and the ``ahazero eval`` results.

The HTML embeds every image as a ``data:`` URI and has no external CSS or JavaScript, so
it can be mailed or attached as one file. Needs matplotlib.

Example:
    $ ahazero report runs/default                       # runs/default/report/report.html
    $ ahazero report runs/lr1e-6 runs/lr5e-6 --out reports/lr.html

    >>> import argparse
    >>> parser = argparse.ArgumentParser(); sub = parser.add_subparsers()
    >>> _ = add_parser(sub)
    >>> args = parser.parse_args(["report", "runs/a", "runs/b", "--out", "cmp"])
    >>> args.runs, args.out, args.func.__name__
    (['runs/a', 'runs/b'], 'cmp', 'run_report')
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.markup import escape

from ahazero.cache.atomic_files import atomic_write_bytes, atomic_write_text
from ahazero.config.cli_numbers import check_count
from ahazero.config.output_paths import check_output_file, check_output_folder
from ahazero.observe.aha import DEFINITION
from ahazero.observe.collapse import first_alarms, settings_from_config
from ahazero.observe.records import describe_problems
from ahazero.observe.report.data import RunData, load_run, slug
from ahazero.observe.report.html import CSS, esc, img
from ahazero.observe.report.plots import (
    COLORS,
    PLOTS,
    SELF_CHECK_TITLE,
    SMOOTH,
    plot_metric,
    plot_reflective_accuracy,
    plot_self_check,
)
from ahazero.observe.report.sections import aha_section, base_line, base_section, eval_table, runs_table
from ahazero.observe.trace_store import set_aside_note

__all__ = ["NotARunError", "add_parser", "build_report", "check_is_run", "check_report_out", "damage_notes",
           "report_paths", "run_report"]

#: Entries that make a folder a run directory a report can read.
RUN_MARKERS = ("metrics.jsonl", "traces", "config.yaml")
#: What marks an HTML file as a report (a report found at ``--out`` is rewritten without ``--overwrite``).
GENERATOR_META = '<meta name="generator" content="ahazero report">'


class NotARunError(ValueError):
    """A folder given to ``ahazero report`` holds no run (no metrics, no traces, no config)."""


def check_is_run(path: str | Path) -> None:
    """Raise :class:`NotARunError` unless ``path`` holds ``metrics.jsonl``, ``traces/`` or ``config.yaml``.

    Example:
        >>> import tempfile
        >>> check_is_run(tempfile.mkdtemp())
        Traceback (most recent call last):
        ...
        ahazero.observe.report.build.NotARunError: ... is not a run directory: it holds no metrics.jsonl, ...
    """
    if not any((Path(path) / marker).exists() for marker in RUN_MARKERS):
        raise NotARunError(f"{path} is not a run directory: it holds no metrics.jsonl, traces/ or config.yaml")


def report_paths(runs: Sequence[str | Path], out: str | Path | None) -> tuple[Path, Path]:
    """``(html file, folder for the PNGs)``: ``runs/<name>/report/`` for one run, ``--out`` (a folder or .html).

    Without ``--out``, several runs go to ``<parent of the first>/report-<a>-vs-<b>/``.

    Example:
        >>> [p.as_posix() for p in report_paths(["runs/a"], None)]
        ['runs/a/report/report.html', 'runs/a/report']
        >>> [p.as_posix() for p in report_paths(["runs/a", "runs/b"], "cmp/lr.html")]
        ['cmp/lr.html', 'cmp']
    """
    if out is not None:
        out = Path(out)
        if out.suffix.lower() in (".html", ".htm"):
            return out, out.parent
        return out / "report.html", out
    first = Path(runs[0])
    folder = first / "report" if len(runs) == 1 else first.parent / (
        "report-" + "-vs-".join(slug(Path(r).name) for r in runs))
    return folder / "report.html", folder


def _is_report(path: Path) -> bool:
    """True for an HTML file ``ahazero report`` wrote (so it may be written again without ``--overwrite``)."""
    try:
        with path.open("rb") as fh:
            head = fh.read(1 << 16)
    except OSError:
        return False
    return GENERATOR_META.encode() in head or b"by <code>ahazero report</code>" in head


def check_report_out(html_path: str | Path, *, overwrite: bool = False) -> Path:
    """Refuse (one line) a report path that cannot be written, or that holds a file the report did not write.

    A report written before is replaced; any other file only with ``overwrite``.

    Example:
        >>> import tempfile, pathlib
        >>> mine = pathlib.Path(tempfile.mkdtemp()) / "notes.html"
        >>> _ = mine.write_text("<p>my notes</p>")
        >>> check_report_out(mine)
        Traceback (most recent call last):
        ...
        ahazero.config.output_paths.OutputPathError: --out .../notes.html: the file exists; pass --overwrite to replace it, or give another --out
    """
    html_path = Path(html_path)
    if html_path.is_file() and _is_report(html_path):
        check_output_folder(html_path.parent)
    else:
        check_output_file(html_path, overwrite=overwrite)
    return html_path


def damage_notes(data: Sequence[RunData]) -> list[str]:
    """One line per run that had damaged lines skipped, or trace files set aside by a resume.

    Example:
        >>> from ahazero.observe.aha import detect_aha
        >>> from ahazero.observe.records import Problem
        >>> rd = RunData("r", Path("."), [], "m", {}, detect_aha([]), skipped=[Problem("m.jsonl", 2, "not JSON")])
        >>> damage_notes([rd])
        ['r: 1 damaged line skipped: m.jsonl line 2 (not JSON)']
    """
    notes = []
    for rd in data:
        parts = [describe_problems(rd.skipped)] if rd.skipped else []
        if rd.set_aside:
            parts.append(set_aside_note(rd.set_aside))
        if parts:
            notes.append(f"{rd.name}: " + "; ".join(parts))
    return notes


def build_report(runs: Sequence[str | Path], out: str | Path | None = None, *, title: str | None = None,
                 examples: int = 2, overwrite: bool = False) -> Path:
    """Write the HTML report (and its PNGs) for one or more run directories; return the HTML path.

    ``out`` is a folder or an ``.html`` file (see :func:`report_paths`; an existing file that
    is not a report is replaced only with ``overwrite``); ``examples`` is the number of example
    completions per side in the aha and base-model sections.

    Example:
        >>> import tempfile, pathlib
        >>> run = pathlib.Path(tempfile.mkdtemp()) / "demo"
        >>> _ = run.mkdir(); _ = (run / "metrics.jsonl").write_text(
        ...     '{"step": 1, "reward": 0.5, "behaviour/accuracy": 0.5}\\n{"step": 2, "reward": 0.7}\\n')
        >>> path = build_report([run])
        >>> path.name, "Total reward" in path.read_text()
        ('report.html', True)
    """
    return _write_report(runs, out, title=title, examples=examples, overwrite=overwrite)[0]


def _write_report(runs: Sequence[str | Path], out: str | Path | None, *, title: str | None,
                  examples: int, overwrite: bool = False) -> tuple[Path, list[RunData]]:
    if not runs:
        raise ValueError("give at least one run directory")
    for run in runs:
        check_is_run(run)
    html_path, png_dir = report_paths(runs, out)
    check_report_out(html_path, overwrite=overwrite)
    names = [Path(r).name for r in runs]
    if len(set(names)) < len(names):
        names = [f"{Path(r).parent.name}/{Path(r).name}" for r in runs]
    data = [load_run(r, name=n) for r, n in zip(runs, names)]

    pngs: dict[str, bytes] = {}
    figures: list[str] = []
    components = sorted({k for rd in data for row in rd.rows for k in row
                         if k.startswith("rewards/") and k.endswith("/mean")})
    specs = [(k, f"Reward: {k[len('rewards/'):-len('/mean')]}", None, False) for k in components] + PLOTS
    for key, plot_title, base_key, rate in specs:
        png = plot_metric(data, key, plot_title, base_key, rate)
        if png:
            pngs[f"{slug(plot_title)}.png"] = png
            figures.append(img(png, plot_title))
    for measure, label in (("", ""), ("_drgrpo", ", Dr. GRPO keywords")):
        png = plot_reflective_accuracy(data, measure)
        if png:
            pngs[f"accuracy-reflective-vs-non-reflective{measure.replace('_', '-')}.png"] = png
            figures.append(img(png, f"Accuracy: reflective vs non-reflective completions{label}"))
    png = plot_self_check(data)
    if png:
        pngs["self-check.png"] = png
        figures.append(img(png, SELF_CHECK_TITLE))

    aha_parts = []
    for i, rd in enumerate(data):
        section, extra = aha_section(rd, COLORS[i % len(COLORS)], examples)
        aha_parts.append(section)
        pngs.update(extra)
    for name, png in pngs.items():
        atomic_write_bytes(png_dir / name, png)

    title = title or ("ahazero report: " + ", ".join(names))
    verdicts = "".join(
        f'<div class="verdict{" aha" if rd.aha.aha_step is not None else ""}"><b>{esc(rd.name)}</b>: '
        f"{esc(rd.aha.verdict)}{base_line(rd)}</div>" for rd in data)
    evals = eval_table(data)
    collapse = [  # first, as in `ahazero traces`: a collapsed run's other numbers read differently
        f'<div class="verdict aha"><b>{esc(rd.name)}</b>: {esc(alarm.message)}</div>'
        for rd in data for alarm in first_alarms(rd.rows, settings_from_config(rd.config))]
    body = [
        f"<h1>{esc(title)}</h1>",
        f'<div class="meta">generated {time.strftime("%Y-%m-%d %H:%M")} by <code>ahazero report</code> · '
        f"runs: {', '.join(esc(str(Path(r))) for r in runs)}</div>",
        *[f'<p class="meta">{esc(note)}</p>' for note in damage_notes(data)],
        *(["<h2>Collapse alarm</h2>", *collapse] if collapse else []),
        runs_table(data),
        "<h2>Did reflection rise?</h2>", verdicts,
        "<h2>Training curves</h2>",
        "<p>Per training step, from the sampled completions of that step (thin line: each step; thick line: "
        f"{SMOOTH}-step rolling mean when a run has 15 steps or more). Dashed horizontal lines: the base model "
        "from <code>eval/base.json</code> (greedy decoding on the held-out split), where present. Self-check: "
        "the share of completions that recompute an answer (undo the steps, substitute it back), and revisions "
        "wrong→right minus right→wrong per 100 completions, each answer graded by the task's reward "
        "(<code>ahazero behaviours</code>).</p>",
        f'<div class="grid">{"".join(figures)}</div>' if figures else "<p>No logged steps yet.</p>",
        "<h2>The aha test</h2>", *aha_parts,
        "<h2>Base model</h2>", *[base_section(rd, examples) for rd in data],
    ]
    if evals:
        body += ["<h2>Held-out evaluation</h2>", "<p>From <code>ahazero eval</code> (greedy pass@1; pass@k and "
                 "maj@k from k samples when run with <code>--samples</code>).</p>", evals]
    body += [
        "<h2>How the aha test works</h2>",
        f"<p>{esc(DEFINITION)}</p>",
    ]
    doc = (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">{GENERATOR_META}<title>{esc(title)}</title>'
           f"<style>{CSS}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n")
    atomic_write_text(html_path, doc)
    return html_path, data


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register the ``report`` subcommand (``set_defaults(func=run_report)``) and return its parser.

    Example:
        >>> import argparse
        >>> parser = argparse.ArgumentParser(); sub = parser.add_subparsers()
        >>> _ = add_parser(sub)
        >>> parser.parse_args(["report", "runs/a"]).out is None
        True
    """
    p = subparsers.add_parser(
        "report", help="write a self-contained HTML report (plots, aha test, base model, eval) of one or more runs",
        description="Write one self-contained HTML report (PNGs embedded, and written beside it).",
    )
    p.add_argument("runs", nargs="+", help="run directories (runs/<name>) or run names under runs/")
    p.add_argument("--out", default=None,
                   help="output folder or .html file (default: runs/<name>/report/ for one run; "
                        "<parent>/report-<a>-vs-<b>/ for several)")
    p.add_argument("--title", default=None, help="the report's title")
    p.add_argument("--examples", type=int, default=2, help="example completions per side (default 2)")
    p.add_argument("--overwrite", action="store_true",
                   help="replace an existing --out file that is not an ahazero report (a report is always rewritten)")
    p.set_defaults(func=run_report)
    return p


def run_report(args: argparse.Namespace, console: Console | None = None) -> int:
    """Run ``ahazero report`` with parsed ``args``; messages go to ``console``. Returns the exit code.

    Example:
        >>> import argparse, io
        >>> from rich.console import Console
        >>> c = Console(record=True, width=120, file=io.StringIO())
        >>> run_report(argparse.Namespace(runs=["no/such/run"], out=None, title=None, examples=2), console=c)
        2
        >>> "no run directory" in c.export_text()
        True
    """
    from ahazero.observe.trace_select import resolve_run

    check_count("--examples", getattr(args, "examples", 2), least=0)
    console = console or Console()
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        console.print("[red]ahazero report needs matplotlib[/red]: pip install matplotlib")
        return 2
    runs = []
    for run in args.runs:
        path = resolve_run(run)
        if path is None:
            console.print(f"[red]no run directory {run!r}[/red] (give a path, or a name under runs/)")
            return 2
        try:
            check_is_run(path)
        except NotARunError as err:
            console.print(f"[red]{escape(str(err))}[/red]; nothing written")
            return 2
        runs.append(path)
    path, data = _write_report(runs, args.out, title=getattr(args, "title", None),
                               examples=getattr(args, "examples", 2), overwrite=getattr(args, "overwrite", False))
    for rd in data:
        for alarm in first_alarms(rd.rows, settings_from_config(rd.config)):
            console.print(f"[bold red]{rd.name}: collapse:[/bold red] {alarm.message}", highlight=False)
        console.print(f"[bold]{rd.name}[/bold]: {rd.aha.verdict}")
    for note in damage_notes(data):
        console.print(f"[yellow]{escape(note)}[/yellow]", soft_wrap=True)
    console.print(f"wrote {path} (and its PNGs in {path.parent})")
    return 0
