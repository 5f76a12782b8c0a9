"""Where TensorBoard writes during one run: the run's folder, for that run only.

The trainers' TensorBoard callback reads ``TENSORBOARD_LOGGING_DIR`` when a run starts. A
run sets it to its own ``tensorboard/`` folder unless the environment already names one (a
user's choice, or a ``stages:`` pipeline pointing each stage at its folder), and takes it
away again when the run ends, so a second run in the same process (a notebook, a script
that trains twice) writes into its own folder, not the first one's.

Example:
    >>> import os
    >>> os.environ.pop("TENSORBOARD_LOGGING_DIR", None) and None
    >>> with tensorboard_dir("runs/a/tensorboard"):
    ...     os.environ["TENSORBOARD_LOGGING_DIR"]
    'runs/a/tensorboard'
    >>> "TENSORBOARD_LOGGING_DIR" in os.environ
    False
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

__all__ = ["VARIABLE", "tensorboard_dir"]

#: The environment variable the trainers' TensorBoard callback reads.
VARIABLE = "TENSORBOARD_LOGGING_DIR"


@contextlib.contextmanager
def tensorboard_dir(folder: str | Path, *, enabled: bool = True) -> Iterator[None]:
    """Within the block, TensorBoard writes into ``folder``, unless the environment already names a folder.

    Example:
        >>> with tensorboard_dir("runs/b/tensorboard", enabled=False):
        ...     pass
    """
    if not enabled or VARIABLE in os.environ:
        yield
        return
    os.environ[VARIABLE] = str(folder)
    try:
        yield
    finally:
        os.environ.pop(VARIABLE, None)
