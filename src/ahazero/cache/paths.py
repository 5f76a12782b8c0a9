"""Where ahazero keeps what it fetches and converts: ``$AHAZERO_CACHE`` or ``~/.cache/ahazero``.

Example:
    >>> import os
    >>> os.environ["AHAZERO_CACHE"] = "/tmp/ahz"
    >>> str(cache_dir())
    '/tmp/ahz'
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["cache_dir"]


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
