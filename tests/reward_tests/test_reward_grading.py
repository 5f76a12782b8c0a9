"""The accuracy reward grades like the field (GSM8K and MATH answer styles) and still cannot be hacked.

Every case goes through the reward with its default options, the way a recipe uses it: the
answer in ``<answer>`` tags after a think block, the gold as a dataset column.
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
import time
from pathlib import Path

import pytest

from rewards import get_reward

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def accuracy():
    return get_reward("accuracy")


def _score(reward, answer: str, gold: str) -> float | None:
    return reward(completions=[f"<think>working</think> <answer>{answer}</answer>"], answer=[gold])[0]


@pytest.mark.parametrize(
    "answer",
    ["8", "$8", r"\$8", "8 cm", "8 hours", "x = 8", "8.00", "(8)", r"\boxed{8}", "The answer is 8", "8 dollars",
     r"8 \text{ cm}^2", "$8.00$", "8 apples.", r"\$ 8"],
)
def test_gsm8k_style_answers_with_gold_8_score_one(accuracy, answer):
    assert _score(accuracy, answer, "8") == 1.0


@pytest.mark.parametrize("answer", ["-$8", "$-8", r"-\$8", "x = -8 cm"])
def test_negative_amounts(accuracy, answer):
    assert _score(accuracy, answer, "-8") == 1.0
    assert _score(accuracy, answer, "8") == 0.0


@pytest.mark.parametrize("answer", ["50%", r"50\%", "50 percent", r"$50\%$"])
def test_a_percent_answers_a_gold_without_one(accuracy, answer):
    assert _score(accuracy, answer, "50") == 1.0
    assert _score(accuracy, "50", answer) == 1.0  # and the other way round
    assert _score(accuracy, answer, "0.5") == 0.0  # 50% is not the number 0.5 here


@pytest.mark.parametrize(
    ("answer", "gold"),
    [
        ("44 * 6", "264"),  # an expression for a numeric gold: the verifier must not do the arithmetic
        (r"44 \times 6", "264"),
        ("8 or 9", "8"),
        ("8, 9, 10", "8"),
        ("8 or nine", "8"),
        ("8 and a half", "8"),
        ("8 thousand", "8"),
        ("8 squared", "8"),
        ("2 pi", "2"),
        ("8x", "8"),
        ("((8))", "8"),  # one pair of parentheses, not any number of them
        ("James runs 3 sprints 3 times a week, 60 meters each", "540"),  # the problem restated
        ("3 * 3 * 60", "540"),
        (r"9 \text{ or } \boxed{8}", "8"),  # a box hidden behind another number
        (r"\text{\boxed{9} or \boxed{8}}", "8"),
        ("2x + z = 8", "8"),  # an equation, not a value
    ],
)
def test_hacks_stay_zero(accuracy, answer, gold):
    assert _score(accuracy, answer, gold) == 0.0


@pytest.mark.parametrize(
    ("answer", "gold"),
    [  # one-sentence answers the base and trained GSM8K models wrote in their tags (eval samples)
        ("Anne is 8 years old.", "8"),
        ("Brandon's iPhone is 8 years old.", "8"),
        ("Dean has $21 left.", "21"),
        ("Peter paid $7.00 in total.", "7"),
        ("10 days before the deadline.", "10"),
        ("Elliott took 2,000 steps during his jog.", "2000"),
        ("Violetta will get $20 - $10 = $10.", "10"),
        ("Peter paid $0.25 x 20 + $0.50 x 4 = $5 + $2 = $7", "7"),
        ("Carlos and Benji will pay a total of $30 * 3 + $18 * 5 = $90 + $90 = $180.", "180"),
        ("Patricia bought 15 more roses, so she had 6 + 15 = 21 roses now.", "21"),
        ("$6 + $8 + $20 = $34\nTherefore, Raphael spent a total of $34 on everything.", "34"),  # the work, then a line
    ],
)
def test_a_sentence_stating_one_number_scores_one(accuracy, answer, gold):
    assert _score(accuracy, answer, gold) == 1.0


@pytest.mark.parametrize(
    ("answer", "gold"),
    [
        ("Anne is not 8 years old.", "8"),
        ("Anne is about 8 years old.", "8"),
        ("Anne is 8 or 9 years old.", "8"),
        ("Anne is more than 8 years old.", "8"),
        ("Anne is 8 thousand days old.", "8"),
        ("She sells 9 eggs for $18.", "18"),  # two numbers: which one is the answer?
        ("Anne is 8. Bob is 9.", "9"),  # two sentences
        ("Anne is 8 years old.\nBob is 9. I hope it is correct.", "9"),
        ("Anne is 8 years old.\nI hope it is correct.", "8"),  # the last line states nothing
        ("The remainder is x = 8 apples", "8"),
        ("2x + z = 8 apples", "8"),
        ("Anne is 8 = 9 - 1 years old", "8"),
        ("Josh made a profit of $150,000.", "70000"),  # a wrong answer stays wrong
        ("Eliza's earnings for this week are $10 * 45 = $450.", "460"),
    ],
)
def test_sentences_that_hedge_list_or_compute_otherwise_stay_zero(accuracy, answer, gold):
    assert _score(accuracy, answer, gold) == 0.0


def test_several_answer_blocks_with_different_numbers_score_zero(accuracy):
    shotgun = "<think>guess</think> <answer>9</answer> <answer>8</answer>"
    repeated = "<think>sure</think> <answer>8</answer> <answer>8</answer>"
    worked = "<think>guess</think> <answer>It is 9.</answer> <answer>\nWork: 4 + 4.\nIt is 8.\n</answer>"
    assert accuracy(completions=[shotgun, repeated, worked], answer=["8", "8", "8"]) == [0.0, 1.0, 0.0]


def test_a_box_after_the_answer_blocks_is_the_final_answer(accuracy):
    """The base GSM8K model gave each person's count in tags, then boxed the asked one (gsm8k-test-00034)."""
    listed = ("<think>count</think> <answer>Raymond has 40 jewels.</answer> <answer>Aaron has 25 jewels.</answer> "
              "<answer>Siobhan has 23 jewels.</answer>\n\nTherefore, the number of jewels Siobhan has is \\boxed{23}.")
    assert accuracy(completions=[listed, listed], answer=["23", "25"]) == [1.0, 0.0]
    assert get_reward("accuracy", answer_source="tags")(completions=[listed], answer=["23"]) == [0.0]


