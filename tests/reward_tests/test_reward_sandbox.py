"""Tests of rewards.sandbox: bounded, isolated verification in a reused worker pool."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from rewards.accuracy import AccuracyReward, check_answers
from rewards.sandbox import VerifierPool, get_pool

REPO = Path(__file__).resolve().parents[2]
# Passes no guard when sent to the pool directly: sympy evaluates it in Python code for seconds.
SLOW = r"\binom{1000000}{500000}"

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="uses /proc and POSIX signals")


def _gone(pid: int) -> bool:
    """True once ``pid`` no longer exists (reaped: not even a zombie)."""
    return not Path(f"/proc/{pid}").exists()


def _wait_gone(pids, timeout=5.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if all(_gone(p) for p in pids):
            return True
        time.sleep(0.05)
    return all(_gone(p) for p in pids)


def _zombies() -> list[int]:
    """Zombie processes whose parent is this process or one of its children (e.g. the fork server)."""
    me = os.getpid()
    procs = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            fields = stat.rsplit(")", 1)[1].split()
            procs[int(entry.name)] = (fields[0], int(fields[1]))
    family = {me} | {pid for pid, (_state, ppid) in procs.items() if ppid == me}
    return [pid for pid, (state, ppid) in procs.items() if state == "Z" and ppid in family]


@pytest.fixture(scope="module")
def pool():
    p = VerifierPool(workers=1)
    p.warm_up()
    yield p
    p.close()


def test_pool_checks_a_batch_and_reuses_its_worker(pool):
    pids = pool.worker_pids()
    out = pool.check([("1+2x", "2x+1"), ("x^2", "x^3"), (r"\sqrt{8}", r"2\sqrt{2}")], timeout_seconds=5)
    assert [v.equivalent for v in out] == [True, False, True]
    assert [v.reason for v in out] == ["equivalent", "different", "equivalent"]
    assert pool.check([("x", "x")], timeout_seconds=5)[0].equivalent
    assert pool.worker_pids() == pids and len(pids) == 1


def test_soft_limit_interrupts_python_work_and_keeps_the_worker(pool):
    pids = pool.worker_pids()
    start = time.monotonic()
    [verdict] = pool.check([(SLOW, "1")], timeout_seconds=0.5)
    elapsed = time.monotonic() - start
    assert verdict.equivalent is False and verdict.reason == "timeout"
    assert elapsed <= 0.5 + 0.5
    assert pool.worker_pids() == pids  # no restart was needed
    assert pool.check([("2x", "x+x")], timeout_seconds=2)[0].equivalent


def test_hung_worker_is_killed_replaced_and_the_batch_goes_on():
    pool = VerifierPool(workers=1)
    try:
        pool.warm_up()
        [old] = pool.worker_pids()
        os.kill(old, signal.SIGSTOP)  # like a hang inside C code: no signal handler can run
        start = time.monotonic()
        out = pool.check([("x+1", "1+x"), ("2x", "x+x"), ("x", "y")], timeout_seconds=0.4)
        elapsed = time.monotonic() - start
        assert out[0].reason == "timeout (worker killed)" and out[0].equivalent is False
        assert [v.equivalent for v in out[1:]] == [True, False]
        assert elapsed < 0.4 + 2.0  # the limit, a kill and a warm restart
        assert _wait_gone([old])
        [new] = pool.worker_pids()
        assert new != old and pool.healthy
        assert pool.stats["killed"] >= 1 and pool.stats["timeouts"] >= 1
    finally:
        pool.close()


def test_worker_crash_mid_item_scores_zero_and_the_rest_continues():
    pool = VerifierPool(workers=1)
    try:
        pool.warm_up()
        [pid] = pool.worker_pids()
        threading.Timer(0.2, os.kill, (pid, signal.SIGKILL)).start()
        out = pool.check([(SLOW, "1"), ("2x", "x+x")], timeout_seconds=3)
        assert out[0].reason.startswith("worker crashed") and out[0].equivalent is False
        assert out[1].equivalent is True
        assert pool.stats["crashes"] == 1 and pool.worker_pids() != [pid]
    finally:
        pool.close()


def test_worker_that_died_while_idle_is_replaced(pool):
    [pid] = pool.worker_pids()
    os.kill(pid, signal.SIGKILL)
    assert pool.check([("2x", "x+x")], timeout_seconds=2)[0].equivalent
    assert pool.worker_pids() != [pid]
    assert _wait_gone([pid])  # reaped once the pool noticed


def test_hostile_gold_is_remembered(pool):
    start = time.monotonic()
    out = pool.check([("1", SLOW), ("2", SLOW), ("3", SLOW)], timeout_seconds=0.3)
    assert out[0].reason in ("timeout in gold", "timeout (worker killed)")  # soft, or hard under heavy load
    assert [v.reason for v in out[1:]] == ["gold overran its limit before"] * 2
    assert time.monotonic() - start < 0.3 + 0.5
    assert pool.check([("4", SLOW)], timeout_seconds=0.3)[0].seconds == 0.0  # at once, next time too


def test_concurrent_callers_from_threads(pool):
    results: dict[int, list] = {}

    def work(i):
        results[i] = [v.equivalent for v in pool.check([(f"{i}x", f"x*{i}"), ("x", "y")], timeout_seconds=5)]

    threads = [threading.Thread(target=work, args=(i,)) for i in range(1, 5)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert results == {i: [True, False] for i in range(1, 5)}


def test_reward_limit_holds_off_the_main_thread():
    reward = AccuracyReward(timeout_seconds=0.3, literal_numbers=False)
    get_pool().warm_up()
    out: dict[str, object] = {}

    def work():
        start = time.monotonic()
        # passes the in-process guards; expanding it keeps sympy busy for ~45 s
        out["scores"] = reward(completions=["<answer>(x+y+z+w)^{40}</answer>", "<answer>1+2x</answer>"],
                               answer=["x", "2x+1"])
        out["elapsed"] = time.monotonic() - start

    thread = threading.Thread(target=work)
    thread.start()
    thread.join(30)
    assert out["scores"] == [0.0, 1.0]
    assert out["elapsed"] < 2 * (0.3 + 0.5)


def test_is_equivalent_isolated_matches_in_process():
    pairs = [("1+2x", "2x+1"), (r"\frac{\pi}{2}", r"\pi/2"), ("x^2-1", "(x-1)(x+1)"), ("2^{10}", "1024"),
             ("0.5", r"\frac{1}{2}"), ("3", "4"), (r"\{1,2\}", r"\{2,1\}"), ("x", "2x")]
    assert check_answers(pairs, isolate=True) == check_answers(pairs, isolate=False)


def test_close_reaps_every_worker_and_leaves_no_zombie():
    pool = VerifierPool(workers=2)
    pool.warm_up()
    pids = pool.worker_pids()
    assert len(pids) == 2
    os.kill(pids[0], signal.SIGSTOP)
    pool.check([("x", "x+0"), ("y", "y")], timeout_seconds=0.3)  # kills and replaces one
    pids += pool.worker_pids()
    pool.close()
    assert pool.worker_pids() == []
    assert _wait_gone(pids)
    assert not _zombies()
    assert pool.check([("2x", "x+x")], timeout_seconds=2)[0].equivalent  # usable again after close
    pool.close()


_CHILD = """
import json, os, sys, time
from rewards.sandbox import get_pool

