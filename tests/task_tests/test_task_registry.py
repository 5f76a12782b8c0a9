"""The task registry: names, option validation and the contract every task follows."""

from __future__ import annotations

import doctest
import importlib
import pkgutil
import tempfile

import pytest

import ahazero.tasks as tasks
from ahazero.tasks import REQUIRED, TASKS, Task, available_tasks, get_task, task_columns, task_options

EXPECTED = ["arithmetic", "chain", "countdown", "gsm8k", "linear_equation", "local", "math500", "multiplication"]
# the smallest options that make each task constructible
MINIMAL = {"local": {"train_path": "data.jsonl"}}


def test_available_tasks_lists_every_registered_task_sorted():
    assert available_tasks() == EXPECTED
    for name, cls in TASKS.items():
        assert issubclass(cls, Task)
        assert cls.name == name


def test_unknown_task_names_the_bad_name_and_the_valid_choices():
    with pytest.raises(ValueError) as info:
        get_task("arithmetc")
    message = str(info.value)
    assert "'arithmetc'" in message
    assert all(name in message for name in EXPECTED)
    assert "did you mean 'arithmetic'" in message
    with pytest.raises(ValueError, match="unknown task"):
        task_options("nope")


def test_unknown_option_names_the_option_and_lists_valid_options():
    with pytest.raises(ValueError) as info:
        get_task("arithmetic", num_termz=3)
    message = str(info.value)
    assert message.startswith("task 'arithmetic': unknown option 'num_termz'; valid options: ")
    for option in task_options("arithmetic"):
        assert option in message


@pytest.mark.parametrize(
    ("name", "options", "fragment"),
    [
        ("arithmetic", {"max_value": 0}, "invalid value for option 'max_value'"),
        ("arithmetic", {"operators": ["+", "^"]}, "invalid value for option 'operators'"),
        ("arithmetic", {"fractions": "maybe"}, "invalid value for option 'fractions'"),
        ("arithmetic", {"min_terms": 4, "max_terms": 3}, "min_terms (4) must be <= max_terms (3)"),
        ("countdown", {"num_numbers": 7}, "invalid value for option 'num_numbers'"),
        ("linear_equation", {"seed": "abc"}, "invalid value for option 'seed'"),
        ("gsm8k", {"num_test": -1}, "invalid value for option 'num_test'"),
        ("math500", {"test_size": 0}, "invalid value for option 'test_size'"),
        ("local", {}, "missing required option 'train_path'"),
    ],
)
def test_bad_option_values_are_readable_value_errors(name, options, fragment):
    with pytest.raises(ValueError) as info:
        get_task(name, **options)
    assert str(info.value).startswith(f"task {name!r}: ")
    assert fragment in str(info.value)


def test_direct_construction_validates_like_get_task():
    with pytest.raises(ValueError, match="unknown option 'bogus'"):
        TASKS["countdown"](bogus=1)


@pytest.mark.parametrize("name", EXPECTED)
def test_task_options_match_the_fields_and_build_the_default_task(name):
    options = task_options(name)
    cls = TASKS[name]
    assert list(options) == list(cls.model_fields)
    assert {"seed", "num_train", "num_test"} <= set(options)
    task = get_task(name, **MINIMAL.get(name, {}))
    for key, default in options.items():
        if default is not REQUIRED:
            assert getattr(task, key) == default


def test_task_options_marks_required_options_and_returns_fresh_defaults():
    assert task_options("local")["train_path"] is REQUIRED
    assert repr(REQUIRED) == "<required>"
    options = task_options("arithmetic")
    options["operators"].append("/")
    assert task_options("arithmetic")["operators"] == ["+", "-", "*"]
    assert task_options("arithmetic")["num_train"] == 2000


@pytest.mark.parametrize("name", EXPECTED)
def test_columns_are_known_without_loading(name):
    cls = TASKS[name]
    assert isinstance(cls.columns, tuple)
    assert cls.columns[:3] == ("id", "problem", "answer")
    assert len(set(cls.columns)) == len(cls.columns)
    task = get_task(name, **MINIMAL.get(name, {}))
    assert task.columns == cls.columns  # no extra columns asked for


def test_task_columns_reflects_options():
    assert task_columns("countdown") == ("id", "problem", "answer", "numbers", "target", "solution")
    assert task_columns("local", train_path="x.jsonl", extra_columns=["a", "b"])[-2:] == ("a", "b")


@pytest.mark.parametrize("name", EXPECTED)
@pytest.mark.parametrize("split", ["validation", "Train", ""])
def test_invalid_split_is_a_value_error(name, split):
    task = get_task(name, **MINIMAL.get(name, {}))
    with pytest.raises(ValueError, match="invalid split"):
        task.load(split)


def test_tasks_are_immutable():
    task = get_task("arithmetic")
    with pytest.raises(ValueError):
        task.seed = 3  # type: ignore[misc]
    assert task.seed == 0


def test_every_docstring_example_runs(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # examples write their files here
    modules = [tasks] + [
        importlib.import_module(f"ahazero.tasks.{info.name}") for info in pkgutil.iter_modules(tasks.__path__)
    ]
    attempted = 0
    for module in modules:
        result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
        assert result.failed == 0, module.__name__
        attempted += result.attempted
    assert len(modules) >= 10
    assert attempted > 50