def test_huge_decorated_inputs_are_refused_fast(accuracy):
    huge = ["8 " + "cm " * 100_000, "$" * 100_000 + "8", "x = " * 50_000 + "8", "8" + r"\," * 100_000,
            "(" * 50_000 + "8" + ")" * 50_000, "The answer is " * 20_000 + "8"]
    start = time.monotonic()
    assert accuracy(completions=[f"<answer>{h}</answer>" for h in huge], answer=["8"] * len(huge)) == [0.0] * 6
    assert time.monotonic() - start < 5.0  # a bound against hangs, not a speed target


@pytest.mark.parametrize(
    ("answer", "gold"),
    [
        ("10000", r"10,\!000"),
        (r"10,\!000", "10000"),  # symmetric
        (r"32,\!349", "32349"),
        (r"11,\! 111,\! 111,\! 100", "11111111100"),
        ("10{,}000", "10000"),
        ("1,000,000", "1000000"),
        (r"\$32,\!348", "32348"),
    ],
)
def test_thousands_styles_read_both_ways(accuracy, answer, gold):
    assert _score(accuracy, answer, gold) == 1.0
    assert _score(accuracy, gold, answer) == 1.0


def test_a_leading_zero_group_is_not_thousands(accuracy):
    assert _score(accuracy, "0,500", "500") == 0.0
    assert _score(accuracy, "500", "0,500") == 0.0
    assert _score(accuracy, "32, 349", "32349") == 0.0  # a comma and a space separate two numbers


@pytest.mark.parametrize(
    ("answer", "gold"),
    [
        ("90", r"90^\circ"),
        (r"90^{\circ}", "90"),
        ("90°", "90"),
        ("18.9", r"\$18.90"),
        ("15", r"15\mbox{ cm}^2"),
        (r"\cfrac{1}{3}", "1/3"),
        (r"\left( \frac{1}{3} \right)", "1/3"),
        (r"\frac{1}{3} \text{meters}", r"\frac{1}{3}"),
        (r"k = \frac{1}{3}", "1/3"),
        ("x = 5 + 5 + 1 = 11", "11"),
        (r"x \approx 11", "11"),
        ("0.333333", r"\frac{1}{3}"),  # a repeating fraction to six places
        ("Answer: $9$", "9"),
    ],
)
def test_math_style_decoration(accuracy, answer, gold):
    assert _score(accuracy, answer, gold) == 1.0


