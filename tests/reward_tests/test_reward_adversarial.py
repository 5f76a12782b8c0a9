"""Every reward on a corpus of hostile completions and golds: no exception, bounded time, healthy pool after.

Each item is scored in its own call and timed with ``time.monotonic``: its wall time must
stay within the accuracy reward's per-item limit plus 0.5 s. That is a correctness bound
(nothing hangs), not a performance assertion. The default run wraps the sympy bombs (each
costs a whole limit) in one completion shape; the ``slow`` run takes them in every shape.
"""

from __future__ import annotations

import math
import os
import time

import pytest
from reward_tests.adversarial import PWNED_PATH, Case, build_corpus

from rewards import get_reward
from rewards.accuracy import clear_verdict_cache
from rewards.sandbox import get_pool

LIMIT = 0.5
BOUND = LIMIT + 0.5
DEFAULT_CORPUS = build_corpus(full=False)

REWARDS = {
    # literal_numbers=False sends every hostile answer that passes the guards to sympy (in a worker)
    "accuracy_sympy": ("accuracy", {"timeout_seconds": LIMIT, "literal_numbers": False}),
    "accuracy": ("accuracy", {"timeout_seconds": LIMIT}),
    "think_format": ("think_format", {"require_answer_tags": True}),
    "language_consistency": ("language_consistency", {}),
    "countdown": ("countdown", {}),
}


@pytest.fixture(autouse=True)
def _no_pwned_file():
    if os.path.exists(PWNED_PATH):
        os.remove(PWNED_PATH)
    yield
    assert not os.path.exists(PWNED_PATH), "a code-injection payload was executed"


def _check_each(reward, cases: list[Case]) -> None:
    failures, slow = [], []
    for case in cases:
        start = time.monotonic()
        try:
            out = reward(completions=[case.completion], **case.columns())
        except BaseException as exc:  # noqa: BLE001 - report every failure at once
            failures.append(f"{case.name}: raised {type(exc).__name__}: {str(exc)[:200]}")
            continue
        elapsed = time.monotonic() - start
        if elapsed > BOUND:
            slow.append(f"{case.name}: {elapsed:.2f} s")
        if not (isinstance(out, list) and len(out) == 1):
            failures.append(f"{case.name}: returned {out!r:.200}")
        elif out[0] is not None and not (isinstance(out[0], float) and math.isfinite(out[0]) and 0 <= out[0] <= 1):
            failures.append(f"{case.name}: score {out[0]!r}")
    assert not failures, "\n".join(failures[:50])
    assert not slow, f"items over {BOUND} s:\n" + "\n".join(slow[:50])


def _pool_is_healthy_after() -> None:
    pool = get_pool()
    reward = get_reward("accuracy", timeout_seconds=LIMIT)
    assert reward(completions=["<think>a</think><answer>1+2x</answer>"], answer=["2x+1"]) == [1.0]
    assert reward(completions=["<think>a</think><answer>\\frac{1}{2}</answer>"], answer=["0.5"]) == [1.0]
    assert pool.healthy


def _run(key: str, cases: list[Case]) -> None:
    name, kwargs = REWARDS[key]
    reward = get_reward(name, **kwargs)
    if name == "accuracy":
        clear_verdict_cache()  # every hostile answer is verified, not recalled
        get_pool().warm_up()  # start-up is not part of any item's time
    _check_each(reward, cases)
    if name == "accuracy":
        _pool_is_healthy_after()


def test_corpus_is_big_and_varied():
    assert len(DEFAULT_CORPUS) >= 200
    assert sum(case.costly for case in DEFAULT_CORPUS) >= 8
    assert any(isinstance(case.completion, list) for case in DEFAULT_CORPUS)
    assert any(not isinstance(case.gold, str) for case in DEFAULT_CORPUS)


@pytest.mark.parametrize("key", list(REWARDS))
def test_reward_survives_the_corpus_item_by_item(key):
    _run(key, DEFAULT_CORPUS)


def test_accuracy_in_training_sized_batches():
    """The batched path: the corpus in batches of 16, as GRPO would send it (two sympy bombs only)."""
    reward = get_reward("accuracy", timeout_seconds=LIMIT, literal_numbers=False)
    clear_verdict_cache()
    get_pool().warm_up()
    cases = [c for c in DEFAULT_CORPUS if not c.costly]
    costly = [c for c in DEFAULT_CORPUS if c.costly]
    cases[len(cases) // 3 : len(cases) // 3] = costly[:1]
    cases[2 * len(cases) // 3 : 2 * len(cases) // 3] = costly[-1:]
    for start in range(0, len(cases), 16):
        batch = cases[start : start + 16]
        columns = {"answer": [c.gold for c in batch]}
        began = time.monotonic()
        out = reward(completions=[c.completion for c in batch], **columns)
        elapsed = time.monotonic() - began
        assert len(out) == len(batch) and all(v in (0.0, 1.0) for v in out)
        costly = sum(c.costly for c in batch)
        assert elapsed <= costly * BOUND + BOUND, f"batch at {start}: {elapsed:.2f} s for {costly} costly items"
    _pool_is_healthy_after()


@pytest.mark.slow
@pytest.mark.parametrize("key", list(REWARDS))
def test_reward_survives_the_full_corpus(key):
    _run(key, build_corpus(full=True))
