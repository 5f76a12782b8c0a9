"""``ahazero traces RUN``: read a run's completions in the terminal (rich), while it trains or after.

Without a step: a per-step summary table (n, accuracy, format, thinking length, reflection
rate, ...) and the aha verdict (:mod:`ahazero.observe.aha`). With a step (``--step N``, ``--steps
10:20``, ``--last``) or a filter: the completions themselves, with the thinking, the answer and
the reflection phrases highlighted. ``--compare PROMPT_ID`` / ``--compare-first-last`` put the
same prompt at an early and a late step side by side; ``--json`` prints the selected records
as JSON lines for scripting.

Example:
    $ ahazero traces runs/default                          # summary table + aha verdict
    $ ahazero traces runs/default --last --reflective      # reflective completions of the newest step
    $ ahazero traces runs/default --steps 1:10 --wrong --sort thinking --limit 3
    $ ahazero traces runs/default --compare-first-last
    $ ahazero traces runs/default --step 60 --json | jq .reward

    >>> import argparse
    >>> parser = argparse.ArgumentParser(); sub = parser.add_subparsers()
    >>> _ = add_parser(sub)
    >>> args = parser.parse_args(["traces", "runs/x", "--steps", "1:10", "--wrong", "--sort", "reward"])
    >>> args.steps, args.correct, args.sort, args.func.__name__
    ('1:10', False, 'reward', 'run_traces')
"""

from __future__ import annotations

import argparse
import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.console import Console, Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from ahazero.observe.aha import detect_aha
from ahazero.observe.behaviours import reflection_pattern
from ahazero.observe.trace_store import (
    StepCount,
    filter_traces,
    full_text,
    group_by_step,
    is_reflective,
    load_traces,
    sort_traces,
    step_metrics,
    steps_with_traces,
    summarize_records,
    traces_dir,
)

__all__ = [
    "STYLES",
    "add_parser",
    "compare_groups",
    "completion_spans",
    "highlight_completion",
    "middle_cut",
    "parse_steps",
    "render_compare",
    "render_record",
    "render_summary",
    "resolve_run",
    "run_traces",
    "select_steps",
]

#: Rich styles of the highlighted parts of a completion.
STYLES = {
    "thinking": "cyan",
    "tag": "dim",
    "answer": "bold green",
    "reflection": "bold black on yellow",
    "omitted": "dim italic",
}

_DISPLAY_SORTS = ("thinking", "reward", "length")


def resolve_run(run: str | Path) -> Path | None:
    """The run directory for ``run``: a path, or a name under ``runs/``; None when neither exists.

    Example:
        >>> import tempfile
        >>> d = tempfile.mkdtemp()
        >>> resolve_run(d) == Path(d), resolve_run("no-such-run-anywhere")
        (True, None)
    """
    path = Path(run)
    if path.is_dir():
        return path
    named = Path("runs") / str(run)
    return named if named.is_dir() else None


def parse_steps(spec: str) -> tuple[int | None, int | None]:
    """Parse an inclusive step range ``A:B`` (either end may be left out) or a single step ``N``.

    Example:
        >>> parse_steps("1:10"), parse_steps(":5"), parse_steps("50:"), parse_steps("7")
        ((1, 10), (None, 5), (50, None), (7, 7))
    """
    text = spec.strip()
    if ":" not in text:
        if not text.isdigit():
            raise ValueError(f"bad step {spec!r}: expected N or A:B")
        return int(text), int(text)
    a, _, b = text.partition(":")
    try:
        lo = int(a) if a.strip() else None
        hi = int(b) if b.strip() else None
    except ValueError as err:
        raise ValueError(f"bad step range {spec!r}: expected A:B, e.g. 1:10") from err
    return lo, hi


def select_steps(available: Sequence[int], *, step: int | None = None, steps: str | None = None,
                 last: bool = False) -> list[int]:
    """The steps chosen by ``--step`` / ``--steps`` / ``--last`` among ``available`` (all of them by default).

    Example:
        >>> select_steps([1, 2, 3, 4], steps="2:3"), select_steps([1, 2, 3], last=True)
        ([2, 3], [3])
        >>> select_steps([1, 2, 3]), select_steps([1, 2], step=9)
        ([1, 2, 3], [])
    """
    available = sorted(available)
    if last:
        return available[-1:]
    if step is not None:
        return [step] if step in available else []
    if steps:
        lo, hi = parse_steps(steps)
        return [s for s in available if (lo is None or s >= lo) and (hi is None or s <= hi)]
    return available


