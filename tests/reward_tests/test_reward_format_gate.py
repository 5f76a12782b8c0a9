"""format_gate: the format earns credit only together with a correct answer."""

from __future__ import annotations

import pickle

import pytest

from rewards import get_reward, required_columns, reward_kwargs

GOOD = "<think>12 * 3 = 36, minus 6 is 30</think>\n<answer>30</answer>"
WRONG = "<think>12 * 3 = 36</think>\n<answer>36</answer>"
UNFORMATTED = "12 * 3 - 6 = 30, so <answer>30</answer>"
TWO_ANSWERS = "<think>ok</think><answer>30</answer> <answer>30</answer>"


def test_credit_only_for_formatted_and_correct():
    gate = get_reward("format_gate", format={"require_answer_tags": True})
    assert gate(completions=[GOOD, WRONG, UNFORMATTED, TWO_ANSWERS, ""], answer=["30"] * 5) == [1.0, 0.0, 0.0, 0.0, 0.0]
    # without require_answer_tags the two-answer completion is formatted (as with think_format)
    assert get_reward("format_gate")(completions=[TWO_ANSWERS], answer=["30"]) == [1.0]


def test_a_group_of_wrong_answers_gets_no_format_variance():
    """The collapse mechanism: formatted and unformatted wrong answers must score the same."""
    gate = get_reward("format_gate", format={"require_answer_tags": True})
    fmt = get_reward("think_format", require_answer_tags=True)
    group = [WRONG, "36", "<think>restating the problem</think><answer>7</answer>", "no idea"]
    assert len(set(fmt(completions=group))) == 2  # the plain format reward varies within the group
    assert set(gate(completions=group, answer=["30"] * 4)) == {0.0}


def test_prefill_and_chat_messages_are_scored_like_the_other_rewards():
    gate = get_reward("format_gate", format={"require_answer_tags": True})
    chat = [[{"role": "assistant", "content": GOOD[len("<think>"):]}]]
    assert gate(completions=chat, answer=["30"], prefill=["<think>"]) == [1.0]


def test_options_are_the_inner_rewards_options_with_clear_errors():
    assert reward_kwargs("format_gate") == {"format": {}, "accuracy": {}}
    assert required_columns("format_gate") == ("answer",)
    with pytest.raises(ValueError, match="reward 'format_gate': option 'format': unknown option.*'require_tags'"
                                         ".*valid options: require_answer_tags"):
        get_reward("format_gate", format={"require_tags": True})
    with pytest.raises(ValueError, match="option 'accuracy': reward 'accuracy': option 'timeout_seconds' must be"):
        get_reward("format_gate", accuracy={"timeout_seconds": "2"})
    with pytest.raises(ValueError, match="reward 'format_gate': option 'format' must be dict, got bool True"):
        get_reward("format_gate", format=True)


def test_logging_hooks_are_left_to_the_outer_reward():
    logged = []
    gate = get_reward("format_gate")
    gate(completions=[GOOD], answer=["30"], log_extra=lambda *a: logged.append(a),
         log_metric=lambda *a: logged.append(a))
    assert logged == []


def test_pickles_by_its_options():
    gate = get_reward("format_gate", format={"require_answer_tags": True}, accuracy={"isolate": False})
    clone = pickle.loads(pickle.dumps(gate))
    assert vars(clone) == vars(gate)
    assert clone(completions=[GOOD, TWO_ANSWERS], answer=["30", "30"]) == [1.0, 0.0]


def test_config_validation_reports_bad_gate_options_before_any_model_loads():
    from helpers import base_config

    from ahazero.config.schema import ConfigError, validate_dict
    from ahazero.config.validate import check_config

    cfg = validate_dict(base_config(rewards=[{"name": "accuracy"},
                                             {"name": "format_gate", "format": {"require_tags": True}}]))
    with pytest.raises(ConfigError, match=r"rewards\.1: reward 'format_gate': option 'format': unknown option"):
        check_config(cfg, cuda=False)
