"""Fixtures of the config tests: reward modules written on the fly."""

from __future__ import annotations

import itertools
import sys
import textwrap

import pytest

_counter = itertools.count()


@pytest.fixture
def module(tmp_path, monkeypatch):
    """Write a reward module under a fresh name (importable from ``tmp_path``); return that name."""
    monkeypatch.syspath_prepend(str(tmp_path))
    names = []

    def write(source: str) -> str:
        name = f"user_rewards_{next(_counter)}"
        (tmp_path / f"{name}.py").write_text(textwrap.dedent(source))
        names.append(name)
        return name

    yield write
    for name in names:
        sys.modules.pop(name, None)
