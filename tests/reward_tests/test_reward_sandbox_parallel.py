"""The verifier pool serves callers in several threads in parallel, and takes any time limit a caller gives it."""

from __future__ import annotations

import math
import sys
import threading
import time

import pytest

from rewards.accuracy import AccuracyReward, check_answers, clear_verdict_cache
from rewards.sandbox import VerifierPool

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="POSIX fork server")

# Passes no guard when sent to the pool directly: sympy works on it in Python code until the soft limit.
SLOW = r"\binom{1000000}{500000}"


@pytest.fixture(scope="module")
def pool2():
    pool = VerifierPool(workers=2)
    pool.warm_up()
    yield pool
    pool.close()


def _wait_for(condition, what: str, timeout: float = 60.0) -> None:
    end = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < end, f"timed out waiting for {what}"
        time.sleep(0.005)


def test_a_second_caller_is_served_while_the_first_still_runs():
    """Thread A's slow item holds one worker; thread B's quick call goes to the other and returns first."""
    pool2 = VerifierPool(workers=2)
    pool2.warm_up()
    events: list[str] = []
    results: dict[str, list] = {}

    def slow():
        results["A"] = pool2.check([(SLOW, "1")], timeout_seconds=2.0)  # bounded: the soft limit stops it
        events.append("A done")

    def quick():
        results["B"] = pool2.check([("2x", "x+x")], timeout_seconds=2.0)
        events.append("B done")

    first = threading.Thread(target=slow)
    first.start()
    _wait_for(lambda: pool2.stats["peak_parallel_calls"] >= 1, "A's item to reach a worker")
    second = threading.Thread(target=quick)
    second.start()
    second.join(60)
    assert events == ["B done"]  # B returned while A's item was still in its worker
    first.join(60)
    assert events == ["B done", "A done"]
    assert results["B"][0].equivalent
    assert results["A"][0].reason.startswith("timeout") and not results["A"][0].equivalent
    assert pool2.stats["timeouts"] == 1
    assert pool2.stats["peak_parallel_calls"] == 2  # two calls were in workers at the same time
    pool2.close()


def test_eight_threads_share_the_workers_and_all_get_their_own_answers():
    pool = VerifierPool(workers=4)
    try:
        pool.warm_up()
        results: dict[int, list[bool]] = {}
        go = threading.Barrier(8)

        def work(i: int) -> None:
            pairs = [(f"{i}x+{k}", f"{k}+{i}x") for k in range(1, 6)] + [(f"{i}x", f"{i + 1}x")]
            go.wait()
            results[i] = [v.equivalent for v in pool.check(pairs, timeout_seconds=5.0)]

        threads = [threading.Thread(target=work, args=(i,)) for i in range(1, 9)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        assert results == {i: [True] * 5 + [False] for i in range(1, 9)}
        assert pool.stats["peak_parallel_calls"] <= 4  # never more calls in workers than workers
    finally:
        pool.close()


def test_slow_items_of_many_callers_run_side_by_side():
    """Four callers, four workers, one slow item each: all four are in workers at once."""
    pool = VerifierPool(workers=4)
    try:
        pool.warm_up()
        go = threading.Barrier(4)
        verdicts = []

        def work() -> None:
            go.wait()
            verdicts.extend(pool.check([(SLOW, "1")], timeout_seconds=1.0))

        threads = [threading.Thread(target=work) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        assert len(verdicts) == 4 and all(v.reason.startswith("timeout") for v in verdicts)
        assert pool.stats["peak_parallel_calls"] == 4
    finally:
        pool.close()


def test_the_reward_from_eight_threads():
    reward = AccuracyReward()
    clear_verdict_cache()
    scores: dict[int, list] = {}

    def work(i: int) -> None:
        scores[i] = reward(completions=[f"<answer>1+{i}x</answer>", f"<answer>{i}x</answer>"], answer=[f"{i}x+1"] * 2)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(2, 10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert scores == {i: [1.0, 0.0] for i in range(2, 10)}


@pytest.mark.parametrize("limit", [1e9, 2.2e6, 1e308, math.inf, math.nan, -1.0, 0.0, None])
def test_the_pool_takes_any_limit(pool2, limit):
    verdicts = pool2.check([("1+2x", "2x+1"), ("x", "y")], timeout_seconds=limit)
    assert [(v.equivalent, v.reason) for v in verdicts] == [(True, "equivalent"), (False, "different")]


@pytest.mark.parametrize("limit", [1e9, math.inf])
def test_in_process_checks_take_any_limit(limit):
    clear_verdict_cache()
    assert check_answers([("1+2x", "2x+1")], timeout_seconds=limit, isolate=False) == [(True, "equivalent")]
