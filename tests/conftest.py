"""Shared fixtures: an isolated model cache (the tiny model is built once per session), a working folder
of its own for every test, and configs.

No test reads or writes the checkout's ``runs/``, ``sweeps/``, ``calibration/`` or ``logs/``, nor the
user's model cache (``~/.cache/ahazero``, ``$AHAZERO_CACHE``): the cache is a temp folder for the
session, and every test runs in a fresh temp working folder whose ``configs/`` links to the
checkout's, so ``configs/smoke.yaml`` and the default ``output_root: runs`` work as from the
checkout while what a run writes, and what a relative path finds, is the test's own. ``.ci/run``
checks this by running the suite again in a checkout that holds finished runs
(``scripts/fake_finished_run.py``).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import REPO


def _working_folder(factory: pytest.TempPathFactory, name: str) -> Path:
    """A fresh temp folder laid out like the checkout for what tests read: ``configs/`` (a link)."""
    work = factory.mktemp(name)
    (work / "configs").symlink_to(REPO / "configs", target_is_directory=True)
    return work


@pytest.fixture(scope="session", autouse=True)
def _offline_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Point the model cache at a temp dir and keep every test off the network."""
    cache = tmp_path_factory.mktemp("ahazero-cache")
    os.environ["AHAZERO_CACHE"] = str(cache)
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["HF_DATASETS_OFFLINE"] = "1"
    os.environ["TRANSFORMERS_OFFLINE"] = "1"
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    return cache


@pytest.fixture(scope="session", autouse=True)
def _session_working_folder(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The working folder of module- and session-scoped fixtures (set up before any test's own)."""
    before = os.getcwd()
    work = _working_folder(tmp_path_factory, "session-work")
    os.chdir(work)
    yield work
    os.chdir(before)


@pytest.fixture(autouse=True)
def _working_folder_of_the_test(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test starts in a fresh working folder: relative runs/, sweeps/ and calibration/ are its own."""
    work = _working_folder(tmp_path_factory, "work")
    monkeypatch.chdir(work)
    return work


@pytest.fixture(scope="session")
def tiny_model_dir(_offline_cache: Path) -> Path:
    """The tiny random Qwen2 model folder (built on first use)."""
    from ahazero.models.registry import prepare_named_model

    return prepare_named_model("tiny")
