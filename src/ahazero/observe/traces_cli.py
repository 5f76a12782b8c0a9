"""``ahazero traces RUN``: read a run's completions in the terminal (rich), while it trains or after.

Without a step: a per-step summary table (n, accuracy, format, thinking length, reflection
rate, ...) and the aha verdict (:mod:`ahazero.observe.aha`). With a step (``--step N``, ``--steps
10:20``, ``--last``) or a filter: the completions themselves, with the thinking, the answer and
the reflection phrases highlighted, and the self-check read from each (the answers it stated,
its checks; filters ``--revised`` / ``--checked``). A collapse alarm
(:mod:`ahazero.observe.collapse`) comes first, whatever is shown. ``--compare PROMPT_ID`` /
``--compare-first-last`` put the same prompt at an early and a late step side by side;
``--json`` prints the selected records as JSON lines for scripting.

Example:
    $ ahazero traces runs/default                          # summary table + aha verdict
    $ ahazero traces runs/default --last --reflective      # reflective completions of the newest step
    $ ahazero traces runs/default --steps 1:10 --wrong --sort thinking --limit 3
    $ ahazero traces runs/default --last --checked --revised   # completions that checked and changed their answer
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
from typing import Any

from rich.console import Console
from rich.markup import escape

from ahazero.config.cli_numbers import check_count
from ahazero.observe.aha import detect_aha
from ahazero.observe.collapse import collapse_from_run
from ahazero.observe.records import Problem, describe_problems
from ahazero.observe.trace_select import compare_groups, resolve_run, select_steps
from ahazero.observe.trace_store import (
    StepCount,
    filter_traces,
    group_by_step,
    load_traces,
    set_aside_note,
    set_aside_traces,
    sort_traces,
    step_metrics,
    steps_with_traces,
    traces_dir,
)
from ahazero.observe.traces_view import render_compare, render_record, render_summary, visible_controls

__all__ = ["add_parser", "json_line", "run_traces"]


_DISPLAY_SORTS = ("thinking", "reward", "length")


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
    p.add_argument("--revised", action=argparse.BooleanOptionalAction, default=None,
                   help="only completions whose final answer differs from their first stated answer "
                        "(--no-revised: the others); see `ahazero behaviours`")
    p.add_argument("--checked", action=argparse.BooleanOptionalAction, default=None,
                   help="only completions that check an answer by recomputing it (--no-checked: the others)")
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


_RAW_CONTROLS = re.compile("[\x7f-\x9f]")


def json_line(record: dict[str, Any]) -> str:
    """One record as a JSON line with no raw control character (``json`` escapes C0; DEL and C1 too).

    Example:
        >>> print(json_line({"completion": "a\\x1b[2Jb\\x9bc"}))
        {"completion": "a\\u001b[2Jb\\u009bc"}
    """
    text = json.dumps(record, ensure_ascii=False)
    return _RAW_CONTROLS.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


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
        "revised": getattr(args, "revised", None),
        "checked": getattr(args, "checked", None),
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
    check_count("--limit", args.limit)
    check_count("--max-chars", args.max_chars, least=0)
    console = console or Console()
    problems: list[Problem] = []
    try:
        code = _run(args, console, problems)
    except BrokenPipeError:  # `ahazero traces RUN --json | head`
        return 0
    run = resolve_run(args.run)
    aside = set_aside_traces(run) if run is not None else []
    if problems or aside:
        notes = Console(stderr=True) if args.json else console  # keep --json output clean
        if problems:
            notes.print(f"[yellow]{escape(describe_problems(problems))}[/yellow]", soft_wrap=True)
        if aside:
            notes.print(f"[yellow]{escape(set_aside_note(aside))}[/yellow]", soft_wrap=True)
    return code


def _run(args: argparse.Namespace, console: Console, problems: list[Problem]) -> int:
    run = resolve_run(args.run)
    if run is None:
        console.print(f"[red]no run directory {escape(visible_controls(repr(args.run)))}[/red] "
                      "(give a path, or a name under runs/)")
        return 2
    available = steps_with_traces(run)
    if not available:
        console.print(f"[yellow]no traces in {traces_dir(run)}[/yellow]: logging.traces is off, or the run "
                      "has not finished its first step yet")
        return 1
    try:
        chosen = select_steps(available, step=args.step, steps=args.steps, last=args.last)
    except ValueError as err:
        console.print(f"[red]{escape(visible_controls(str(err)))}[/red]")
        return 2
    if not chosen:
        console.print(f"[yellow]no traced step matches[/yellow]; traced steps: {available[0]}–{available[-1]} "
                      f"({len(available)} files)")
        return 1

    if not args.json:  # the collapse alarm first, whatever is shown
        rows = None if (run / "metrics.jsonl").is_file() else step_metrics(run)
        for alarm in collapse_from_run(run, rows=rows):
            console.print(f"[bold red]collapse:[/bold red] {alarm.message}", highlight=False)

    filters = _filters(args)
    filtering = any(v is not None for v in filters.values())
    one_step = args.step is not None or args.last or len(chosen) == 1
    comparing = args.compare is not None or args.compare_first_last

    if comparing:
        records = load_traces(run, chosen, problems)
        early, late, note = compare_groups(records, args.compare)
        if not early:
            console.print(f"[yellow]{escape(visible_controls(note))}[/yellow]")
            return 1
        shown = [filter_traces(g, **filters) for g in (early, late)]
        if args.sort:
            shown = [sort_traces(g, args.sort, descending=not args.ascending) for g in shown]
        limit = 2 if args.limit is None else args.limit
        if args.json:
            for r in shown[0][:limit] + shown[1][:limit]:
                console.out(json_line(r), highlight=False)
            return 0
        console.print(render_compare(early, late, note, shown_early=shown[0], shown_late=shown[1],
                                     limit=limit, max_chars=args.max_chars))
        return 0

    if args.json or one_step or filtering or args.sort:
        records = filter_traces(load_traces(run, chosen, problems), **filters)
        if args.sort:
            records = sort_traces(records, args.sort, descending=not args.ascending)
        if args.json:
            for r in records[:args.limit] if args.limit is not None else records:
                console.out(json_line(r), highlight=False)
            return 0
        if not one_step:
            matching = {s: len(g) for s, g in group_by_step(records).items()}
            console.print(render_summary(step_metrics(run, chosen, problems), matching=matching,
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

    rows = step_metrics(run, chosen, problems)
    console.print(render_summary(rows, title=f"{run.name}: per-step behaviour from traces"))
    if chosen == available:
        counts = [StepCount(r["step"], r["n"], round((r.get("behaviour/reflection_rate") or 0.0) * r["n"]))
                  for r in rows]
        console.print(f"[bold]aha:[/bold] {detect_aha(counts).verdict}")
    console.print("[dim]read completions with --step N / --last / --steps A:B, filters (--correct, "
                  "--reflective, --grep ...), or --compare-first-last[/dim]")
    return 0
