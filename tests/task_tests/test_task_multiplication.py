"""The multiplication task: exact golds, the digit options, disjoint deterministic splits."""

from __future__ import annotations

import re

import pytest

from ahazero.tasks import get_task

PROBLEM = re.compile(r"Compute: (\d+) \* (\d+)")


def factors(row):
    match = PROBLEM.fullmatch(row["problem"])
    assert match, row["problem"]
    return int(match.group(1)), int(match.group(2))


def test_defaults_are_three_to_four_digits_times_two_to_three_with_exact_golds():
    task = get_task("multiplication", num_train=300, num_test=50)
    rows = [*task.load("train"), *task.load("test")]
    lengths = set()
    for row in rows:
        a, b = factors(row)
        assert row["answer"] == str(a * b)
        assert 3 <= len(str(a)) <= 4 and 2 <= len(str(b)) <= 3
        assert a % 10 and b % 10  # no factor ending in 0 by default
        assert row["difficulty"] == len(str(a)) + len(str(b))
        lengths.add((len(str(a)), len(str(b))))
    assert lengths == {(3, 2), (3, 3), (4, 2), (4, 3)}


def test_digit_options_and_trailing_zeros():
    task = get_task("multiplication", min_digits_a=5, max_digits_a=5, min_digits_b=1, max_digits_b=1,
                    trailing_zeros=True, num_train=400, num_test=0)
    pairs = [factors(row) for row in task.load("train")]
    assert all(len(str(a)) == 5 and 2 <= b <= 9 for a, b in pairs)
    assert any(a % 10 == 0 for a, _ in pairs)


def test_splits_are_disjoint_and_deterministic():
    a = get_task("multiplication", seed=4, num_train=100, num_test=20)
    b = get_task("multiplication", seed=4, num_train=100, num_test=20)
    assert a.load("train").to_list() == b.load("train").to_list()
    assert not set(a.load("train")["problem"]) & set(a.load("test")["problem"])
    assert get_task("multiplication", seed=5, num_train=100).load("train")["problem"] != a.load("train")["problem"]


@pytest.mark.parametrize(("options", "fragment"), [
    ({"min_digits_a": 4, "max_digits_a": 3}, "min_digits_a (4) must be <= max_digits_a (3)"),
    ({"max_digits_b": 0}, "invalid value for option 'max_digits_b'"),
    ({"digits": 3}, "unknown option 'digits'"),
])
def test_bad_options_are_named(options, fragment):
    with pytest.raises(ValueError, match=re.escape(fragment)):
        get_task("multiplication", **options)


def test_a_too_small_problem_space_is_a_clear_error():
    task = get_task("multiplication", min_digits_a=1, max_digits_a=1, min_digits_b=1, max_digits_b=1,
                    num_train=100, num_test=10)
    with pytest.raises(ValueError, match="could only generate 64 distinct problems"):
        task.load("train")
