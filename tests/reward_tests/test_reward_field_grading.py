r"""Answers the field's graders (math-verify, lm-eval) read, graded alike: a box that ends a computation, GSM8K's
``#### N`` line, "The answer is N.", and a factorial that is never read as its number.

Hand-written cases, and the GSM8K test split's own reference solutions (bundled with the
package), each of which ends in a ``#### N`` line and must grade as correct.
"""

from __future__ import annotations

import pytest

from ahazero.tasks.bundled import read_bundled
from ahazero.tasks.gsm8k import extract_gsm8k_answer
from rewards import get_reward
from rewards.parsing import extract_answer, stated_answer


@pytest.fixture(scope="module")
def graders():
    return {source: get_reward("accuracy", answer_source=source, isolate=False) for source in ("any", "tags")}


def grade(graders, completion, gold, source="any"):
    return graders[source](completions=[completion], answer=[gold])[0]


# (completion, gold, score under answer_source any, under tags)
CHAINS = [
    (r"<answer>3 \times 6 = \boxed{18}</answer>", "18", 1.0, 1.0),
    (r"<answer>\$3 \times 6 = \boxed{\$18}</answer>", "18", 1.0, 1.0),
    (r"<answer>3 \times \$6 = \$\boxed{18}</answer>", "18", 1.0, 1.0),
    (r"<answer>1,000 \times 2 = \boxed{2,000}</answer>", "2000", 1.0, 1.0),
    (r"<answer>\$1,000 \times 2 = \boxed{\$2,000}</answer>", "2000", 1.0, 1.0),
    (r"<answer>12 + 6 = \boxed{18}.</answer>", "18", 1.0, 1.0),
    (r"<answer>The total is \(3 \times 6 = \boxed{18}\).</answer>", "18", 1.0, 1.0),
    (r"<answer>x = 5 + 13 = \boxed{18}</answer>", "18", 1.0, 1.0),
    (r"<answer>3 \times 6 = \boxed{19}</answer>", "18", 0.0, 0.0),
    # several values, a hedge, or a box that is not the chain's end: left as written, so not graded as the box
    (r"<answer>x = 3 or x = \boxed{18}</answer>", "18", 0.0, 0.0),
    (r"<answer>9 \text{ or } \boxed{18}</answer>", "18", 0.0, 0.0),
    (r"<answer>a = 2, b = \boxed{18}</answer>", "18", 0.0, 0.0),
    (r"<answer>3 \times 6 = \boxed{18} \text{ or } 19</answer>", "18", 0.0, 0.0),
    (r"<answer>3 \times 6 \le \boxed{18}</answer>", "18", 0.0, 0.0),
]


@pytest.mark.parametrize(("completion", "gold", "any_", "tags"), CHAINS)
def test_a_box_that_ends_a_computation_is_its_answer(graders, completion, gold, any_, tags):
    assert (grade(graders, completion, gold), grade(graders, completion, gold, "tags")) == (any_, tags)


STATED = [
    ("Janet sells 16 - 3 - 4 = 9 eggs.\nShe makes 9 * 2 = $18.\n#### 18", "18", 1.0),
    ("The house cost 80,000 + 50,000 = 130,000.\n#### $1,000", "1000", 1.0),
    ("#### 17", "18", 0.0),
    ("She has 2 + 3 = 5 apples. The answer is 5.", "5", 1.0),
    ("So the answer is $12.50.", "12.5", 1.0),
    ("The final answer is 40 apples.", "40", 1.0),
    ("<think>2 + 3 = 5</think>\nThe answer is 5.", "5", 1.0),
    ("<think>2 + 3 = 5. The answer is 5.</think>", "5", 0.0),  # inside the thinking: not an answer
    ("The answer is 5 or 6.", "5", 0.0),
    ("#### 72\nOn second thought, the answer is 73.", "73", 1.0),  # the later statement
    ("<answer>4</answer>\nThe answer is 5.", "4", 1.0),  # answer tags come first
    (r"So \boxed{4}. Hmm, the answer is 5.", "4", 1.0),  # a box comes first
]


@pytest.mark.parametrize(("completion", "gold", "score"), STATED)
def test_gsm8k_and_chain_of_thought_answer_lines_are_read_when_nothing_else_is(graders, completion, gold, score):
    assert grade(graders, completion, gold) == score
    if "<answer>" not in completion:
        assert grade(graders, completion, gold, "tags") == 0.0  # tags only: never


def test_what_stated_answer_reads():
    assert stated_answer("I am not sure the answer is right.") is None
    assert stated_answer("The answer is:\n<answer>5</answer>") is None
    assert extract_answer("We get 7.\n####   7  ") == "7"
    assert extract_answer("The answer is 5. Let me check: 2 + 3 = 5.") == "5"


FACTORIALS = [
    (r"<answer>$8!$</answer>", "8", True, 0.0),
    (r"<answer>$8!$</answer>", "40320", False, 1.0),  # graded as 40320 where expressions may be answers
    (r"<answer>$8!$</answer>", "40320", True, 0.0),  # not a written-out number
    (r"\boxed{8!}", "8", True, 0.0),
    ("The answer is 8!", "8", True, 0.0),
    ("<answer>It is 8!</answer>", "8", True, 0.0),
    ("<answer>Anne is 8 years old!</answer>", "8", True, 1.0),  # an exclamation after a word is one
]


@pytest.mark.parametrize(("completion", "gold", "literal", "score"), FACTORIALS)
def test_a_factorial_is_never_read_as_its_number(completion, gold, literal, score):
    reward = get_reward("accuracy", literal_numbers=literal, isolate=False)
    assert reward(completions=[completion], answer=[gold]) == [score]


@pytest.fixture(scope="module")
def gsm8k_solutions():
    rows = read_bundled("gsm8k", "test")[:300]
    return [row["answer"] for row in rows], [extract_gsm8k_answer(row["answer"]) for row in rows]


def test_gsm8k_reference_solutions_grade_as_correct(graders, gsm8k_solutions):
    solutions, golds = gsm8k_solutions
    assert all("\n#### " in s for s in solutions)
    assert graders["any"](completions=solutions, answer=golds) == [1.0] * len(solutions)
    assert graders["tags"](completions=solutions, answer=golds) == [0.0] * len(solutions)
    shifted = golds[1:] + golds[:1]  # another problem's gold: wrong (a few golds repeat)
    scores = graders["any"](completions=solutions, answer=shifted)
    assert scores == [float(a == b) for a, b in zip(golds, shifted, strict=True)]
