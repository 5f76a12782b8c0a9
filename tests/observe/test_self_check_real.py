"""The self-check measure on real completions of the real model (greedy answers, read by hand).

``tests/reward_tests/data/gsm8k_real_outputs.jsonl`` holds 34 greedy completions of the base model
and of a GSM8K-trained model (step 40), see ``tests/reward_tests/test_reward_gsm8k_real.py``. What
the measure reads from them: not one completion checks an answer or revises one (the base
model's sub-answers in answer tags and the trained model's stated intermediate results are steps,
not candidates); the final answer is graded exactly as the accuracy reward grades it; a
completion that states an answer only inside its unclosed thinking has a candidate but no final
answer.

``data/arithmetic_base_completions.jsonl`` holds the first 16 held-out problems of
``configs/default.yaml`` answered greedily by its base model (qwen2.5-coder-0.5b-instruct, CPU,
``ahazero eval configs/default.yaml --model base --limit 16 --max-new-tokens 200``): 5 of them use
one of R1's reflection words ("we evaluate the expression"), none checks or revises an answer; a
completion cut off inside ``\boxed{417`` states no answer.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ahazero.cli import main
from ahazero.observe.behaviours import describe
from ahazero.observe.self_check import measure_self_checks, summarize_self_checks
from rewards import get_reward

DATA = Path(__file__).parents[1] / "reward_tests" / "data" / "gsm8k_real_outputs.jsonl"
CASES = [json.loads(line) for line in DATA.read_text(encoding="utf-8").splitlines() if line.strip()]


@pytest.fixture(scope="module")
def results():
    texts = [c["prefill"] + c["completion"] for c in CASES]
    rows = [{"answer": c["gold"], "problem": c["problem"]} for c in CASES]
    return dict(zip((f"{c['id']}@{c['source'].split('/')[1]}" for c in CASES),
                    measure_self_checks(texts, rows, grader=get_reward("accuracy")), strict=True))


def test_real_completions_never_check_or_revise(results):
    summary = summarize_self_checks(list(results.values()))
    assert summary["n"] == 34 and summary["check_rate"] == 0.0 and summary["revision_rate"] == 0.0
    assert summary["caught_error_rate"] == 0.0 and summary["accuracy_checked"] is None
    assert summary["accuracy_unchecked"] == sum(c["any"] for c in CASES) / 34


def test_the_final_answer_is_graded_as_the_accuracy_reward_grades_it(results):
    for case, s in zip(CASES, results.values(), strict=True):
        assert s.final_correct is bool(case["any"]), case["why"]
        if s.final_answer is not None:
            assert s.candidates and s.candidates[-1] == s.final_answer


def test_sub_answers_in_tags_and_an_answer_left_inside_the_thinking(results):
    jewels = results["gsm8k-test-00034@gsm8k"]  # <answer>Raymond has 40</answer> ... 25 ... 23, then \boxed{23}
    assert jewels.candidates == ["23"] and jewels.final_correct is True
    steps = results["gsm8k-test-00407@gsm8k"]  # "<answer>2000</answer></think>": nothing after the thinking
    assert steps.candidates == ["2000"] and steps.final_answer is None
    assert (steps.first_correct, steps.final_correct, steps.revised) == (True, False, False)
    interest = results["gsm8k-test-00380@gsm8k2"]  # "Therefore, the answer is:" then the tags
    assert interest.candidates == ["1825"] and interest.final_correct is False


def test_the_command_reads_the_same_file(tmp_path, capsys):
    path = tmp_path / "real.jsonl"
    path.write_text("".join(json.dumps({k: c[k] for k in ("id", "problem", "prefill", "completion", "gold")}) + "\n"
                            for c in CASES), encoding="utf-8")
    assert main(["behaviours", str(path), "--task", "gsm8k"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert len(lines) == 35 and lines[-1]["summary"]["check_rate"] == 0.0
    assert [r["final_correct"] for r in lines[:-1]] == [bool(c["any"]) for c in CASES]
    assert {"first_correct", "final_correct", "revised", "checked", "caught_error", "candidates"} <= set(lines[0])


ARITHMETIC = Path(__file__).parent / "data" / "arithmetic_base_completions.jsonl"


def test_real_arithmetic_completions_use_a_reflection_word_but_never_check():
    cases = [json.loads(line) for line in ARITHMETIC.read_text(encoding="utf-8").splitlines()]
    texts = [c["prefill"] + c["completion"] for c in cases]
    results = measure_self_checks(texts, [{"answer": c["gold"], "problem": c["problem"]} for c in cases],
                                  grader=get_reward("accuracy"))
    assert [describe(t).reflections for t in texts].count(["evaluate"]) == 5
    summary = summarize_self_checks(results)
    assert (summary["n"], summary["check_rate"], summary["revision_rate"]) == (16, 0.0, 0.0)
    reward = get_reward("accuracy")  # the final answers are graded as the reward grades the whole completion
    assert [r.final_correct for r in results] == [bool(reward(completions=[t], answer=[c["gold"]])[0])
                                                  for t, c in zip(texts, cases, strict=True)]
    by_problem = {c["problem"]: r for c, r in zip(cases, results, strict=True)}
    assert by_problem["Compute: (98 - 54) * 6"].candidates == ["264"]  # "... is \(\boxed{264}\)."
    assert by_problem["Compute: 62 + 46 * 75"].candidates == []  # cut off inside "\boxed{417"
    said = by_problem["Compute: 40 * 13"]  # "the answer to the question is 520." and no answer tags or box
    assert said.candidates == ["520"] and said.final_answer is None
    assert (said.first_correct, said.final_correct) == (True, False)
