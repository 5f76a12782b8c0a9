"""Reading a samples file with bounded memory: one line at a time, long texts cut while they are read.

A samples file is JSON lines written by ``ahazero sample`` or ``ahazero coldstart``, or by
hand. A line may hold a text far longer than any model reads (a 100 MB completion): a line
of at most :data:`MAX_LINE_BYTES` is parsed whole; a longer one is streamed in chunks of
:data:`CHUNK_BYTES` through :class:`_Shortener`, which keeps at most ``max_text_chars``
bytes of each string value (cut at a character boundary, never inside an escape or between
the halves of a surrogate pair; keys are kept whole) and drops the rest before anything is
parsed. Either way every string of a record ends at most
``max_text_chars`` characters long, and :class:`Cut` says which field was cut, from what size.
What a line holds besides its texts is bounded too: a line whose JSON is still over
:data:`MAX_LINE_BYTES` once its texts are cut is an error.

A file that is not UTF-8 text (a NUL byte, bytes that do not decode), a line that is not a
JSON object, or one nested too deeply for the parser is a :class:`ReadError` naming the line.

Example:
    >>> import tempfile, pathlib
    >>> p = pathlib.Path(tempfile.mkdtemp()) / "s.jsonl"
    >>> _ = p.write_text('{"id": "a", "completion": "' + "x" * 50 + '"}\\n')
    >>> [(n, rec["completion"], cuts) for n, rec, cuts in read_records(p, max_text_chars=8)]
    [(1, 'xxxxxxxx', [Cut(field='completion', size=50, unit='characters')])]
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

__all__ = ["CHUNK_BYTES", "MAX_LINE_BYTES", "Cut", "ReadError", "read_records"]

MAX_LINE_BYTES = 8 * 2**20
"""A line up to this size is parsed whole; past it, its texts are cut as it streams in, and what remains must fit."""

CHUNK_BYTES = 2**20
"""How much of a long line is read at a time."""

_SPECIAL = re.compile(rb'["\\]')
_STRUCTURE = re.compile(rb"[{}\[\]:,]")
_HIGH_SURROGATES = {b"d8", b"d9", b"da", b"db"}  # \ud800-\udbff: the first half of a surrogate pair


class ReadError(ValueError):
    """Line ``line`` of the file cannot be read as a JSON object, for ``reason`` (``str()``: "line 3 <reason>")."""

    def __init__(self, line: int, reason: str) -> None:
        super().__init__(f"line {line} {reason}")
        self.line, self.reason = line, reason


@dataclass(frozen=True)
class Cut:
    """A text of a record that was cut: the top-level field holding it, and its size before (in ``unit``).

    A text cut while its line streamed in is measured in bytes of its JSON; others in characters.
    """

    field: str
    size: int
    unit: str = "characters"


class _TooLarge(Exception):
    pass


class _Shortener:
    """Copies the JSON text of one line, keeping at most ``limit`` bytes of each string; tracks the top-level key."""

    def __init__(self, limit: int, max_out: int) -> None:
        self.limit, self.max_out = limit, max_out
        self.out = bytearray()
        self.cuts: list[Cut] = []
        self.carry = b""
        self.in_string = False
        self.open = bytearray()  # the containers the text is in: '{' or '['
        self.expect_key = False
        self.is_key = False
        self.kept = 0  # bytes of the current string kept
        self.seen = 0  # bytes of the current string read
        self.key = bytearray()
        self.top_key = ""

    def _emit(self, data: bytes) -> None:
        self.out += data
        if len(self.out) > self.max_out:
            raise _TooLarge

    def _structure(self, segment: bytes) -> None:
        """Text between strings: braces, colons, commas, numbers; tracks whether the next string is a key."""
        self._emit(segment)
        for match in _STRUCTURE.finditer(segment):
            char = match.group()
            if char in (b"{", b"["):
                self.open += char
            elif char in (b"}", b"]"):
                if self.open:
                    self.open.pop()
            self.expect_key = bool(self.open) and self.open[-1] == b"{"[0] and char in (b"{", b",")

    def _keep(self, data: bytes) -> None:
        """Part of a string's content: kept up to the limit (at a UTF-8 character boundary); a key whole."""
        self.seen += len(data)
        room = self.limit - self.kept
        if self.is_key:
            self.key += data[: max(0, 200 - len(self.key))]
            self._emit(data)  # keys are short; a long one still counts against the line's cap
            return
        if room <= 0:
            return
        if len(data) > room:
            while room > 0 and data[room] & 0xC0 == 0x80:
                room -= 1
            self._emit(data[:room])
            self.kept = self.limit  # cut: nothing after the gap, not even a short escape
            return
        self.kept += len(data)
        self._emit(data)

    def _escape(self, unit: bytes) -> None:
        self.seen += len(unit)
        if self.is_key:
            self.key += unit[: max(0, 200 - len(self.key))]
            self._emit(unit)
            return
        if self.kept + len(unit) <= self.limit:
            self.kept += len(unit)
            self._emit(unit)
        else:
            self.kept = self.limit  # nothing after a cut escape: the string stays well-formed

    def _close_string(self) -> None:
        self._emit(b'"')
        if self.is_key:
            if len(self.open) == 1:
                try:
                    self.top_key = json.loads(b'"' + bytes(self.key) + b'"')
                except ValueError:  # a key cut inside an escape or a character
                    self.top_key = bytes(self.key).decode("utf-8", errors="replace")
        elif self.seen > self.kept:
            self.cuts.append(Cut(self.top_key or "(line)", self.seen, "bytes"))
        self.in_string, self.is_key = False, False

    def feed(self, chunk: bytes) -> None:
        data = self.carry + chunk
        self.carry = b""
        pos = 0
        while pos < len(data):
            if not self.in_string:
                quote = data.find(b'"', pos)
                if quote < 0:
                    self._structure(data[pos:])
                    return
                self._structure(data[pos:quote])
                self._emit(b'"')
                self.in_string, self.kept, self.seen = True, 0, 0
                self.is_key = self.expect_key
                if self.is_key:
                    self.key.clear()
                pos = quote + 1
                continue
            match = _SPECIAL.search(data, pos)
            if match is None:  # the string goes on in the next chunk; a character split there waits for it
                split = _incomplete_tail(data, pos)
                self._keep(data[pos:split])
                self.carry = data[split:]
                return
            self._keep(data[pos:match.start()])
            pos = match.start()
            if data[pos:pos + 1] == b'"':
                self._close_string()
                pos += 1
                continue
            size = 6 if data[pos + 1:pos + 2] == b"u" else 2
            if size == 6 and data[pos + 2:pos + 4].lower() in _HIGH_SURROGATES:
                size = 12  # a character outside the BMP is two escapes: never cut between them
            if pos + size > len(data):  # an escape split between chunks: finish it with the next one
                self.carry = data[pos:]
                return
            self._escape(data[pos:pos + size])  # a malformed escape fails when the line is parsed
            pos += size

    def text(self) -> bytes:
        return bytes(self.out) + self.carry


