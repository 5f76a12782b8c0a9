"""A custom reward that raises, exits, or returns NaN, huge ints or generators fails loudly, naming itself and the step.

Unit cases go through the guard that ``check_config`` puts around a ``module:function`` reward;
end-to-end cases train the tiny model through ``ahazero train`` (in process, and once in a
subprocess for an ``os._exit`` that no guard can catch).
"""

from __future__ import annotations

import itertools
import logging
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml
from helpers import REPO, base_config

from ahazero.cli import main
from ahazero.config.exit_guard import ExitRequested, UnfinishedRunError, exits_raise, unfinished_run
from ahazero.config.reward_output import RewardError, RewardOutputError, check_reward_output
from ahazero.config.schema import ConfigError, validate_dict
from ahazero.config.validate import check_config

BAD_REWARDS = """
import os
import sys

def raises(completions, **kwargs):
    raise RuntimeError("no GPU for the judge")

def key_error(completions, **kwargs):
    return [{"score": 1}["points"] for _ in completions]

def recurses(completions, **kwargs):
    return recurses(completions, **kwargs)

def all_nan(completions, **kwargs):
    return [float("nan")] * len(completions)

def one_nan(completions, **kwargs):
    return [float("nan")] + [1.0] * (len(completions) - 1)

def nan_and_none(completions, **kwargs):
    return [float("nan")] + [None] * (len(completions) - 1)

def all_none(completions, **kwargs):
    return [None] * len(completions)

def huge_int(completions, **kwargs):
    return [10 ** 400] * len(completions)

def endless(completions, **kwargs):
    def forever():
        while True:
            yield 1.0
    return forever()

def iterator(completions, **kwargs):
    return iter([1.0] * len(completions))

def exits_now(completions, **kwargs):
    os._exit(0)

def sys_exits(completions, **kwargs):
    sys.exit(0)

def fine(completions, **kwargs):
    return [0.5] * len(completions)
"""


def guarded(name: str, function: str, **config):
    data = base_config(rewards=[{"name": "accuracy"}, {"name": f"{name}:{function}", "weight": 0.5}], **config)
    return check_config(validate_dict(data), cuda=False).reward_funcs[1]


def call(reward, n=4, step=None):
    state = None if step is None else SimpleNamespace(global_step=step - 1)
    return reward(prompts=["p"] * n, completions=["c"] * n, answer=["1"] * n, trainer_state=state)


@pytest.mark.parametrize(("function", "cause"), [
    ("raises", "raised RuntimeError: no GPU for the judge"),
    ("key_error", "raised KeyError: 'points'"),
    ("recurses", "raised RecursionError: maximum recursion depth exceeded"),
    ("exits_now", "called os._exit(0)"),
    ("sys_exits", "called sys.exit(0)"),
])
def test_a_reward_that_raises_or_exits_is_a_reward_error_with_its_name_and_step(module, function, cause):
    name = module(BAD_REWARDS)
    with pytest.raises(RewardError) as info:
        call(guarded(name, function), step=7)
    assert str(info.value).startswith(f"rewards.1 ('{name}:{function}') at step 7 {cause}")
    assert "on_reward_error: skip" in str(info.value)


@pytest.mark.parametrize(("function", "message"), [
    ("all_nan", "returned NaN for all 4 completions: no score at all"),
    ("nan_and_none", "returned NaN for 1 of the 4 completions and None for the rest: no score at all"),
    ("huge_int", "returned an int too large for a float (1000"),
    ("endless", "returned a generator; a reward returns a list with one number (or None) per completion, 4 here"),
    ("iterator", "returned a list_iterator; a reward returns a list"),
])
def test_what_no_reward_may_return_is_refused_before_it_is_read(module, function, message):
    name = module(BAD_REWARDS)
    with pytest.raises(RewardOutputError) as info:
        call(guarded(name, function), step=2)
    assert str(info.value).startswith(f"rewards.1 ('{name}:{function}') at step 2 {message}")


def test_one_nan_is_dropped_with_a_warning_and_none_is_not_applicable(module, caplog):
    name = module(BAD_REWARDS)
    with caplog.at_level(logging.WARNING, logger="ahazero.config.reward_output"):
        assert call(guarded(name, "one_nan"), step=3) == [None, 1.0, 1.0, 1.0]
    assert f"rewards.1 ('{name}:one_nan') at step 3 returned NaN for 1 of 4 completions" in caplog.text
    assert call(guarded(name, "all_none")) == [None] * 4  # a reward that does not apply: no error, no warning


def test_on_reward_error_skip_scores_the_batch_none_and_says_so(module, caplog):
    name = module(BAD_REWARDS)
    reward = guarded(name, "raises", on_reward_error="skip")
    with caplog.at_level(logging.WARNING, logger="ahazero.config.reward_guard"):
        assert call(reward, step=5) == [None] * 4
        assert call(guarded(name, "all_nan", on_reward_error="skip"), n=2) == [None, None]
    assert (f"reward error: rewards.1 ('{name}:raises') at step 5 raised RuntimeError: no GPU for the judge"
            in caplog.text)
    assert "scored None for the 4 completions of this batch (on_reward_error: skip)" in caplog.text
    assert reward.skipped == 1
    with pytest.raises(ConfigError, match=r"bad value for 'on_reward_error'.*'stop' or 'skip'"):
        guarded(name, "fine", on_reward_error="ignore")


def test_a_ctrl_c_inside_a_reward_is_not_swallowed(module):
    name = module("def interrupted(completions, **kwargs):\n    raise KeyboardInterrupt\n")
    with pytest.raises(KeyboardInterrupt):
        call(guarded(name, "interrupted"))


