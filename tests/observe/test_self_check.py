"""Self-correction read from the text: candidates, checks that recompute, revisions graded by the task's reward."""

from __future__ import annotations

import pytest

from ahazero.observe.self_check import (
    SELF_CHECK_KEYS,
    SelfCheck,
    grades_of,
    measure_self_checks,
    self_check_metrics,
    summarize_self_checks,
)
from ahazero.observe.self_check_reader import answer_value, read_self_check
from ahazero.observe.worked_math import read_math
from ahazero.stages.coldstart import chain_of_thought
from rewards import get_reward

ACCURACY = get_reward("accuracy", isolate=False)

#: The canonical code-made reflective trace of the shared contract (after the "<think>" prefill).
CANONICAL = """Compute (47 + 38) * 2 step by step.
Step 1: 47 + 38 = 75
Step 2: 75 * 2 = 150
So the answer is 150.
Let me check by undoing each step: 150 / 2 = 75, 75 - 38 = 37, but the problem has 47.
Wait, 47 + 38 is 85, not 75. Let me redo it.
Step 1: 47 + 38 = 85
Step 2: 85 * 2 = 170
So the answer is 170.
Let me check by undoing each step: 170 / 2 = 85, 85 - 38 = 47. It checks out.
</think>
<answer>170</answer>"""
#: The same without a slip, and the matched control without any check line.
NO_SLIP = "\n".join(CANONICAL.splitlines()[:1] + CANONICAL.splitlines()[6:])
CONTROL = "\n".join(line for line in NO_SLIP.splitlines() if not line.startswith("Let me check"))
PROBLEM = "Compute: (47 + 38) * 2"


def measure(text: str, gold: str, problem: str = "", grader=ACCURACY, **row) -> SelfCheck:
    [result] = measure_self_checks(["<think>\n" + text], [{"answer": gold, "problem": problem, **row}], grader=grader)
    return result


def test_the_canonical_reflective_trace_reads_as_the_contract_says():
    s = measure(CANONICAL, "170", PROBLEM)
    assert s.candidates == ["150", "170"]
    assert (s.first_correct, s.final_correct, s.revised, s.checked, s.caught_error) == (False, True, True, True, True)
    assert [(c["candidate"], c["agreed"], c["candidate_correct"]) for c in s.checks] == [
        ("150", False, False), ("170", True, True)]
    assert s.checks[0]["text"].startswith("Let me check by undoing each step: 150 / 2 = 75")


def test_the_same_trace_without_a_slip_and_the_control_without_checks():
    clean = measure(NO_SLIP, "170", PROBLEM)
    assert clean.candidates == ["170"] and [c["agreed"] for c in clean.checks] == [True]
    assert not clean.revised and not clean.caught_error and clean.first_correct is clean.final_correct is True
    control = measure(CONTROL, "170", PROBLEM)
    assert control.candidates == ["170"] and not control.checked and control.checks == []


#: Other shapes a code-made reflective trace may take: the check before the answer statement (as the
#: cold start writes it), a sign slip in a linear equation caught by substitution, a swapped digit in a chain.
SLIP_VARIANTS = [
    ("""Compute (47 + 38) * 2 step by step.
Step 1: 47 + 38 = 75
Step 2: 75 * 2 = 150
Let me check by undoing each step: 150 / 2 = 75, 75 - 38 = 37. That does not give 47.
Wait, 47 + 38 is 85, not 75.
Step 1: 47 + 38 = 85
Step 2: 85 * 2 = 170
Let me check by undoing each step: 170 / 2 = 85, 85 - 38 = 47. Every step checks out.
So the answer is 170.
</think>
<answer>170</answer>""", "Compute: (47 + 38) * 2", "170", ["150", "170"]),
    ("""Solve 3x + 7 = x - 5 for x.
Collect x on the left: subtract x on both sides: 2x + 7 = -5
Collect the numbers on the right: subtract 7 on both sides: 2x = 2
Divide both sides by 2: x = 2 / 2 = 1
Let me check with x = 1: the left side is 3 * 1 + 7 = 10, the right side is 1 - 5 = -4. They differ.
Wait, -5 - 7 is -12, not 2.
Collect the numbers on the right: subtract 7 on both sides: 2x = -12
Divide both sides by 2: x = -12 / 2 = -6
Let me check with x = -6: the left side is 3 * (-6) + 7 = -11, the right side is (-6) - 5 = -11. Both sides agree.
So the answer is -6.
</think>
<answer>-6</answer>""", "Solve for x: 3x + 7 = x - 5", "-6", ["1", "-6"]),
    ("""Start with 17. Add 23, multiply by 4, subtract 75.
Step 1: 17 + 23 = 40
Step 2: 40 * 4 = 160
Step 3: 160 - 75 = 58
Let me check by undoing each step: 58 + 75 = 133, 133 / 4 = 33.25, which is not a whole number.
Wait, 160 - 75 is 85, not 58.
Step 3: 160 - 75 = 85
Let me check by undoing each step: 85 + 75 = 160, 160 / 4 = 40, 40 - 23 = 17. Every step checks out.
So the answer is 85.
</think>
<answer>85</answer>""", "Start with 17. Add 23, multiply by 4, subtract 75.", "85", ["58", "85"]),
]