def middle_cut(text: str, max_chars: int) -> tuple[str, tuple[int, int] | None]:
    """Cut the middle out of ``text`` longer than ``max_chars`` (0 = never); return it and the marker's span.

    Texts up to 20% over the limit are left whole (cutting a few characters helps nobody).

    Example:
        >>> cut, span = middle_cut("a" * 50 + "b" * 50, 20)
        >>> cut[span[0]:span[1]], cut[:span[0]], cut[span[1]:]
        ('\\n  … [80 characters omitted] …\\n', 'aaaaaaaaaaaa', 'bbbbbbbb')
        >>> middle_cut("short", 20)
        ('short', None)
    """
    if max_chars <= 0 or len(text) <= max_chars * 1.2:
        return text, None
    head = int(max_chars * 0.6)
    tail = max_chars - head
    marker = f"\n  … [{len(text) - head - tail} characters omitted] …\n"
    return text[:head] + marker + text[-tail:], (head, head + len(marker))


def completion_spans(text: str, reflections: Sequence[str] = ()) -> list[tuple[int, int, str]]:
    """Spans ``(start, end, kind)`` to highlight in a completion; kinds: thinking, tag, answer, reflection.

    ``thinking`` runs from ``<think>`` (or the start) to ``</think>`` (or the first ``<answer>``, or
    the end); ``answer`` is the inside of each ``<answer>`` block (else of the last ``\\boxed{}``);
    ``reflection`` marks the given phrases with the metrics' whole-word matching.

    Example:
        >>> completion_spans("<think>hm, wait</think><answer>4</answer>", ["wait"])  # doctest: +NORMALIZE_WHITESPACE
        [(7, 15, 'thinking'), (0, 7, 'tag'), (15, 23, 'tag'), (23, 31, 'tag'), (32, 41, 'tag'),
         (31, 32, 'answer'), (11, 15, 'reflection')]
    """
    spans: list[tuple[int, int, str]] = []
    close = text.find("</think>")
    answer_at = text.find("<answer>")
    start = text.find("<think>")
    think_from = start + len("<think>") if start >= 0 else 0
    think_to = close if close >= 0 else (answer_at if answer_at >= 0 else len(text))
    if think_to > think_from:
        spans.append((think_from, think_to, "thinking"))
    spans += [(m.start(), m.end(), "tag") for m in re.finditer(r"</?think>|</?answer>", text)]
    answers = list(re.finditer(r"<answer>(.*?)(?:</answer>|$)", text, re.DOTALL))
    if not answers:
        answers = list(re.finditer(r"\\boxed\{(.*?)\}", text))[-1:]
    spans += [(m.start(1), m.end(1), "answer") for m in answers if m.end(1) > m.start(1)]
    phrases = tuple(sorted(set(reflections)))
    if phrases:
        spans += [(m.start(), m.end(), "reflection") for m in reflection_pattern(phrases).finditer(text)]
    return spans


def highlight_completion(record: dict[str, Any], *, max_chars: int = 0) -> Text:
    """The prefill + completion as rich Text: thinking, answer and reflection phrases styled (see STYLES).

    Longer texts than ``max_chars`` (0 = no limit) lose their middle, so the answer stays visible.

    Example:
        >>> t = highlight_completion({"prefill": "<think>", "completion": "2+2=5? Wait, 4</think><answer>4</answer>",
        ...                           "reflections": ["wait"]})
        >>> t.plain
        '<think>2+2=5? Wait, 4</think><answer>4</answer>'
        >>> sorted({str(s.style) for s in t.spans})
        ['bold black on yellow', 'bold green', 'cyan', 'dim']
    """
    text, cut = middle_cut(full_text(record), max_chars)
    out = Text(text)
    for start, end, kind in completion_spans(text, record.get("reflections") or []):
        out.stylize(STYLES[kind], start, end)
    if cut is not None:
        out.stylize(STYLES["omitted"], *cut)
    return out


def _pct(value: Any) -> str:
    return "–" if value is None else f"{100 * value:.1f}%"


