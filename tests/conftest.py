"""Shared fixtures: an isolated model cache (the tiny model is built once per session) and configs."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


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


@pytest.fixture(scope="session")
def tiny_model_dir(_offline_cache: Path) -> Path:
    """The tiny random Qwen2 model folder (built on first use)."""
    from ahazero.models.registry import prepare_named_model

    return prepare_named_model("tiny")
