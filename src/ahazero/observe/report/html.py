"""HTML pieces of the report: escaping, number formatting, tables, figures, highlighted completion cards.

Example:
    >>> table(["a", "b"], [["1", "2"]])
    '<table><tr><th>a</th><th>b</th></tr><tr><td>1</td><td>2</td></tr></table>'
    >>> fmt(0.25, pct=True), fmt(None)
    ('25.0%', '–')
"""

from __future__ import annotations

import base64
import html
import math
from collections.abc import Sequence
from typing import Any

from ahazero.observe.report.data import slug
from ahazero.observe.trace_select import completion_spans, middle_cut
from ahazero.observe.trace_store import full_text

__all__ = ["CSS", "card", "esc", "fmt", "highlight_html", "img", "table"]


def highlight_html(record: dict[str, Any], *, max_chars: int = 1500) -> str:
    """The prefill + completion as escaped HTML, with thinking, answer and reflection phrases marked.

    Uses the viewer's spans (:func:`ahazero.observe.trace_select.completion_spans`): ``<mark>`` for
    reflection phrases, ``span.think`` / ``span.ans`` / ``span.tag`` for the rest.

    Example:
        >>> h = highlight_html({"completion": "<think>Wait, 2<3</think><answer>4</answer>", "reflections": ["wait"]})
        >>> '<span class="think"><mark>Wait</mark></span><span class="think">, 2&lt;3</span>' in h
        True
        >>> '<span class="ans">4</span>' in h and "<think>" not in h
        True
    """
    text, cut = middle_cut(full_text(record), max_chars)
    kinds: list[set[str]] = [set() for _ in text]
    spans = completion_spans(text, record.get("reflections") or [])
    if cut is not None:
        spans.append((cut[0], cut[1], "omitted"))
    for start, end, kind in spans:
        for i in range(start, end):
            kinds[i].add(kind)
    css = {"thinking": "think", "answer": "ans", "tag": "tag", "omitted": "omit"}
    out, i = [], 0
    while i < len(text):
        j = i
        while j < len(text) and kinds[j] == kinds[i]:
            j += 1
        chunk = html.escape(text[i:j], quote=False)
        classes = " ".join(css[k] for k in ("thinking", "answer", "tag", "omitted") if k in kinds[i])
        if "reflection" in kinds[i]:
            chunk = f"<mark>{chunk}</mark>"
        out.append(f'<span class="{classes}">{chunk}</span>' if classes else chunk)
        i = j
    return "".join(out)


CSS = """
body{font-family:-apple-system,'Segoe UI',Helvetica,Arial,sans-serif;margin:24px auto;max-width:1240px;color:#222;
  line-height:1.45;padding:0 16px}
h1{margin-bottom:4px} h2{border-bottom:2px solid #ddd;padding-bottom:4px;margin-top:36px}
.meta{color:#666;font-size:13px}
table{border-collapse:collapse;margin:8px 0 16px;font-size:13px}
th,td{border:1px solid #ddd;padding:4px 8px;text-align:right} th{background:#f4f4f4}
td:first-child,th:first-child{text-align:left}
.grid{display:grid;grid-template-columns:repeat(2,minmax(0,1fr));gap:12px}
figure{margin:0;border:1px solid #e3e3e3;border-radius:6px;padding:6px;background:#fff}
figure img{width:100%;height:auto;display:block} figcaption{font-size:13px;font-weight:600;margin-bottom:4px}
.verdict{font-size:16px;padding:10px 14px;border-left:5px solid #1f77b4;background:#f3f7fb;margin:10px 0}
.verdict.aha{border-color:#d62728;background:#fdf3f3}
.note{background:#fffbea;border-left:5px solid #e0b000;padding:8px 12px;margin:10px 0;font-size:14px}
.examples{display:grid;grid-template-columns:repeat(2,minmax(0,1fr));gap:12px}
.card{border:1px solid #ddd;border-radius:6px;padding:8px 10px;font-size:13px;background:#fcfcfc;min-width:0}
.card h4{margin:0 0 4px;font-size:13px}
.card .head{color:#555;margin-bottom:6px}
pre.completion{white-space:pre-wrap;word-break:break-word;font-size:12px;background:#fff;border:1px solid #eee;
  padding:6px;margin:0;max-height:420px;overflow:auto}
.think{color:#0b6e79} .ans{font-weight:700;color:#1a7f37;background:#e9f7ec} .tag{color:#999}
.omit{color:#999;font-style:italic} mark{background:#ffe14d;color:#000;font-weight:700;padding:0 1px}
.ok{color:#1a7f37;font-weight:600} .bad{color:#c62828;font-weight:600}
code{background:#f4f4f4;padding:0 3px}
"""


def esc(value: Any) -> str:
    return html.escape(str(value))


def fmt(value: Any, *, pct: bool = False, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int | float):
        if pct:
            return f"{100 * value:.1f}%"
        if isinstance(value, int):
            return f"{value}"
        return f"{value:.{digits}f}"
    return esc(value)


def img(png: bytes, title: str) -> str:
    data = base64.b64encode(png).decode("ascii")
    return (f'<figure id="{slug(title)}"><img alt="{esc(title)}" title="{esc(title)}" '
            f'src="data:image/png;base64,{data}"></figure>')


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    head = "".join(f"<th>{h}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def card(record: dict[str, Any], label: str) -> str:
    ok = record.get("correct")
    verdict = ('<span class="ok">✓ correct</span>' if ok else '<span class="bad">✗ wrong</span>'
               if ok is not None else "")
    refl = ", ".join(record.get("reflections") or []) or "none"
    step = f"step {record['step']} · " if "step" in record else ""
    facts = [f"answer <b>{esc(record.get('extracted_answer'))}</b>", f"gold {esc(record.get('gold'))}", verdict]
    if record.get("reward") is not None:
        facts.append(f"reward {fmt(record.get('reward'))}")
    facts += [f"{fmt(record.get('thinking_tokens'))} thinking tokens", f"reflections: <b>{esc(refl)}</b>"]
    return (
        f'<div class="card"><h4>{esc(label)}: {step}{esc(record.get("prompt_id") or record.get("id") or "")}</h4>'
        f'<div class="head">{esc(record.get("problem") or "")}<br>{" · ".join(f for f in facts if f)}</div>'
        f'<pre class="completion">{highlight_html(record)}</pre></div>'
    )
