"""How often the accuracy reward agrees with a list of graded (gold, prediction) cases.

Each line of ``CASES.jsonl`` is ``{"gold": ..., "pred": ..., "expected": 0 or 1}`` (other keys,
such as ``source``, are shown with disagreements). The prediction is scored as a completion:
as it stands when it holds ``<answer>`` tags or a ``\\boxed{}``, else inside
``<answer>...</answer>`` (a final answer written in the recipes' format). Prints the agreement,
the counts by expected verdict, and every disagreement with the answer the reward extracted
and its reason; ``--out`` writes the same as JSON.

Example:
    python scripts/verifier_agreement.py cases.jsonl
    python scripts/verifier_agreement.py cases.jsonl --option literal_numbers=false --out agreement.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def read_cases(path: Path) -> list[dict]:
    """The cases of a JSONL file; a clear error naming the file and line for a bad one."""
    cases = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            case = json.loads(line)
        except json.JSONDecodeError as exc:
            raise SystemExit(f"{path}:{number}: not JSON ({exc.msg})") from None
        if not isinstance(case, dict) or not {"gold", "pred", "expected"} <= case.keys():
            raise SystemExit(f"{path}:{number}: expected an object with 'gold', 'pred' and 'expected'")
        if case["expected"] not in (0, 1, True, False):
            raise SystemExit(f"{path}:{number}: 'expected' must be 0 or 1, got {case['expected']!r}")
        cases.append(case)
    if not cases:
        raise SystemExit(f"{path}: no cases")
    return cases


def as_completion(pred: str) -> str:
    """The prediction as the reward reads it: as is with answer tags or a box, else in answer tags."""
    if "<answer>" in pred or "\\boxed" in pred or "\\fbox" in pred:
        return pred
    return f"<answer>{pred}</answer>"


def parse_option(text: str) -> tuple[str, object]:
    key, sep, value = text.partition("=")
    if not sep:
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE, got {text!r}")
    lowered = value.strip().lower()
    if lowered in ("true", "false"):
        return key.strip(), lowered == "true"
    try:
        return key.strip(), float(value) if "." in value or "e" in lowered else int(value)
    except ValueError:
        return key.strip(), value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("cases", type=Path, help="JSONL file of {gold, pred, expected} cases")
    parser.add_argument("--option", action="append", type=parse_option, default=[], metavar="KEY=VALUE",
                        help="an option of the accuracy reward (repeatable), e.g. literal_numbers=false")
    parser.add_argument("--out", type=Path, help="write the results as JSON here")
    args = parser.parse_args(argv)
    if not args.cases.is_file():
        parser.error(f"{args.cases}: no such file")

    from rewards import get_reward
    from rewards.accuracy import check_answers
    from rewards.parsing import extract_answer

    options = dict(args.option)
    try:
        reward = get_reward("accuracy", **options)
    except ValueError as exc:
        parser.error(str(exc))
    cases = read_cases(args.cases)
    completions = [as_completion(str(c["pred"])) for c in cases]
    golds = [str(c["gold"]) for c in cases]
    scores = reward(completions=completions, answer=golds)

    disagreements = []
    by_expected = {0: [0, 0], 1: [0, 0]}  # expected -> [agreed, total]
    for case, completion, score in zip(cases, completions, scores, strict=True):
        expected = int(case["expected"])
        agreed = int(score or 0) == expected
        by_expected[expected][1] += 1
        by_expected[expected][0] += agreed
        if not agreed:
            answer = extract_answer(completion, reward.answer_source)
            [(_ok, reason)] = check_answers([(answer, str(case["gold"]))], timeout_seconds=reward.timeout_seconds,
                                            literal_numbers=reward.literal_numbers, isolate=reward.isolate)
            disagreements.append({**case, "got": score, "extracted": answer, "reason": reason})

    agreed = len(cases) - len(disagreements)
    print(f"agreement: {agreed}/{len(cases)} = {100 * agreed / len(cases):.1f}%"
          f"  (expected 1: {by_expected[1][0]}/{by_expected[1][1]}, expected 0: {by_expected[0][0]}/{by_expected[0][1]})")
    for d in disagreements:
        extra = f"  [{d['source']}]" if "source" in d else ""
        print(f"- expected {d['expected']}, got {d['got']}: gold {d['gold'][:80]!r} pred {d['pred'][:80]!r} "
              f"-> extracted {str(d['extracted'])[:60]!r} ({d['reason']}){extra}")
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps({"cases": len(cases), "agreed": agreed, "options": options,
                                        "disagreements": disagreements}, indent=2) + "\n", encoding="utf-8")
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
