"""Counts and sizes on the command line (``--n``, ``--batch-size``, ``--max-new-tokens``, ...): checked as they are read.

A count of 0 or a negative one is a mistake, never a request for the default: argparse
refuses it at once (exit code 2, before any config or model loads) with a line naming the
option, the value and what it takes. Pass these as ``type=`` to ``add_argument``.

Example:
    >>> import argparse
    >>> p = argparse.ArgumentParser(prog="ahazero sample", exit_on_error=False)
    >>> _ = p.add_argument("--n", type=positive_int)
    >>> p.parse_args(["--n", "4"]).n
    4
    >>> p.parse_args(["--n", "0"])
    Traceback (most recent call last):
    ...
    argparse.ArgumentError: argument --n: must be a whole number of at least 1, got '0'
"""

from __future__ import annotations

import argparse
import math

__all__ = ["non_negative_int", "port_number", "positive_float", "positive_int"]


def _whole(text: str, least: int, most: int | None = None) -> int:
    try:
        value = int(text.strip().replace("_", ""))
    except ValueError:
        value = None
    if value is None or value < least or (most is not None and value > most):
        span = f"from {least} to {most}" if most is not None else f"of at least {least}"
        raise argparse.ArgumentTypeError(f"must be a whole number {span}, got {text!r}")
    return value


def positive_int(text: str) -> int:
    """A whole number of at least 1 (an argparse ``type``).

    Example:
        >>> positive_int("8")
        8
    """
    return _whole(text, 1)


def non_negative_int(text: str) -> int:
    """A whole number of at least 0 (an argparse ``type``), for options where 0 means something.

    Example:
        >>> non_negative_int("0")
        0
    """
    return _whole(text, 0)


def port_number(text: str) -> int:
    """A TCP port, 1 to 65535 (an argparse ``type``).

    Example:
        >>> port_number("29500")
        29500
    """
    return _whole(text, 1, 65535)


def positive_float(text: str) -> float:
    """A finite number above 0 (an argparse ``type``).

    Example:
        >>> positive_float("1.5")
        1.5
    """
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and value > 0):
        raise argparse.ArgumentTypeError(f"must be a number above 0, got {text!r}")
    return value