@pytest.mark.parametrize(("text", "problem", "gold", "candidates"), SLIP_VARIANTS, ids=["check-first", "linear", "chain"])
def test_slips_caught_in_other_trace_shapes(text, problem, gold, candidates):
    s = measure(text, gold, problem)
    assert s.candidates == candidates and s.caught_error and s.revised
    assert [(c["candidate"], c["agreed"]) for c in s.checks] == [(candidates[0], False), (candidates[1], True)]


def test_the_reading_does_not_need_the_problem_text():
    """The thinking restates the problem; its numbers are the quantities an undoing check lands on."""
    s = measure(CANONICAL, "170")
    assert [c["agreed"] for c in s.checks] == [False, True] and s.caught_error


def test_intermediate_results_of_a_multi_step_problem_are_steps_not_candidates():
    text = ("Start with 17.\nStep 1: 17 + 23 = 40\nStep 2: 40 * 4 = 160\nStep 3: 160 - 75 = 85\n"
            "Step 4: 85 / 5 = 17\n</think>\n<answer>17</answer>")
    s = measure(text, "17", "Start with 17. Add 23, multiply by 4, subtract 75, divide by 5.")
    assert s.candidates == ["17"] and not s.revised and not s.checked


def test_checking_words_without_recomputation_are_no_check():
    s = measure("12 * 4 = 48\nSo the answer is 48.\nLet me verify. Yes, that is correct.\n</think>\n<answer>48</answer>",
                "48", "Compute: 12 * 4")
    assert s.candidates == ["48"] and not s.checked and s.checks == []


def test_the_same_equation_written_again_is_no_second_route():
    s = measure("85 * 2 = 170\nSo the answer is 170.\nLet me double-check: 85 * 2 = 170. Correct.\n</think>\n"
                "<answer>170</answer>", "170")
    assert s.candidates == ["170"] and not s.checked
    again = measure("85 * 2 = 170\nSo the answer is 170.\nLet me double-check: 2 * 85 = 170. Correct.\n</think>\n"
                    "<answer>170</answer>", "170")
    assert [c["agreed"] for c in again.checks] == [True]


def test_a_check_that_talks_a_right_answer_into_a_wrong_one():
    text = ("12 * 4 = 48\nSo the answer is 48.\nLet me check: 48 / 4 = 12. Hmm, wait, that is wrong, 12 * 4 is 46.\n"
            "So the answer is 46.\n</think>\n<answer>46</answer>")
    s = measure(text, "48", "Compute: 12 * 4")
    assert s.candidates == ["48", "46"] and s.revised and (s.first_correct, s.final_correct) == (True, False)
    assert [(c["agreed"], c["candidate_correct"]) for c in s.checks] == [(False, True)]
    summary = summarize_self_checks([s])
    assert summary["right_to_wrong_rate"] == 1.0 and summary["net_corrections_per_100"] == -100.0
    assert summary["check_agreed_when_right"] == 0.0 and summary["check_disagreed_when_wrong"] is None


def test_a_linear_equation_checked_by_substitution_catches_a_slip():
    text = ("Solve 3x + 7 = 22.\nSubtract 7: 3x = 15\nDivide by 3: x = 15 / 3 = 6\n"
            "Let me check with x = 6: 3 * 6 + 7 = 25, not 22.\nWait, 15 / 3 = 5, not 6. So x = 5.\n"
            "Let me check with x = 5: 3 * 5 + 7 = 22. Correct.\n</think>\n<answer>5</answer>")
    s = measure(text, "5", "Solve for x: 3x + 7 = 22")
    assert s.candidates == ["6", "5"] and s.caught_error and (s.first_correct, s.final_correct) == (False, True)
    assert [(c["candidate"], c["agreed"]) for c in s.checks] == [("6", False), ("5", True)]


def test_the_cold_start_chains_read_as_one_answer_and_one_agreeing_check():
    for row, task in (({"problem": "Compute: 37 * 84 - (50 - 8)", "answer": "3066"}, "arithmetic"),
                      ({"problem": "Solve for x: 3x + 7 = x - 5", "answer": "-6"}, "linear_equation")):
        s = measure(chain_of_thought(row, task=task), row["answer"], row["problem"])
        assert s.candidates == [row["answer"]] and [c["agreed"] for c in s.checks] == [True]
        assert s.final_correct is True and not s.revised


