"""Write docs/configuration-reference.md from the config schema, or check that it is current.

Usage:
    python scripts/gen_config_reference.py            # rewrite the page
    python scripts/gen_config_reference.py --check    # exit 1 when the page differs from the schema

The page is :func:`ahazero.config.reference.reference_markdown`: every section and key of the
config (type, default, valid values, help text), the checked ``grpo`` keys, the registered
rewards and tasks with their options, and the presets.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ahazero.config.reference import REFERENCE_PAGE, REGENERATE, reference_markdown

REPO = Path(__file__).resolve().parents[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only check; exit 1 when the page is stale")
    parser.add_argument("--page", type=Path, default=REPO / REFERENCE_PAGE, help=f"the page (default {REFERENCE_PAGE})")
    args = parser.parse_args()
    page = args.page
    text = reference_markdown()
    if args.check:
        if not page.is_file() or page.read_text(encoding="utf-8") != text:
            print(f"{page} is stale; regenerate it with: {REGENERATE}", file=sys.stderr)
            return 1
        print(f"{page} is current")
        return 0
    page.write_text(text, encoding="utf-8")
    print(f"wrote {page}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
