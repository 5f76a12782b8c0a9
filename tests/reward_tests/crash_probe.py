"""A weight-0 reward for tests/training/test_crash_resume.py: it keeps the isolated verifier pool running.

The arithmetic task's golds are numbers, which the accuracy reward checks without sympy, so
a tiny-model run never starts the pool. This probe sends one algebraic pair through it on
every call, so the trainer killed by the test has a verifier fork server and workers that
must die with it.

>>> verifier_probe(completions=["a", "b"])
[0.0, 0.0]
"""

from __future__ import annotations

from typing import Any

from rewards.accuracy import check_answers


def verifier_probe(completions: Any = None, **kwargs: Any) -> list[float]:
    """Check ``2x+1 = 1+2x`` in the verifier pool; score 0.0 for every completion."""
    [(ok, reason)] = check_answers([("2x+1", "1+2x")], timeout_seconds=5.0, isolate=True)
    if not ok:
        raise RuntimeError(f"the verifier pool failed: {reason}")
    return [0.0] * len(completions or [])
