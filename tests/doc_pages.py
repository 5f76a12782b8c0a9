"""The user docs (README.md and docs/*.md) as the doc tests read them: code, prose, headings."""

from __future__ import annotations

import re
from pathlib import Path

from helpers import REPO

#: Every page a user reads: the README and the docs folder.
DOC_PAGES: list[Path] = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]

_FENCE = re.compile(r"^( *)```(\w*)\n(.*?)^\1```", re.S | re.M)  # also a block indented in a list item
_SPAN = re.compile(r"`([^`\n]+(?:\n[^`\n]+)?)`")


def page_name(page: Path) -> str:
    """The page's path in the repository (``README.md``, ``docs/results.md``)."""
    return page.relative_to(REPO).as_posix()


def fenced_blocks(text: str, language: str) -> list[str]:
    """The bodies of the fenced code blocks of ``language`` (``bash``, ``python``, ...)."""
    return [body for _, lang, body in _FENCE.findall(text) if lang == language]


def shell_lines(text: str) -> list[str]:
    """The lines of the page's ``bash`` blocks, with backslash continuations joined."""
    return [line for block in fenced_blocks(text, "bash") for line in block.replace("\\\n", " ").splitlines()]


def inline_code(text: str) -> list[str]:
    """The page's inline code spans outside fenced blocks (a span may wrap onto a second line)."""
    return [span.replace("\n", " ") for span in _SPAN.findall(_FENCE.sub("", text))]


def prose(text: str) -> str:
    """The page without its fenced blocks and inline code spans (where links are read)."""
    return _SPAN.sub("", _FENCE.sub("", text))


def anchors(text: str) -> set[str]:
    """The anchors GitHub gives the page's headings (``## How `accuracy` grades`` -> ``how-accuracy-grades``).

    Repeated headings get ``-1``, ``-2``, ... as on GitHub.
    """
    found: set[str] = set()
    for heading in re.findall(r"^#{1,6} +(.+?) *#* *$", _FENCE.sub("", text), re.M):
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        candidate, n = slug, 0
        while candidate in found:
            n += 1
            candidate = f"{slug}-{n}"
        found.add(candidate)
    return found
