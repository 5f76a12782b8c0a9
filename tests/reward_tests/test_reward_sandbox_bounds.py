"""Verifier workers are started as the work needs them and capped: asking for 64 never forks 64 sympy processes."""

from __future__ import annotations

import logging
import sys

import pytest

import rewards._sandbox_start as start
from rewards.sandbox import MAX_WORKERS, WORKERS_ENV, VerifierPool

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="POSIX fork server")

NEEDS_SYMPY = [("2x+1", "1+2x"), ("x^2", "x*x"), (r"\sqrt{8}", r"2\sqrt{2}"), ("(x+1)^2", "x^2+2x+1")]


@pytest.fixture(autouse=True)
def _fresh_warnings(monkeypatch):
    monkeypatch.setattr(start, "_warned", set())


@pytest.mark.parametrize(("value", "cpus", "size", "warning"), [
    ("64", 4, 4, f"verifier: {WORKERS_ENV}=64 asks for 64 workers; using 4 (the CPU count, at most 16)"),
    ("64", 128, MAX_WORKERS, f"{WORKERS_ENV}=64 asks for 64 workers; using 16 (the CPU count, at most 16)"),
    ("3", 4, 3, None),
    ("0", 4, 2, f"verifier: {WORKERS_ENV}='0' is not a whole number of at least 1; using 2 workers"),
    ("-2", 4, 2, f"{WORKERS_ENV}='-2' is not a whole number of at least 1"),
    ("lots", 1, 1, f"{WORKERS_ENV}='lots' is not a whole number of at least 1; using 1 workers"),
    ("", 4, 2, None),
])
def test_the_environment_is_capped_at_the_cpus_with_one_warning(monkeypatch, caplog, value, cpus, size, warning):
    monkeypatch.setenv(WORKERS_ENV, value)
    monkeypatch.setattr(start.os, "cpu_count", lambda: cpus)
    with caplog.at_level(logging.WARNING, logger="rewards.sandbox"):
        assert start.default_workers() == size
        assert start.default_workers() == size  # asked again: said once
    messages = [r.getMessage() for r in caplog.records]
    if warning is None:
        assert messages == []
    else:
        assert len(messages) == 1 and warning in messages[0]


def test_an_explicit_size_is_capped_at_the_hard_maximum(caplog):
    with caplog.at_level(logging.WARNING, logger="rewards.sandbox"):
        pool = VerifierPool(workers=1000)
    assert pool.size == MAX_WORKERS and pool.worker_pids() == []  # nothing started yet
    assert "verifier: workers=1000 asks for 1000 workers; using 16 (at most 16)" in caplog.text
    pool.close()


def test_workers_start_as_the_work_needs_them():
    pool = VerifierPool(workers=4)
    try:
        assert pool.worker_pids() == []
        assert [v.equivalent for v in pool.check(NEEDS_SYMPY[:1], timeout_seconds=30)] == [True]
        assert pool.stats["started"] == 1 and len(pool.worker_pids()) == 1  # one answer, one worker
        assert [v.equivalent for v in pool.check(NEEDS_SYMPY[:2], timeout_seconds=30)] == [True, True]
        assert pool.stats["started"] == 2  # the idle one was reused, one more for the second answer
        pool.warm_up()
        assert len(pool.worker_pids()) == 4  # warm_up starts them all
    finally:
        pool.close()


def test_a_pool_asked_for_too_many_workers_checks_two_answers_with_two(monkeypatch):
    monkeypatch.setenv(WORKERS_ENV, "64")
    pool = VerifierPool()
    try:
        assert pool.size <= MAX_WORKERS
        assert [v.equivalent for v in pool.check(NEEDS_SYMPY[2:], timeout_seconds=30)] == [True, True]
        assert pool.stats["started"] <= 2 and len(pool.worker_pids()) <= 2
    finally:
        pool.close()
