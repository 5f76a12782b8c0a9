"""`accuracy` on real GSM8K completions, each verdict read by hand.

``data/gsm8k_real_outputs.jsonl`` holds 34 greedy completions of the held-out GSM8K test split
from two H200 evaluations: the base model (``runs/gsm8k/eval/base-samples.jsonl``) and the
``gsm8k2`` run at step 40 (``runs/gsm8k2/eval/step-40-samples.jsonl``), the one that learned
to box its answer outside the ``<answer>`` tags. Long completions keep only their real tail
(``chars_cut`` characters were cut from the head, never a tag); each tail grades as the whole
completion did. ``any`` and ``tags`` are the expected scores under ``answer_source: any`` and
``answer_source: tags``; ``why`` says what the case shows.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from rewards import get_reward

DATA = Path(__file__).parent / "data" / "gsm8k_real_outputs.jsonl"
CASES = [json.loads(line) for line in DATA.read_text(encoding="utf-8").splitlines() if line.strip()]


@pytest.fixture(scope="module")
def graders():
    return {source: get_reward("accuracy", answer_source=source) for source in ("any", "tags")}


@pytest.mark.parametrize("case", CASES, ids=[f"{c['id']}-{c['source'].split('/')[1]}" for c in CASES])
def test_real_gsm8k_output_is_graded_as_read(graders, case):
    for source, reward in graders.items():
        score = reward(completions=[case["completion"]], answer=[case["gold"]], prefill=[case["prefill"]])[0]
        assert score == case[source], f"answer_source={source}: {case['why']}"


def test_the_real_cases_are_small_and_diverse():
    assert DATA.stat().st_size < 40_000 and len(CASES) >= 30
    pairs = {(c["any"], c["tags"]) for c in CASES}
    assert pairs == {(1, 1), (1, 0), (0, 0)}  # tags is never more generous than any
    assert any(c["truncated"] for c in CASES) and all(c["why"] and c["gold"].isdigit() for c in CASES)
