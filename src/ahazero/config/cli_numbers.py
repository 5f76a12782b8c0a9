"""Counts and sizes given on the command line (``--limit``, ``--examples``, ...): 0 or a negative is a mistake.

A command never replaces a count the user gave with its default (``n or 8`` would turn
``--n 0`` into 8): an option left out is None and gets the default; one given is checked
with :func:`check_count` before anything loads, and a bad one is a
:class:`~ahazero.config.schema.ConfigError` (``config error: --limit must be at least 1
(got 0)``, exit code 2).

Example:
    >>> check_count("--limit", None), check_count("--limit", 3), check_count("--max-chars", 0, least=0)
    (None, 3, 0)
    >>> check_count("--limit", 0)
    Traceback (most recent call last):
    ...
    ahazero.config.schema.ConfigError: --limit must be at least 1 (got 0)
"""

from __future__ import annotations

from ahazero.config.schema import ConfigError

__all__ = ["check_count"]


def check_count(flag: str, value: int | None, least: int = 1) -> int | None:
    """``value`` when it was left out (None) or is at least ``least``; :class:`ConfigError` naming ``flag`` otherwise.

    Example:
        >>> check_count("--warmup", -1, least=0)
        Traceback (most recent call last):
        ...
        ahazero.config.schema.ConfigError: --warmup must be at least 0 (got -1)
    """
    if value is not None and value < least:
        raise ConfigError(f"{flag} must be at least {least} (got {value})")
    return value