def test_gsm8k_prose_states_sub_results_without_making_them_candidates():
    text = ("Chenny is 10 years old.\nAlyana is 4 years younger: 10 - 4 = 6\nSo, Alyana is 6 years old.\n"
            "<answer>Alyana is 6.</answer>\nAnne is 2 years older than Alyana: 6 + 2 = 8\nSo, Anne is 8 years old.\n"
            "</think>\n<answer>Anne is 8 years old.</answer>")
    s = measure(text, "8", "Chenny is 10 years old. Alyana is 4 years younger than Chenny. Anne is 2 years older "
                           "than Alyana. How old is Anne?")
    assert s.candidates == ["8"] and not s.revised and not s.checked and s.final_answer == "8"


def test_gsm8k_prose_with_a_verification():
    text = (r"Cody eats three times as many: \(3 \times 5 = 15\) cookies." "\n"
            r"Together: \[ 15 + 5 = 20 \text{ cookies} \]" "\nSo the answer is 20.\n"
            "To verify: 20 - 5 = 15, which is 3 times 5. Correct.\n</think>\n<answer>20</answer>")
    s = measure(text, "20", "Cody eats three times as many cookies as Amir eats. If Amir eats 5 cookies, how many "
                            "cookies do both of them eat together?")
    assert s.candidates == ["20"] and [c["agreed"] for c in s.checks] == [True] and s.final_correct


def test_an_undo_without_any_check_phrase_is_a_check():
    s = measure("85 + 75 = 160\nSo the answer is 160.\n160 - 75 = 85\n</think>\n<answer>160</answer>", "160")
    assert [(c["candidate"], c["agreed"]) for c in s.checks] == [("160", True)]
    slip = measure("85 + 75 = 150\nSo the answer is 150.\n150 - 75 = 75\nSo the answer is 160.\n</think>\n"
                   "<answer>160</answer>", "160")
    assert slip.candidates == ["150", "160"] and slip.caught_error and slip.checks[0]["agreed"] is False


def test_so_n_after_a_comma_and_a_correction_is_a_revision():
    s = measure("7 * 8 = 54, so 54.\nWait, 7 * 8 = 56, not 54. So 56.\n</think>\n<answer>56</answer>", "56")
    assert s.candidates == ["54", "56"] and s.revised and not s.checked and not s.caught_error


def test_no_mistakes_is_an_agreeing_verdict():
    s = measure("9 * 9 = 81\nSo the answer is 81.\nLet me double-check: 81 / 9 = 9. No mistakes.\n</think>\n"
                "<answer>81</answer>", "81")
    assert [c["agreed"] for c in s.checks] == [True]


def test_answers_are_compared_and_graded_by_value_not_by_text():
    s = measure(r"1.50 \times 8 = 12.00" "\nThe answer is $12.00.\n</think>\n<answer>12</answer>", "12")
    assert s.candidates == ["12.00"] and not s.revised and s.first_correct is s.final_correct is True
    latex = measure(r"\frac{1}{2} + \frac{1}{4} = \frac{3}{4}" "\nThe answer is $\\frac{3}{4}$.\n"
                    r"Let me check: \frac{3}{4} - \frac{1}{4} = \frac{1}{2}. Correct." "\n</think>\n"
                    r"<answer>\frac{3}{4}</answer>", "3/4")
    assert latex.candidates == [r"\frac{3}{4}"] and latex.checked and latex.final_correct


def test_countdown_candidates_are_expressions_graded_by_the_countdown_reward():
    text = ("50 + 25 + 7 + 3 = 85, not 96.\nThe answer is (50 - 3) * 2.\nWait, that uses no 7 and gives 94, "
            "not 96. Try 50 + 25 + 7 * 3 = 96.\nLet me check: 50 + 25 = 75, 7 * 3 = 21, 75 + 21 = 96. Correct.\n"
            "</think>\n<answer>50 + 25 + 7 * 3</answer>")
    s = measure(text, "96", "Using the numbers [3, 7, 25, 50], create an equation that equals 96.",
                grader=get_reward("countdown"), numbers=[3, 7, 25, 50], target=96)
    assert s.candidates == ["(50 - 3) * 2", "50 + 25 + 7 * 3"]
    assert (s.first_correct, s.final_correct, s.revised) == (False, True, True)
    assert [(c["candidate"], c["agreed"]) for c in s.checks] == [("50 + 25 + 7 * 3", True)]


