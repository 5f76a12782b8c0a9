"""What the commands print to a terminal: tables of numbers that fit its width, and text wrapped at words.

:func:`text_console` is the console for summaries and progress lines: on a terminal it wraps
lines at word boundaries, so no number is split across two lines; into a pipe or a file it
writes whole lines (nothing is inserted into them).

A :class:`FittedTable` is laid out when it is drawn, for the console's width. Every column is
as wide as its widest cell, so a number is never cut or wrapped; a header wraps at its spaces
(or at ``\\n``); columns are one space apart with a rule under the headers and no borders.
When the columns still do not fit, the ones marked ``optional`` are left out, the last
first, and a line under the table says which; where even the rest does not fit, each row
becomes a paragraph of ``header value`` pairs. The title is a line of its own above.

Example:
    >>> import io
    >>> from rich.console import Console
    >>> table = FittedTable([Column("step"), Column("accuracy"), Column("p10–p90", optional=True)],
    ...                     [["1", "100.0%", "12–345"], ["10", "87.5%", "9–1024"]])
    >>> c = Console(width=20, file=io.StringIO(), record=True)
    >>> c.print(table)
    >>> print(c.export_text().rstrip())
    step accuracy
    ─────────────
       1   100.0%
      10    87.5%
    (p10–p90 left out at
    this width: a wider
    terminal shows them)
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from dataclasses import dataclass

from rich import box
from rich.cells import cell_len
from rich.console import Console, ConsoleOptions, RenderResult
from rich.table import Table
from rich.text import Text

__all__ = ["Column", "FittedTable", "text_console"]


def text_console(*, stderr: bool = False, markup: bool = False) -> Console:
    """A console (no highlighting; markup only when asked) that wraps at words on a terminal, else keeps lines whole.

    Example:
        >>> import sys
        >>> text_console().soft_wrap == (not sys.stdout.isatty())
        True
    """
    stream = sys.stderr if stderr else sys.stdout
    return Console(stderr=stderr, markup=markup, highlight=False, soft_wrap=not stream.isatty())


@dataclass(frozen=True)
class Column:
    """One column: its header (wrapped at spaces or ``\\n``), alignment, whether it may be left out,
    and whether its cells are words that may wrap (names, statuses; numbers never do)."""

    header: str
    justify: str = "right"
    optional: bool = False
    wraps: bool = False


def _width(cell: str | Text, *, wraps: bool = False) -> int:
    """The width a cell needs: its longest line, or its longest word when it may wrap."""
    text = cell.plain if isinstance(cell, Text) else str(cell)
    parts = text.split() if wraps else text.split("\n")
    return max((cell_len(part) for part in parts), default=0)


class FittedTable:
    """Rows of cells under :class:`Column` headers, laid out for the console's width when drawn.

    Example:
        >>> t = FittedTable([Column("n"), Column("reflection rate", optional=True)], [["512", "100.0%"]])
        >>> [c.header for c in t.columns_for(80)], [c.header for c in t.columns_for(5)]
        (['n', 'reflection rate'], ['n'])
    """

    def __init__(self, columns: Sequence[Column], rows: Sequence[Sequence[str | Text]], *,
                 title: str | Text | None = None, caption: str | None = None) -> None:
        self.columns = list(columns)
        self.rows = [list(row) for row in rows]
        self.title, self.caption = title, caption

    def _column_width(self, index: int) -> int:
        column = self.columns[index]
        return max([_width(column.header, wraps=True), *(_width(row[index], wraps=column.wraps) for row in self.rows)])

    def _kept(self, width: int) -> list[int]:
        kept = list(range(len(self.columns)))
        optional = [i for i in kept if self.columns[i].optional]
        while optional and sum(self._column_width(i) for i in kept) + len(kept) - 1 > width:
            kept.remove(optional.pop())
        return kept

    def columns_for(self, width: int) -> list[Column]:
        """The columns drawn at ``width`` (optional ones left out, the last first, until the rest fit)."""
        return [self.columns[i] for i in self._kept(width)]

    def widths(self, width: int) -> dict[int, int]:
        """Each drawn column's width at ``width``: what it needs, then what room is left goes to wrapped cells,
        then to wrapped headers (in column order).

        Example:
            >>> t = FittedTable([Column("status", justify="left", wraps=True), Column("n")], [["failed (exit 1)", "7"]])
            >>> t.widths(80), t.widths(12)
            ({0: 15, 1: 1}, {0: 10, 1: 1})
        """
        kept = self._kept(width)
        widths = {i: self._column_width(i) for i in kept}
        spare = width - sum(widths.values()) - (len(kept) - 1)
        cells = {i: max([_width(row[i]) for row in self.rows] or [0]) if self.columns[i].wraps else 0 for i in kept}
        headers = {i: _width(self.columns[i].header) for i in kept}
        for full in (cells, headers):
            for i in kept:
                grow = max(0, min(full[i] - widths[i], spare))
                widths[i] += grow
                spare -= grow
        return widths

    def fits(self, width: int) -> bool:
        """Whether the drawn columns fit ``width`` (else each row is drawn as a paragraph of ``header value``)."""
        widths = self.widths(width)
        return sum(widths.values()) + len(widths) - 1 <= width

    def table(self, width: int) -> Table:
        """The rich Table (without its title) for a console ``width`` columns wide."""
        widths = self.widths(width)
        table = Table(caption=self.caption, box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False, padding=(0, 0),
                      header_style="bold", caption_justify="left")
        for i, w in widths.items():
            column = self.columns[i]
            table.add_column(column.header, justify=column.justify, min_width=w, max_width=w)
        for row in self.rows:
            table.add_row(*(row[i] if isinstance(row[i], Text) else Text(str(row[i])) for i in widths))
        return table

    def paragraphs(self) -> list[Text]:
        """Each row as one paragraph of ``header value`` pairs (what a console too narrow for the columns gets)."""
        out = []
        for row in self.rows:
            text = Text()
            for column, cell in zip(self.columns, row, strict=True):
                if text:
                    text.append(" · ")
                text.append(column.header.replace("\n", " ") + " ", style="bold")
                text.append_text(cell if isinstance(cell, Text) else Text(str(cell)))
            out.append(text)
        return out

    def left_out(self, width: int) -> str | None:
        """The line that names the columns left out at ``width`` (None when all are drawn)."""
        kept = self._kept(width)
        names = [c.header.replace("\n", " ") for i, c in enumerate(self.columns) if i not in kept]
        return f"({', '.join(names)} left out at this width: a wider terminal shows them)" if names else None

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        width = options.max_width
        if self.title is not None:
            yield self.title if isinstance(self.title, Text) else Text(self.title, style="italic")
        if not self.fits(width):
            yield from self.paragraphs()
            if self.caption:
                yield Text(self.caption)
            return
        yield self.table(width)
        note = self.left_out(width)
        if note:
            yield Text(note, style="dim")
