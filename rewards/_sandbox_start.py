"""How verifier workers are started: the pool size, the start method, the forkserver's preload.

Kept apart from :mod:`rewards.sandbox` (the pool's protocol and deadlines) so the start-up
policy can be read and changed in one place.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
from typing import Any

logger = logging.getLogger("rewards.sandbox")

__all__ = ["WORKERS_ENV", "default_workers", "start_context"]

WORKERS_ENV = "AHAZERO_VERIFIER_WORKERS"
"""Environment variable overriding the default pool size (default: ``min(2, cpu_count)``)."""

_PRELOAD_MODULE = "rewards._sandbox_preload"


def default_workers() -> int:
    """The default pool size: ``$AHAZERO_VERIFIER_WORKERS``, else ``min(2, cpu_count)``.

    >>> default_workers() >= 1
    True
    """
    value = os.environ.get(WORKERS_ENV, "").strip()
    if value.isdigit() and int(value) > 0:
        return int(value)
    return max(1, min(2, os.cpu_count() or 1))


def start_context(start_method: str | None, *, in_forked_child: bool = False) -> tuple[Any, str]:
    """The multiprocessing context workers start with, and its method name (``forkserver`` where usable).

    >>> start_context("spawn")[1]
    'spawn'
    """
    methods = multiprocessing.get_all_start_methods()
    # A forked child cannot use its parent's forkserver (it is not the child's child): spawn there.
    usable = "forkserver" in methods and not in_forked_child
    method = start_method or ("forkserver" if usable else "spawn")
    if method not in ("spawn", "forkserver"):
        raise ValueError(f"start_method must be 'spawn' or 'forkserver', got {method!r}")
    ctx = multiprocessing.get_context(method)
    if method == "forkserver":
        _ask_forkserver_to_preload(ctx)
    return ctx, method


def _ask_forkserver_to_preload(ctx: Any) -> None:
    """Have the (process-wide) forkserver import math-verify before forking, if it is not running yet."""
    try:
        from multiprocessing import forkserver

        server = forkserver._forkserver
        modules = list(getattr(server, "_preload_modules", None) or [])
        if _PRELOAD_MODULE in modules:
            return
        if getattr(server, "_forkserver_pid", None) is not None:
            logger.info("the forkserver was started without %s: each verifier worker imports sympy itself "
                        "(about a second per restart)", _PRELOAD_MODULE)
            return
        ctx.set_forkserver_preload(modules + [_PRELOAD_MODULE])
    except Exception as exc:  # noqa: BLE001 - private API may change; only start-up speed depends on it
        logger.debug("could not set the forkserver preload (%s)", exc)