def test_ungradable_without_a_gold_or_a_grader():
    [no_gold] = measure_self_checks(["<think>2 + 2 = 4</think><answer>4</answer>"], [{"answer": None}],
                                    grader=ACCURACY)
    [no_grader] = measure_self_checks(["<think>2 + 2 = 4</think><answer>4</answer>"], [{"answer": "4"}])
    for s in (no_gold, no_grader):
        assert s.candidates == ["4"] and s.first_correct is None and s.final_correct is None
    [no_answer] = measure_self_checks(["<think>2 + 2 = 4, so 4."], [{"answer": "4"}], grader=ACCURACY)
    assert no_answer.candidates == ["4"] and no_answer.first_correct is True
    assert no_answer.final_answer is None and no_answer.final_correct is False and not no_answer.revised


def test_the_callers_grades_of_the_final_answers_are_kept():
    [s] = measure_self_checks(["<think>So the answer is 3.\nWait, no. So the answer is 4.</think><answer>4</answer>"],
                              [{"answer": "4"}], grader=ACCURACY, correct=[0.0])
    assert s.final_correct is False and s.first_correct is False and s.revised


def test_grades_of_reads_a_failing_or_missing_grader_as_ungradable():
    def broken(completions, **kwargs):
        raise RuntimeError("boom")
    broken.required_columns = ("answer",)
    assert grades_of(broken, [("4", {"answer": "4"})]) == [None]
    assert grades_of(get_reward("countdown"), [("1 + 2", {"numbers": [1, 2]})]) == [None]  # no target


@pytest.mark.parametrize("text", [
    "(" * 20_000 + "1" + ")" * 20_000, "1 = " * 10_000, "1 + " * 10_000 + "= 5", "9" * 50_000 + " + 1 = 2",
    "so, " * 10_000 + "5", "Let me check: 1 + 1 = 2. " * 3_000, "Wait, 1 + 1 = 3, not 2. " * 3_000,
    "\\frac{" * 5_000 + "1" + "}" * 5_000, "\\boxed{" * 5_000, "x = " * 10_000 + "5", "plug " * 10_000,
    "<answer>" * 3_000 + "1" + "</answer>" * 3_000, "the answer is " * 5_000, "\x00\x1b[2J" * 1_000,
])
def test_adversarial_text_is_read_without_error(text):
    reading = read_self_check("<think>" + text)
    assert len(reading.candidates) <= 3 and all(len(c) <= 80 for c in reading.candidates)


def test_worked_math_reads_latex_units_and_rounding():
    line = read_math(r"\[ 6 \text{ truck tires} \times \$60/\text{truck tire} = \$360 \]")
    assert [str(e) for e in line.equations] == ["6 * 60 = 360"] and line.equations[0].correct
    assert read_math("1/3 = 0.33").equations[0].correct and not read_math("10 / 3 = 3").equations[0].correct
    assert not read_math(r"3,650 \times 0.10 = 3,650 \times 0.5 = 1,825").equations[0].correct
    assert read_math("3x + 7 = x - 5").equations == ()  # an equation in x is no worked arithmetic
    assert read_math("Alyana is 6 years old.").last_result is None


def test_answer_values():
    assert [answer_value(t) for t in ("Anne is 8 years old.", "$1,250.", r"\boxed{7}", "40, 25, 23")] == [
        "8", "1250", "7", "40,25,23"]
    assert answer_value("150, which is even", leading=True) == "150"
    assert answer_value("the one we found above", leading=True) is None
    assert answer_value(r"\(\boxed{417", leading=True) is None  # a box a truncated completion left open


def test_aggregates_and_metrics():
    results = [
        SelfCheck(candidates=["1", "2"], first_correct=False, final_correct=True, revised=True, checked=True,
                  checks=[{"candidate": "1", "agreed": False, "candidate_correct": False},
                          {"candidate": "2", "agreed": True, "candidate_correct": True}], caught_error=True),
        SelfCheck(candidates=["2"], first_correct=True, final_correct=True, checked=True,
                  checks=[{"candidate": "2", "agreed": False, "candidate_correct": True}]),
        SelfCheck(candidates=["3"], first_correct=False, final_correct=False),
        SelfCheck(candidates=["2", "3"], first_correct=True, final_correct=False, revised=True),
    ]
    s = summarize_self_checks(results)
    assert list(s) == list(SELF_CHECK_KEYS)
    assert s == {"n": 4, "revision_rate": 0.5, "wrong_to_right_rate": 0.25, "right_to_wrong_rate": 0.25,
                 "net_corrections_per_100": 0.0, "check_rate": 0.5, "check_agreed_when_right": 0.5,
                 "check_disagreed_when_wrong": 1.0, "accuracy_checked": 1.0, "accuracy_unchecked": 0.0,
                 "caught_error_rate": 0.25}
    metrics = self_check_metrics(results)
    assert "behaviour/n" not in metrics and metrics["behaviour/check_rate"] == 0.5
    assert summarize_self_checks([])["check_rate"] is None and self_check_metrics([]) == {}
    assert SelfCheck.from_dict(results[0].to_dict()) == results[0]
