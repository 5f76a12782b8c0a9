"""Extract the graded cases of Math-Verify's own tests that apply to the accuracy reward, as JSONL.

Math-Verify's tests (in its source distribution, ``tests/``) list ``(gold, prediction,
expected)`` triples in ``pytest.mark.parametrize`` tables. A case applies to the accuracy
reward when it uses Math-Verify's default comparison (no ``strict``, ``allow_set_relation_comp``
or a float precision other than 6) and its prediction is a final answer as the reward sees
one: it holds a ``\\boxed{}``, or it is a bare answer of at most 80 characters with at most
one word of three or more letters outside math delimiters and ``\\text{}`` (the reward reads
answers, it does not search prose). The tables are read with ``ast.literal_eval``; no test
code runs. The output feeds ``scripts/verifier_agreement.py``; keep it outside the repository.

Example:
    pip download math-verify==0.9.0 --no-deps --no-binary :all: -d /tmp/mv && tar xzf /tmp/mv/*.tar.gz -C /tmp/mv
    python scripts/extract_math_verify_cases.py /tmp/mv/math_verify-0.9.0/tests /tmp/mv_cases.jsonl
    python scripts/verifier_agreement.py /tmp/mv_cases.jsonl
"""

from __future__ import annotations

import argparse
import ast
import json
import re
import sys
from pathlib import Path

_MATH = re.compile(r"\$\$.*?\$\$|\$.*?\$|\\\(.*?\\\)|\\\[.*?\\\]|\\text\w*\{[^{}]*\}", re.DOTALL)
_WORD = re.compile(r"[A-Za-z]{3,}")
_NON_DEFAULT = ("strict", "allow_set_relation_comp")


def is_final_answer(pred: str) -> bool:
    """True for a prediction the reward can read as a final answer (a box, or a short bare answer)."""
    if "\\boxed" in pred or "\\fbox" in pred:
        return True
    return len(pred) <= 80 and len(_WORD.findall(_MATH.sub(" ", pred))) <= 1


def parametrized_cases(path: Path) -> list[dict]:
    """Every row of every ``pytest.mark.parametrize`` table in ``path`` whose values are literals."""
    text = path.read_text(encoding="utf-8")
    rows = []
    for node in ast.walk(ast.parse(text, filename=str(path))):
        if not isinstance(node, ast.FunctionDef):
            continue
        for decorator in node.decorator_list:
            if not (isinstance(decorator, ast.Call) and getattr(decorator.func, "attr", "") == "parametrize"):
                continue
            try:
                names = ast.literal_eval(decorator.args[0])
                values = ast.literal_eval(decorator.args[1])
            except (ValueError, SyntaxError, IndexError):
                continue  # a table built by code: skipped
            names = [n.strip() for n in (names.split(",") if isinstance(names, str) else names)]
            for value in values:
                row = dict(zip(names, value if isinstance(value, (tuple, list)) else (value,), strict=False))
                rows.append({**row, "source": f"{path.name}::{node.name}"})
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("tests", type=Path, help="Math-Verify's tests/ folder")
    parser.add_argument("out", type=Path, help="the JSONL file to write")
    args = parser.parse_args(argv)
    files = sorted(args.tests.glob("test_*.py"))
    if not files:
        parser.error(f"{args.tests}: no test_*.py files")
    total, kept = 0, []
    for path in files:
        for row in parametrized_cases(path):
            if "gold" not in row or "pred" not in row:
                continue
            total += 1
            expected = row.get("expected", row.get("result"))
            if expected is None or any(k in row for k in _NON_DEFAULT) or row.get("precision", 6) != 6:
                continue
            if is_final_answer(str(row["pred"])):
                kept.append({"gold": row["gold"], "pred": row["pred"], "expected": int(expected),
                             "source": row["source"]})
    args.out.write_text("".join(json.dumps(c) + "\n" for c in kept), encoding="utf-8")
    print(f"{len(kept)} of {total} cases apply; wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
