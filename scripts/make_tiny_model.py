"""Build the tiny random Qwen2 model and tokenizer used by tests and the smoke config.

Usage:
    python scripts/make_tiny_model.py [OUT_DIR]

Without OUT_DIR the model goes to the named-model cache (what `model.name_or_path: tiny`
loads); with it, to that folder. Nothing is downloaded.
"""

from __future__ import annotations

import sys

from ahazero.models.registry import prepare_named_model
from ahazero.models.tiny import build_tiny_model


def main(argv: list[str]) -> int:
    path = build_tiny_model(argv[0]) if argv else prepare_named_model("tiny")
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