def test_a_module_that_calls_os_exit_on_import_is_a_config_error(module):
    name = module("import os\nos._exit(0)\n")
    with pytest.raises(ConfigError) as info:
        guarded(name, "score")
    assert str(info.value) == (f"rewards.1: loading '{name}:score' stopped: module '{name}' called os._exit(0) "
                               "while it was imported or the reward was created")
    assert name not in sys.modules


def test_registry_rewards_are_not_guarded_and_keep_their_contract():
    from rewards import get_reward

    accuracy = get_reward("accuracy", isolate=False)
    assert accuracy(completions=[None, 5, b"\xff", "<answer>1</answer>"], answer=["1"] * 4) == [0.0, 0.0, 0.0, 1.0]
    assert get_reward("think_format")(completions=["<think>a</think><answer>1</answer>"] * 2) == [1.0, 1.0]


def test_the_contract_as_a_function():
    import numpy as np

    assert check_reward_output([1, True, None, np.float32(0.5)], 4, "rewards.0", "m:f") == [1.0, 1.0, None, 0.5]
    assert check_reward_output((0.0,), 1, "rewards.0", "m:f") == [0.0]

    class Lying:  # says it has 2 values, yields forever
        def __len__(self):
            return 2

        def __iter__(self):
            return itertools.repeat(1.0)

    with pytest.raises(RewardOutputError, match=r"returned 3 value\(s\) for 2 completions"):
        check_reward_output(Lying(), 2, "rewards.0", "m:f")
    for bad in ("0.5", b"1", {1.0}, {"a": 1.0}, 1.0, None):
        with pytest.raises(RewardOutputError, match=r"^rewards.0 \('m:f'\) returned a "):
            check_reward_output(bad, 1, "rewards.0", "m:f")
    with pytest.raises(RewardOutputError, match=r"returned -inf for completion 1; rewards must be finite"):
        check_reward_output([0.0, float("-inf")], 2, "rewards.0", "m:f")


def test_exit_guards():
    with exits_raise(), pytest.raises(ExitRequested, match=r"os._exit\(5\)"):
        os._exit(5)
    assert os._exit.__module__ == "posix"  # put back
    with pytest.raises(UnfinishedRunError, match=r"^sys.exit\(None\) was called while run 'x' was unfinished"):
        with unfinished_run("run 'x'"):
            sys.exit()
    with pytest.raises(KeyboardInterrupt), unfinished_run("run 'x'"):
        raise KeyboardInterrupt


def write_config(tmp_path: Path, name: str, function: str, **extra) -> Path:
    data = base_config(
        output_root=str(tmp_path / "runs"), logging={"report_to": [], "traces": False},
        rewards=[{"name": "accuracy"}, {"name": f"{name}:{function}", "weight": 0.5}],
        grpo={"num_generations": 2, "per_device_train_batch_size": 2, "max_steps": 2, "max_completion_length": 4,
              "gradient_checkpointing": False, "save_steps": 1}, **extra)
    path = tmp_path / f"{function}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_training_with_a_failing_reward_exits_2_with_one_line(module, tmp_path, tiny_model_dir, capsys):
    name = module(BAD_REWARDS)
    assert main(["train", str(write_config(tmp_path, name, "raises"))]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]  # on a line of its own, after the progress bar
    assert err.startswith(f"reward error: rewards.1 ('{name}:raises') at step 1 raised RuntimeError: no GPU for "
                          "the judge; fix the reward")
    assert not (tmp_path / "runs" / "t" / "model").exists()


def test_training_with_a_nan_reward_stops_instead_of_finishing_with_null_rewards(module, tmp_path, tiny_model_dir,
                                                                                capsys):
    name = module(BAD_REWARDS)
    assert main(["train", str(write_config(tmp_path, name, "all_nan"))]) == 2
    assert f"reward error: rewards.1 ('{name}:all_nan') at step 1 returned NaN for all 2" in capsys.readouterr().err


def test_training_with_on_reward_error_skip_finishes(module, tmp_path, tiny_model_dir, caplog):
    from ahazero.observe.rundir import read_metrics

    name = module(BAD_REWARDS)
    with caplog.at_level(logging.WARNING):
        assert main(["train", str(write_config(tmp_path, name, "raises", on_reward_error="skip"))]) == 0
    assert caplog.text.count(f"reward error: rewards.1 ('{name}:raises') at step") == 2
    rows = [r for r in read_metrics(tmp_path / "runs" / "t" / "metrics.jsonl") if "reward" in r]
    assert [r["step"] for r in rows] == [1, 2]
    assert all(r["reward"] is not None for r in rows)  # accuracy still scores


def test_an_exit_from_another_thread_during_training_is_not_success(module, tmp_path, tiny_model_dir):
    """os._exit(0) from a thread the reward starts cannot be caught: the process still exits 1, saying why."""
    name = module("""
        import os
        import threading
        import time

        def leaves(completions, **kwargs):
            threading.Thread(target=os._exit, args=(0,)).start()
            time.sleep(30)
            return [0.0] * len(completions)
    """)
    config = write_config(tmp_path, name, "leaves")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(REPO / "src"), str(REPO)])}
    done = subprocess.run([sys.executable, "-m", "ahazero", "train", str(config)], env=env, cwd=tmp_path,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 1, done.stderr[-2000:]
    assert "run error: os._exit(0) ended the process while run 't' was unfinished; exit code 1" in done.stderr
