"""The tiny model every rollout test decodes with."""

from __future__ import annotations

import pytest

from ahazero.models.loading import load_model_and_tokenizer


@pytest.fixture(scope="module")
def tiny(tiny_model_dir):
    """The tiny random Qwen2 (4 query heads, 2 key/value heads) in float32, in eval mode, and its tokenizer."""
    model, tok = load_model_and_tokenizer("tiny", dtype="float32")
    model.eval()
    return model, tok
