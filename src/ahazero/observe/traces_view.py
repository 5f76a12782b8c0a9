"""Draw traced completions in the terminal with rich: one record, a per-step summary, early vs late.

The rendering half of ``ahazero traces`` (:mod:`ahazero.observe.traces_cli`); what to draw is
chosen by :mod:`ahazero.observe.trace_select`. Model text never reaches the terminal raw:
control characters (escape sequences, bells, carriage returns; every C0 character but
newline and tab, DEL and C1) are shown as visible escapes such as ``\\x1b``, and no record
text is read as rich markup.

Example:
    >>> import io
    >>> from rich.console import Console
    >>> c = Console(record=True, width=100, file=io.StringIO())
    >>> c.print(render_record({"step": 1, "completion": "<think>wait</think><answer>4</answer>", "reflections": ["wait"]}))
    >>> "wait" in c.export_text()
    True
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from rich.console import Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from ahazero.observe.trace_select import completion_spans, middle_cut
from ahazero.observe.trace_store import (
    full_text,
    is_reflective,
    summarize_records,
)

__all__ = ["STYLES", "highlight_completion", "render_compare", "render_record", "render_summary", "visible_controls"]


#: Rich styles of the highlighted parts of a completion.
STYLES = {
    "thinking": "cyan",
    "tag": "dim",
    "answer": "bold green",
    "reflection": "bold black on yellow",
    "omitted": "dim italic",
}


#: C0 control characters but tab and newline, DEL, and the C1 controls.
_CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def visible_controls(text: str) -> str:
    """``text`` with terminal control characters written out as ``\\xNN`` (newline and tab kept).

    Example:
        >>> print(visible_controls("a\\x1b[2Jb\\x1b]0;title\\x07c\\x9b d\\ne"))
        a\\x1b[2Jb\\x1b]0;title\\x07c\\x9b d
        e
    """
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def _visible(value: Any) -> Any:
    """A record value with every string in it passed through :func:`visible_controls`."""
    if isinstance(value, str):
        return visible_controls(value)
    if isinstance(value, list):
        return [_visible(v) for v in value]
    if isinstance(value, dict):
        return {_visible(k): _visible(v) for k, v in value.items()}
    return value


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
    text, cut = middle_cut(visible_controls(full_text(record)), max_chars)
    out = Text(text)
    for start, end, kind in completion_spans(text, _visible(record.get("reflections") or [])):
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


def _self_check_line(sc: dict[str, Any]) -> Text:
    """``self-check: 150 → 170 (revised) · checks: 150 ✗, 170 ✓ · caught an error`` for one record."""
    out = Text("\nself-check: ")
    out.append(" → ".join(str(c) for c in sc.get("candidates") or []) or "no answer stated")
    if sc.get("revised"):
        out.append(" (revised)", style="magenta")
    checks = [c for c in sc.get("checks") or [] if isinstance(c, dict)]
    if checks:
        out.append(" · checks: " + ", ".join(f"{c.get('candidate')} {'✓' if c.get('agreed') else '✗'}"
                                              for c in checks))
    if sc.get("caught_error"):
        out.append(" · caught an error", style="green")
    return out


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
    shown = record
    record = _visible(record)
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
    if isinstance(record.get("self_check"), dict):
        head.append_text(_self_check_line(record["self_check"]))
    title = (f"step {record.get('step', '?')} · {record.get('prompt_id', '?')} · "
             f"reward {_num(record.get('reward'))}")
    if record.get("advantage") is not None:
        title += f" (advantage {record['advantage']:+.2f})"
    return Panel(Group(head, Text(""), highlight_completion(shown, max_chars=max_chars)),
                 title=Text(title), title_align="left", border_style="green" if record.get("correct") else "blue")


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
    table = Table(title=Text(visible_controls(title), style="italic"), caption=caption, header_style="bold",
                  show_lines=False)
    table.add_column("step", justify="right")
    table.add_column("n", justify="right")
    if matching is not None:
        table.add_column("matching", justify="right")
    for name in ("reward", "accuracy", "format", "think tok", "p10–p90", "reflection", "refl. Dr.GRPO", "truncated",
                 "lang"):
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
            _pct(r.get("behaviour/reflection_rate_drgrpo")),
            _pct(r.get("behaviour/truncation_rate")),
            _num(r.get("behaviour/language_consistency"), 3),
        ]
        table.add_row(*(Text(visible_controls(cell)) for cell in cells))
    return table


def _group_header(group: Sequence[dict[str, Any]], label: str) -> Text:
    m = summarize_records(group)
    text = Text(visible_controls(f"{label}: step {group[0].get('step')}\n"), style="bold")
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
    table = Table(title=Text(visible_controls(note), style="italic"), expand=True, show_lines=True,
                  header_style="bold")
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
