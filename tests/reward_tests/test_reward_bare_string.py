"""A bare string passed as ``completions`` is one completion (with a warning), never one completion per character."""

from __future__ import annotations

import logging

import pytest

from rewards import available_rewards, get_reward


@pytest.mark.parametrize("name", available_rewards())
def test_every_registry_reward_scores_a_bare_string_once(name, caplog):
    reward = get_reward(name, isolate=False) if name == "accuracy" else get_reward(name)
    columns = {"answer": "4", "numbers": [[1, 3]], "target": [4]}
    with caplog.at_level(logging.WARNING, logger="rewards.parsing"):
        scores = reward(completions="<think>1 + 3 = 4</think>\n<answer>4</answer>", **columns)
    assert len(scores) == 1
    assert "completions is a single str, not a list: scored as one completion" in caplog.text


def test_the_score_is_the_one_a_list_gets():
    reward = get_reward("accuracy", isolate=False)
    text = "<think>2 + 2</think><answer>4</answer>"
    assert reward(completions=text, answer=["4"]) == reward(completions=[text], answer=["4"]) == [1.0]
    message = {"role": "assistant", "content": text}
    assert reward(completions=message, answer=["4"]) == [1.0]  # one chat message, not its keys
    assert reward(completions=text.encode(), answer=["4"]) == [1.0]
