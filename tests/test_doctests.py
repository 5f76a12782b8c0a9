"""Every docstring example in the pipeline package runs (the rewards package has its own)."""

from __future__ import annotations

import doctest
import importlib
import os
import pkgutil

import pytest

import ahazero

MODULES = sorted(
    m.name for m in pkgutil.walk_packages(ahazero.__path__, "ahazero.")
    if not m.name.endswith("__main__")
)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name, tiny_model_dir, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # examples that write files write them here
    for var in ("AHAZERO_CACHE", "HF_HUB_OFFLINE"):  # restored after examples that set them
        monkeypatch.setenv(var, os.environ[var])
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE, verbose=False)
    assert result.failed == 0, f"{result.failed} failing example(s) in {name}"