def _num(value: Any, digits: int = 2) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _flag(value: Any, yes: str, no: str) -> Text:
    if value is None:
        return Text("?", style="dim")
    return Text(yes, style="green") if value else Text(no, style="red")


def _reflection_summary(record: dict[str, Any]) -> str:
    counts: dict[str, int] = {}
    for phrase in record.get("reflections") or []:
        counts[phrase] = counts.get(phrase, 0) + 1
    return ", ".join(p if c == 1 else f"{p} ×{c}" for p, c in counts.items())


def render_record(record: dict[str, Any], *, max_chars: int = 1200) -> Panel:
    """One completion as a rich Panel: a header of its numbers and the highlighted text.

    Example:
        >>> import io
        >>> from rich.console import Console
        >>> c = Console(record=True, width=100, file=io.StringIO())
        >>> c.print(render_record({"step": 3, "prompt_id": "p1", "problem": "1+1", "completion": "2",
        ...                        "reward": 1.0, "correct": True, "gold": "2", "extracted_answer": "2"}))
        >>> text = c.export_text()
        >>> "step 3 · p1 · reward 1.00" in text and "✓ correct" in text
        True
    """
    head = Text()
    head.append(f"problem: {record.get('problem') or '–'}\n", style="bold")
    head.append("answer: ")
    answer = record.get("extracted_answer")
    head.append("none extracted" if answer is None else str(answer), style="dim" if answer is None else STYLES["answer"])
    head.append(f"   gold: {record.get('gold')}   ")
    head.append_text(_flag(record.get("correct"), "✓ correct", "✗ wrong"))
    head.append("   ")
    head.append_text(_flag(record.get("formatted"), "formatted", "unformatted"))
    head.append(f"\nthinking tokens: {record.get('thinking_tokens', '–')}   "
                f"completion tokens: {record.get('completion_tokens', '–')}")
    if record.get("truncated"):
        head.append("   truncated", style="red")
    lc = record.get("language_consistency")
    if lc is not None and lc < 0.999:
        head.append(f"   language consistency: {lc:.2f}", style="magenta")
    rewards = record.get("rewards") or {}
    if rewards:
        head.append("\nrewards: " + "  ".join(f"{k}={_num(v)}" for k, v in rewards.items()), style="dim")
    if is_reflective(record):
        head.append("\nreflections: ")
        head.append(_reflection_summary(record), style=STYLES["reflection"])
    title = (f"step {record.get('step', '?')} · {record.get('prompt_id', '?')} · "
             f"reward {_num(record.get('reward'))}")
    if record.get("advantage") is not None:
        title += f" (advantage {record['advantage']:+.2f})"
    return Panel(Group(head, Text(""), highlight_completion(record, max_chars=max_chars)),
                 title=title, title_align="left", border_style="green" if record.get("correct") else "blue")