def test_a_gold_with_several_boxes_is_joined_never_its_last_box(accuracy):
    gold = r"$\boxed{1}\boxed{2}$"
    assert _score(accuracy, "1, 2", gold) == 1.0
    assert _score(accuracy, r"\{1, 2\}", gold) == 1.0
    assert _score(accuracy, "2", gold) == 0.0


def test_a_gold_whose_boxes_disagree_is_refused_loudly(accuracy, caplog):
    gold = r"first \boxed{1}. After a long detour through the rest of the argument, which takes a while: \boxed{2}"
    with caplog.at_level(logging.ERROR, logger="rewards.accuracy"):
        assert _score(accuracy, "1", gold) == 0.0
        assert _score(accuracy, "2", gold) == 0.0
    refusals = [r for r in caplog.records if "disagree" in r.getMessage()]
    assert len(refusals) == 1 and "first" in refusals[0].getMessage()  # once, naming the gold


def test_a_gold_written_as_a_solution_is_read_like_an_answer(accuracy):
    solution = r"So the sum is $5 + 4 + 2 = \boxed{11}$."
    assert _score(accuracy, "11", solution) == 1.0
    minerva = "Final Answer: The final answer is $28\\%$. I hope it is correct."
    assert _score(accuracy, "28", minerva) == 1.0
    torn = "The final answer is $3$. No wait, the final answer is $4$."
    assert _score(accuracy, "3", torn) == 0.0 and _score(accuracy, "4", torn) == 0.0


def test_a_final_answer_statement_after_the_boxes_is_the_answer(accuracy):
    completion = r"interest \boxed{200}, then \boxed{255}. Final Answer: The final answer is $10,455$. I hope it is correct."
    assert accuracy(completions=[completion], answer=["10455"]) == [1.0]


def test_agreement_script_reports_and_lists_disagreements(tmp_path):
    cases = tmp_path / "cases.jsonl"
    rows = [{"gold": "8", "pred": "$8", "expected": 1}, {"gold": "264", "pred": "44 * 6", "expected": 1},
            {"gold": "8", "pred": "9", "expected": 0, "source": "mine"}]
    cases.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "agreement.json"
    result = subprocess.run([sys.executable, str(REPO / "scripts" / "verifier_agreement.py"), str(cases),
                             "--option", "isolate=false", "--out", str(out)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "agreement: 2/3 = 66.7%" in result.stdout
    assert "44 * 6" in result.stdout and "not a written-out number" in result.stdout
    report = json.loads(out.read_text())
    assert report["agreed"] == 2 and [d["pred"] for d in report["disagreements"]] == ["44 * 6"]
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"gold": "8"}\n')
    failed = subprocess.run([sys.executable, str(REPO / "scripts" / "verifier_agreement.py"), str(bad)],
                            capture_output=True, text=True, timeout=120)
    assert failed.returncode != 0 and "bad.jsonl:1" in failed.stderr


def test_extraction_keeps_final_answers_with_default_settings(tmp_path):
    tests = tmp_path / "tests"
    tests.mkdir()
    (tests / "test_sample.py").write_text(
        "import pytest\n"
        "@pytest.mark.parametrize('gold,pred,expected', [('$8$', '8 cm', 1), ('$2$', r'so \\boxed{2}', 1),\n"
        "    ('$9$', 'We find that after a long computation the value is 9.', 1)])\n"
        "def test_a(gold, pred, expected): pass\n"
        "@pytest.mark.parametrize('gold,pred,expected,precision', [('1/3', '0.33', 1, 2)])\n"
        "def test_b(gold, pred, expected, precision): pass\n"
        "@pytest.mark.parametrize('gold,pred,strict,expected', [('$f(x)$', '$f(y)$', False, 1)])\n"
        "def test_c(gold, pred, strict, expected): pass\n"
    )
    out = tmp_path / "cases.jsonl"
    result = subprocess.run([sys.executable, str(REPO / "scripts" / "extract_math_verify_cases.py"), str(tests), str(out)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "2 of 5 cases apply" in result.stdout
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(r["pred"], r["source"]) for r in rows] == [("8 cm", "test_sample.py::test_a"),
                                                        (r"so \boxed{2}", "test_sample.py::test_a")]
