"""Where ahazero keeps what it fetches and converts (``$AHAZERO_CACHE`` or ``~/.cache/ahazero``),
and the readable name of a file's type, for the errors of every reader that refuses a
folder, a pipe or a device before opening it.

Example:
    >>> import os
    >>> os.environ["AHAZERO_CACHE"] = "/tmp/ahz"
    >>> str(cache_dir())
    '/tmp/ahz'
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

__all__ = ["cache_dir", "file_kind"]


def cache_dir() -> Path:
    """Where converted and fetched models live: ``$AHAZERO_CACHE`` or ``~/.cache/ahazero``.

    Example:
        >>> import os
        >>> os.environ["AHAZERO_CACHE"] = "/tmp/ahz"
        >>> str(cache_dir())
        '/tmp/ahz'
    """
    root = os.environ.get("AHAZERO_CACHE") or (Path(os.environ.get("XDG_CACHE_HOME", "~/.cache")) / "ahazero")
    return Path(root).expanduser()


def file_kind(mode: int) -> str:
    """A readable name for the file type in an ``os.stat`` mode.

    Example:
        >>> import os
        >>> file_kind(os.stat(".").st_mode)
        'folder'
    """
    for test, name in ((stat.S_ISDIR, "folder"), (stat.S_ISFIFO, "named pipe (FIFO)"),
                       (stat.S_ISCHR, "character device"), (stat.S_ISBLK, "block device"),
                       (stat.S_ISSOCK, "socket"), (stat.S_ISREG, "regular file")):
        if test(mode):
            return name
    return "special file"