def render_summary(rows: Sequence[dict[str, Any]], *, matching: dict[int, int] | None = None,
                   max_rows: int = 40, title: str = "per-step behaviour") -> Table:
    """The per-step summary table (rows from :func:`ahazero.observe.trace_store.step_metrics`).

    More than ``max_rows`` steps are thinned to every k-th step (the last always kept). ``matching``
    adds a column with how many records of each step passed the filters.

    Example:
        >>> import io
        >>> from rich.console import Console
        >>> c = Console(record=True, width=120, file=io.StringIO())
        >>> c.print(render_summary([{"step": 1, "n": 4, "behaviour/reflection_rate": 0.25}]))
        >>> "25.0%" in c.export_text()
        True
    """
    shown, stride = list(rows), 1
    if len(shown) > max_rows:
        stride = -(-len(shown) // (max_rows - 1))
        shown = shown[::stride] + ([shown[-1]] if (len(shown) - 1) % stride else [])
    caption = None if len(shown) == len(rows) else f"one step in {stride} shown ({len(shown)} of {len(rows)}); use --steps A:B for all"
    table = Table(title=title, caption=caption, header_style="bold", show_lines=False)
    table.add_column("step", justify="right")
    table.add_column("n", justify="right")
    if matching is not None:
        table.add_column("matching", justify="right")
    for name in ("reward", "accuracy", "format", "think tok", "p10–p90", "reflection", "truncated", "lang"):
        table.add_column(name, justify="right")
    for r in shown:
        cells = [str(r.get("step")), _num(r.get("n"))]
        if matching is not None:
            cells.append(str(matching.get(int(r["step"]), 0)))
        p10, p90 = r.get("behaviour/think_tokens_p10"), r.get("behaviour/think_tokens_p90")
        cells += [
            _num(r.get("reward")),
            _pct(r.get("behaviour/accuracy")),
            _pct(r.get("behaviour/format_rate")),
            _num(r.get("behaviour/think_tokens_mean"), 1),
            "–" if p10 is None or p90 is None else f"{p10:.0f}–{p90:.0f}",
            _pct(r.get("behaviour/reflection_rate")),
            _pct(r.get("behaviour/truncation_rate")),
            _num(r.get("behaviour/language_consistency"), 3),
        ]
        table.add_row(*cells)
    return table


def compare_groups(records: Sequence[dict[str, Any]], prompt_id: str | None = None
                   ) -> tuple[list[dict[str, Any]], list[dict[str, Any]], str]:
    """Pick the early and late records to compare, and a note saying what was picked.

    With ``prompt_id``: that prompt's records at its first and at its last traced step.
    Without: the prompt traced at the two steps furthest apart; when every prompt was traced
    at one step only (one pass over a large training set), the first and last steps' records.

    Example:
        >>> recs = [{"step": 1, "prompt_id": "a"}, {"step": 5, "prompt_id": "a"}, {"step": 5, "prompt_id": "b"}]
        >>> early, late, note = compare_groups(recs)
        >>> [r["step"] for r in early], [r["step"] for r in late], note
        ([1], [5], "prompt 'a' at step 1 and step 5")
    """
    if prompt_id is not None:
        mine = [r for r in records if str(r.get("prompt_id")) == prompt_id]
        groups = group_by_step(mine)
        if not groups:
            return [], [], f"prompt {prompt_id!r} is not in the selected traces"
        steps = list(groups)
        if len(steps) == 1:
            return groups[steps[0]], [], f"prompt {prompt_id!r} was traced at step {steps[0]} only"
        return groups[steps[0]], groups[steps[-1]], f"prompt {prompt_id!r} at step {steps[0]} and step {steps[-1]}"
    spans: dict[str, list[int]] = {}
    for r in records:
        s = int(r.get("step", 0))
        lo_hi = spans.setdefault(str(r.get("prompt_id")), [s, s])
        lo_hi[0], lo_hi[1] = min(lo_hi[0], s), max(lo_hi[1], s)
    repeated = [(hi - lo, -lo, pid) for pid, (lo, hi) in spans.items() if hi > lo]
    if repeated:
        _, _, best = max(repeated)
        return compare_groups(records, best)
    groups = group_by_step(records)
    if not groups:
        return [], [], "no traces selected"
    steps = list(groups)
    note = (f"no prompt was traced at two different steps (each training prompt was seen once); "
            f"comparing step {steps[0]} with step {steps[-1]} (different prompts)")
    return groups[steps[0]], groups[steps[-1]] if len(steps) > 1 else [], note


def _group_header(group: Sequence[dict[str, Any]], label: str) -> Text:
    m = summarize_records(group)
    text = Text(f"{label}: step {group[0].get('step')}\n", style="bold")
    text.append(f"{m['n']} completions · accuracy {_pct(m.get('behaviour/accuracy'))} · "
                f"reflective {_pct(m.get('behaviour/reflection_rate'))} · "
                f"thinking {_num(m.get('behaviour/think_tokens_mean'), 1)} tokens")
    return text


def render_compare(early: Sequence[dict[str, Any]], late: Sequence[dict[str, Any]], note: str, *,
                   shown_early: Sequence[dict[str, Any]] | None = None,
                   shown_late: Sequence[dict[str, Any]] | None = None,
                   limit: int = 2, max_chars: int = 1200) -> Table:
    """Early and late completions side by side: group statistics on top, then pairs of completions.

    ``early``/``late`` are the whole groups (for the statistics); ``shown_*`` the completions to
    show (default: the first ``limit`` of each group).

    Example:
        >>> import io
        >>> from rich.console import Console
        >>> c = Console(record=True, width=140, file=io.StringIO())
        >>> a = [{"step": 1, "prompt_id": "p", "completion": "5", "reflections": []}]
        >>> b = [{"step": 9, "prompt_id": "p", "completion": "wait, 4", "reflections": ["wait"]}]
        >>> c.print(render_compare(a, b, "prompt 'p'"))
        >>> text = c.export_text()
        >>> "early: step 1" in text and "late: step 9" in text and "reflective 100.0%" in text
        True
    """
    shown_early = list(early if shown_early is None else shown_early)[:limit]
    shown_late = list(late if shown_late is None else shown_late)[:limit]
    table = Table(title=note, expand=True, show_lines=True, header_style="bold")
    table.add_column("early", ratio=1)
    table.add_column("late", ratio=1)
    table.add_row(
        _group_header(early, "early") if early else Text("–"),
        _group_header(late, "late") if late else Text("(no later step)", style="dim"),
    )
    for i in range(max(len(shown_early), len(shown_late))):
        table.add_row(
            render_record(shown_early[i], max_chars=max_chars) if i < len(shown_early) else Text(""),
            render_record(shown_late[i], max_chars=max_chars) if i < len(shown_late) else Text(""),
        )
    return table


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register the ``traces`` subcommand (``set_defaults(func=run_traces)``) and return its parser.

    Example:
        >>> import argparse
        >>> parser = argparse.ArgumentParser(); sub = parser.add_subparsers()
        >>> _ = add_parser(sub)
        >>> parser.parse_args(["traces", "runs/x", "--last", "--json"]).json
        True
    """
    p = subparsers.add_parser(
        "traces", help="read a run's traced completions (summary, filters, early-vs-late compare, JSON)",
        description="Read a run's traced completions; works while the run is still training.",
    )
    p.add_argument("run", help="run directory (runs/<name>) or a run name under runs/")
    which = p.add_mutually_exclusive_group()
    which.add_argument("--step", type=int, default=None, help="one step")
    which.add_argument("--steps", default=None, metavar="A:B", help="a step range, inclusive (1:10, :5, 50:)")
    which.add_argument("--last", action="store_true", help="the newest step with traces")
    ok = p.add_mutually_exclusive_group()
    ok.add_argument("--correct", dest="correct", action="store_const", const=True, default=None,
                    help="only correct completions")
    ok.add_argument("--wrong", dest="correct", action="store_const", const=False, help="only wrong completions")
    p.add_argument("--reflective", action=argparse.BooleanOptionalAction, default=None,
                   help="only completions with (--no-reflective: without) a reflection phrase")
    p.add_argument("--truncated", action=argparse.BooleanOptionalAction, default=None,
                   help="only truncated (--no-truncated: finished) completions")
    p.add_argument("--formatted", action=argparse.BooleanOptionalAction, default=None,
                   help="only well-formatted (--no-formatted: badly formatted) completions")
    p.add_argument("--min-reward", type=float, default=None, help="total reward at least this")
    p.add_argument("--max-reward", type=float, default=None, help="total reward at most this")
    p.add_argument("--grep", default=None, metavar="TEXT",
                   help="case-insensitive text in the problem, completion or answer")
    p.add_argument("--prompt", default=None, metavar="PROMPT_ID", help="only this prompt id")
    p.add_argument("--sort", choices=_DISPLAY_SORTS, default=None,
                   help="largest first: thinking tokens, total reward, or completion length")
    p.add_argument("--ascending", action="store_true", help="sort smallest first")
    p.add_argument("--limit", type=int, default=None,
                   help="completions to show (default 5; 2 per side with --compare; all with --json)")
    p.add_argument("--max-chars", type=int, default=1200,
                   help="cut the middle of longer completions (0 = show everything)")
    cmp_ = p.add_mutually_exclusive_group()
    cmp_.add_argument("--compare", default=None, metavar="PROMPT_ID",
                      help="this prompt at its first and last traced step, side by side")
    cmp_.add_argument("--compare-first-last", action="store_true",
                      help="the prompt traced furthest apart (else the first vs the last step), side by side")
    p.add_argument("--json", action="store_true", help="print the selected records as JSON lines")
    p.set_defaults(func=run_traces)
    return p


def _filters(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "correct": getattr(args, "correct", None),
        "reflective": getattr(args, "reflective", None),
        "truncated": getattr(args, "truncated", None),
        "formatted": getattr(args, "formatted", None),
        "min_reward": getattr(args, "min_reward", None),
        "max_reward": getattr(args, "max_reward", None),
        "search": getattr(args, "grep", None),
        "prompt_id": getattr(args, "prompt", None),
    }


def run_traces(args: argparse.Namespace, console: Console | None = None) -> int:
    """Run ``ahazero traces`` with parsed ``args``; output goes to ``console`` (default: stdout). Returns the exit code.

    Example:
        >>> import argparse, io, tempfile
        >>> from rich.console import Console
        >>> parser = argparse.ArgumentParser(); sub = parser.add_subparsers(); _ = add_parser(sub)
        >>> c = Console(record=True, width=120, file=io.StringIO())
        >>> run_traces(parser.parse_args(["traces", tempfile.mkdtemp()]), console=c)
        1
        >>> "no traces" in c.export_text()
        True
    """
    console = console or Console()
    try:
        return _run(args, console)
    except BrokenPipeError:  # `ahazero traces RUN --json | head`
        return 0


def _run(args: argparse.Namespace, console: Console) -> int:
    run = resolve_run(args.run)
    if run is None:
        console.print(f"[red]no run directory {args.run!r}[/red] (give a path, or a name under runs/)")
        return 2
    available = steps_with_traces(run)
    if not available:
        console.print(f"[yellow]no traces in {traces_dir(run)}[/yellow]: logging.traces is off, or the run "
                      "has not finished its first step yet")
        return 1
    try:
        chosen = select_steps(available, step=args.step, steps=args.steps, last=args.last)
    except ValueError as err:
        console.print(f"[red]{err}[/red]")
        return 2
    if not chosen:
        console.print(f"[yellow]no traced step matches[/yellow]; traced steps: {available[0]}–{available[-1]} "
                      f"({len(available)} files)")
        return 1

    filters = _filters(args)
    filtering = any(v is not None for v in filters.values())
    one_step = args.step is not None or args.last or len(chosen) == 1
    comparing = args.compare is not None or args.compare_first_last

    if comparing:
        records = load_traces(run, chosen)
        early, late, note = compare_groups(records, args.compare)
        if not early:
            console.print(f"[yellow]{note}[/yellow]")
            return 1
        shown = [filter_traces(g, **filters) for g in (early, late)]
        if args.sort:
            shown = [sort_traces(g, args.sort, descending=not args.ascending) for g in shown]
        limit = args.limit or 2
        if args.json:
            for r in shown[0][:limit] + shown[1][:limit]:
                console.out(json.dumps(r, ensure_ascii=False), highlight=False)
            return 0
        console.print(render_compare(early, late, note, shown_early=shown[0], shown_late=shown[1],
                                     limit=limit, max_chars=args.max_chars))
        return 0

    if args.json or one_step or filtering or args.sort:
        records = filter_traces(load_traces(run, chosen), **filters)
        if args.sort:
            records = sort_traces(records, args.sort, descending=not args.ascending)
        if args.json:
            for r in records[:args.limit] if args.limit is not None else records:
                console.out(json.dumps(r, ensure_ascii=False), highlight=False)
            return 0
        if not one_step:
            matching = {s: len(g) for s, g in group_by_step(records).items()}
            console.print(render_summary(step_metrics(run, chosen), matching=matching,
                                         title=f"{run.name}: steps {chosen[0]}–{chosen[-1]}"))
        limit = args.limit if args.limit is not None else 5
        total = len(records)
        shown = records[:limit]
        for r in shown:
            console.print(render_record(r, max_chars=args.max_chars))
        what = f"step {chosen[0]}" if one_step else f"steps {chosen[0]}–{chosen[-1]}"
        if not total:
            console.print(f"[yellow]no completion matches the filters ({what})[/yellow]")
        else:
            console.print(f"[dim]{len(shown)} of {total} matching completions shown ({what}); "
                          f"--limit N for more, --json for all[/dim]")
        return 0

    rows = step_metrics(run, chosen)
    console.print(render_summary(rows, title=f"{run.name}: per-step behaviour from traces"))
    if chosen == available:
        counts = [StepCount(r["step"], r["n"], round((r.get("behaviour/reflection_rate") or 0.0) * r["n"]))
                  for r in rows]
        console.print(f"[bold]aha:[/bold] {detect_aha(counts).verdict}")
    console.print("[dim]read completions with --step N / --last / --steps A:B, filters (--correct, "
                  "--reflective, --grep ...), or --compare-first-last[/dim]")
    return 0
