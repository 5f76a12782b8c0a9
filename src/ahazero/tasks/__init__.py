"""The task registry: named sources of ``{id, problem, answer, ...}`` rows for GRPO training.

Every task is a :class:`Task` whose options are validated on construction; ``load(split)``
returns a ``datasets.Dataset`` for ``"train"`` or ``"test"``. ``prompts`` renders a row into
the model's prompt (chat template or the plain R1-Zero template); ``bundled`` reads the GSM8K
and MATH-500 files shipped in ``data/`` (sha256-pinned). The tasks wing may import
``cache`` and the ``rewards`` package only: nothing of config, models or training.

Example:
    >>> available_tasks()
    ['arithmetic', 'chain', 'countdown', 'gsm8k', 'linear_equation', 'local', 'math500', 'multiplication']
    >>> task = get_task("arithmetic", max_terms=2, num_train=4, num_test=2)
    >>> task.columns
    ('id', 'problem', 'answer', 'difficulty')
    >>> task.load("train").num_rows
    4
    >>> task_options("countdown")["num_numbers"]
    4
"""

from __future__ import annotations

import difflib
from typing import Any

from pydantic_core import PydanticUndefined

from ahazero.tasks.arithmetic import ArithmeticTask
from ahazero.tasks.base import REQUIRED, Split, Task, TaskDataError, TaskOptionsError
from ahazero.tasks.chain import ChainTask
from ahazero.tasks.countdown import CountdownTask
from ahazero.tasks.gsm8k import GSM8KTask
from ahazero.tasks.linear_equation import LinearEquationTask
from ahazero.tasks.local_file import LocalFileTask
from ahazero.tasks.math500 import Math500Task
from ahazero.tasks.multiplication import MultiplicationTask

__all__ = [
    "REQUIRED",
    "TASKS",
    "Split",
    "Task",
    "TaskDataError",
    "TaskOptionsError",
    "available_tasks",
    "get_task",
    "task_class",
    "task_columns",
    "task_options",
]

TASKS: dict[str, type[Task]] = {
    cls.name: cls
    for cls in (ArithmeticTask, LinearEquationTask, CountdownTask, GSM8KTask, Math500Task, LocalFileTask,
                MultiplicationTask, ChainTask)
}


def available_tasks() -> list[str]:
    """The registered task names, sorted.

    Example:
        >>> "gsm8k" in available_tasks()
        True
    """
    return sorted(TASKS)


def task_class(name: str) -> type[Task]:
    """The class registered as ``name``; :class:`ValueError` listing the valid names otherwise.

    Example:
        >>> task_class("countdown").__name__
        'CountdownTask'
    """
    try:
        return TASKS[name]
    except (KeyError, TypeError):
        close = difflib.get_close_matches(str(name), list(TASKS), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ValueError(
            f"unknown task {name!r}; valid tasks: {', '.join(available_tasks())}{hint}"
        ) from None


def get_task(name: str, **options: Any) -> Task:
    """The task ``name`` with ``options`` validated (nothing is loaded yet).

    Unknown task or option, wrong type or out-of-range value: :class:`ValueError` with a
    message naming the problem and the valid choices.

    Example:
        >>> get_task("linear_equation", max_coefficient=5).max_coefficient
        5
        >>> try:
        ...     get_task("arithmetic", num_termz=3)
        ... except ValueError as err:
        ...     print(str(err)[:64])
        task 'arithmetic': unknown option 'num_termz'; valid options: se
    """
    return task_class(name)(**options)


def task_options(name: str) -> dict[str, Any]:
    """The options of task ``name`` with their defaults (:data:`REQUIRED` where there is none).

    Example:
        >>> task_options("arithmetic")["operators"]
        ['+', '-', '*']
        >>> task_options("local")["train_path"]
        <required>
    """
    options: dict[str, Any] = {}
    for field_name, field in task_class(name).model_fields.items():
        if field.default_factory is not None:
            options[field_name] = field.default_factory()  # type: ignore[call-arg]
        elif field.default is PydanticUndefined:
            options[field_name] = REQUIRED
        else:
            options[field_name] = field.default
    return options


def task_columns(name: str, **options: Any) -> tuple[str, ...]:
    """The columns task ``name`` provides with these options, without loading any data.

    Example:
        >>> task_columns("local", train_path="qa.jsonl", extra_columns=["hint"])
        ('id', 'problem', 'answer', 'hint')
    """
    return get_task(name, **options).columns