def _incomplete_tail(data: bytes, start: int) -> int:
    """Where a UTF-8 character cut off by the end of ``data`` begins (``len(data)`` when none is)."""
    for back in range(1, min(4, len(data) - start) + 1):
        byte = data[-back]
        if byte & 0xC0 != 0x80:  # the lead byte of the last character
            size = 1 if byte < 0x80 else 2 if byte >> 5 == 0b110 else 3 if byte >> 4 == 0b1110 else 4
            return len(data) - back if size > back else len(data)
    return len(data)


def _cut_parsed(record: Any, limit: int) -> tuple[Any, list[Cut]]:
    """``record`` with every string longer than ``limit`` characters cut to it (any depth, no recursion)."""
    cuts: list[Cut] = []
    if isinstance(record, str):
        return (record[:limit], [Cut("(line)", len(record))]) if len(record) > limit else (record, [])
    stack: list[tuple[Any, str]] = [(record, "")]
    while stack:
        node, top = stack.pop()
        items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
        for key, value in items:
            field = top or str(key)
            if isinstance(value, str) and len(value) > limit:
                node[key] = value[:limit]
                cuts.append(Cut(field, len(value)))
            elif isinstance(value, dict | list):
                stack.append((value, field))
    return record, cuts


def _decode(raw: bytes, number: int) -> str:
    if b"\0" in raw:
        raise ReadError(number, "holds NUL bytes: a binary file, not JSON lines")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise ReadError(number, f"is not UTF-8 text (byte {err.start}): a binary file, not JSON lines") from None


def _parse(text: str, number: int) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        raise ReadError(number, "is not a JSON object") from None
    except RecursionError:
        raise ReadError(number, "is nested too deeply to read") from None


def _long_line(fh: IO[bytes], head: bytes, number: int, limit: int) -> tuple[Any, list[Cut]]:
    """Stream the rest of a line longer than :data:`MAX_LINE_BYTES` through a :class:`_Shortener`."""
    shortener = _Shortener(limit, MAX_LINE_BYTES)
    chunk = head
    try:
        while True:
            ends = chunk.endswith(b"\n")
            shortener.feed(chunk)
            if ends or not chunk:
                break
            chunk = fh.readline(CHUNK_BYTES)
    except _TooLarge:
        while chunk and not chunk.endswith(b"\n"):  # skip the rest of the line, a chunk at a time
            chunk = fh.readline(CHUNK_BYTES)
        raise ReadError(number, f"holds more than {MAX_LINE_BYTES / 2**20:g} MiB of JSON besides its texts") from None
    return _parse(_decode(shortener.text(), number), number), shortener.cuts


def read_records(path: str | Path, *, max_text_chars: int) -> Iterator[tuple[int, dict[str, Any], list[Cut]]]:
    """``(line number, record, cuts)`` for every non-blank line of a JSON-lines file; :class:`ReadError` on a bad one.

    Every string in a record is at most ``max_text_chars`` characters long; ``cuts`` names the
    ones that were longer (empty for most records).
    """
    with Path(path).open("rb") as fh:
        number = 0
        while True:
            raw = fh.readline(MAX_LINE_BYTES + 1)
            if not raw:
                return
            number += 1
            if len(raw) > MAX_LINE_BYTES and not raw.endswith(b"\n"):
                record, cuts = _long_line(fh, raw, number, max_text_chars)
            else:
                text = _decode(raw, number)
                if not text.strip():
                    continue
                record, cuts = _cut_parsed(_parse(text, number), max_text_chars)
            if not isinstance(record, dict):
                raise ReadError(number, "is not a JSON object")
            yield number, record, cuts