def main():
    pool = get_pool()
    pool.warm_up()
    assert pool.check([("2x", "x+x")], 5)[0].equivalent
    print(json.dumps({"workers": pool.worker_pids(), "server": pool.server_pid}), flush=True)
    if sys.argv[1] == "hang":
        time.sleep(600)

if __name__ == "__main__":
    main()
"""


def _start_child(tmp_path, mode):
    script = tmp_path / "child.py"
    script.write_text(_CHILD)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(REPO / "src")])}
    return subprocess.Popen([sys.executable, str(script), mode], stdout=subprocess.PIPE, text=True, env=env)


def _pids_of(proc):
    info = json.loads(proc.stdout.readline())
    return info["workers"] + ([info["server"]] if info["server"] else [])


def test_workers_end_with_their_process_whether_it_exits_or_is_killed(tmp_path):
    exiting, hanging = _start_child(tmp_path, "exit"), _start_child(tmp_path, "hang")  # in parallel
    try:
        exit_pids, hang_pids = _pids_of(exiting), _pids_of(hanging)
        assert exiting.wait(60) == 0  # atexit: workers killed and reaped
        assert len(exit_pids) >= 2 and _wait_gone(exit_pids)
        hanging.kill()  # SIGKILL: no atexit handler runs; the workers die with their parent
        hanging.wait(10)
        assert len(hang_pids) >= 2 and _wait_gone(hang_pids, timeout=10)
    finally:
        for proc in (exiting, hanging):
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)


def test_forked_child_gets_its_own_workers(pool):
    pool.check([("x", "x")], timeout_seconds=5)
    parent_pids = pool.worker_pids()
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: report and leave without running pytest's teardown
        ok = False
        try:
            ok = pool.check([("2x", "x+x")], timeout_seconds=30)[0].equivalent
            ok = ok and not set(pool.worker_pids()) & set(parent_pids)
            pool.close()
        finally:
            os.write(write, b"1" if ok else b"0")
            os._exit(0)
    os.close(write)
    try:
        assert os.read(read, 1) == b"1"
    finally:
        os.close(read)
        os.waitpid(pid, 0)
    assert pool.worker_pids() == parent_pids  # the child left the parent's workers alone
    assert pool.check([("2x", "x+x")], timeout_seconds=5)[0].equivalent
