"""The accuracy reward's ``answer_source``: ``any`` reads tags, else boxes; ``tags`` reads only answer tags."""

from pathlib import Path

import pytest

from rewards import get_reward
from rewards.parsing import extract_answer

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("text", "any_answer", "tags_answer"),
    [
        ("<think>6+2</think> <answer>8</answer>", "8", "8"),
        (r"<think>6+2</think> <answer>\boxed{8}</answer>", r"\boxed{8}", r"\boxed{8}"),
        (r"<think>6+2</think> The answer is \boxed{8}.", "8", None),  # the gsm8k2 model's habit
        (r"6+2 = 8. Final Answer: The final answer is $8$.", "$8$", None),
        ("<think>draft <answer>7</answer></think> so it is 8", None, None),  # tags inside the thinking
        ("<think>6+2</think> <answer>8</answer> then <answer>9</answer>", "8, 9", "8, 9"),  # a list, as with any
        ("<think>6+2</think> <answer>8", None, None),  # unclosed: no complete block
        (r"<think>6+2</think> <answer> </answer> \boxed{8}", "8", None),
        ("", None, None),
    ],
)
def test_extract_answer_by_source(text, any_answer, tags_answer):
    assert extract_answer(text) == any_answer
    assert extract_answer(text, "any") == any_answer
    assert extract_answer(text, "tags") == tags_answer


def test_extract_answer_refuses_an_unknown_source():
    with pytest.raises(ValueError, match="one of any, tags"):
        extract_answer("<answer>8</answer>", "box")


def test_tags_scores_only_answers_in_tags():
    completions = [
        r"<think>16-3-4=9, 9*2=18</think> So she makes \boxed{18} dollars.",
        r"<think>16-3-4=9, 9*2=18</think> <answer>\boxed{18}</answer>",
        "<think>16-3-4=9, 9*2=18</think> <answer>$18</answer>",
        "<think>16-3-4=9, 9*2=18</think> <answer>16</answer>",
        "no tags, no box: 18",
    ]
    golds = ["18"] * len(completions)
    assert get_reward("accuracy")(completions=completions, answer=golds) == [1.0, 1.0, 1.0, 0.0, 0.0]
    tags = get_reward("accuracy", answer_source="tags")
    assert tags(completions=completions, answer=golds) == [0.0, 1.0, 1.0, 0.0, 0.0]
    assert [tags.score(c, {"answer": "18"}) for c in completions] == [0.0, 1.0, 1.0, 0.0, 0.0]


def test_tags_logs_what_it_graded():
    logged = {}
    tags = get_reward("accuracy", answer_source="tags")
    tags(completions=[r"\boxed{4}", "<answer>4</answer>"], answer=["4", "4"],
         log_extra=lambda key, values: logged.setdefault(key, values),
         log_metric=lambda key, value: logged.setdefault(key, value))
    assert logged == {"extracted_answer": ["", "4"], "accuracy/extract_rate": 0.5}


@pytest.mark.parametrize(("value", "message"), [
    ("bogus", "option 'answer_source' must be one of any, tags, got 'bogus'"),
    ("Tags", "option 'answer_source' must be one of any, tags, got 'Tags'"),
    (1, "option 'answer_source' must be str, got int 1"),
])
def test_a_bad_answer_source_is_one_line_naming_the_option_and_the_choices(value, message):
    with pytest.raises(ValueError) as info:
        get_reward("accuracy", answer_source=value)
    assert message in str(info.value) and "\n" not in str(info.value)


def test_format_gate_passes_answer_source_to_its_accuracy():
    gate = get_reward("format_gate", format={"require_answer_tags": False}, accuracy={"answer_source": "tags"})
    assert gate(completions=[r"<think>2+2</think> \boxed{4}"], answer=["4"]) == [0.0]
    with pytest.raises(ValueError, match="option 'accuracy': reward 'accuracy': option 'answer_source'"):
        get_reward("format_gate", accuracy={"answer_source": "boxed"})


def test_ahazero_check_refuses_a_bad_answer_source_with_one_line_and_exit_2(capsys):
    from ahazero.cli import main

    code = main(["check", str(REPO / "configs" / "gsm8k.yaml"), "rewards.0.answer_source=bogus"])
    err = capsys.readouterr().err
    assert code == 2
    line = next(line for line in err.splitlines() if line.startswith("config error:"))
    assert "rewards.0" in line and "'answer_source'" in line and "any, tags" in line and "'bogus'" in line
    assert "Traceback" not in err
