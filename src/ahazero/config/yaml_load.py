"""Bounded YAML reading for config files and ``key=value`` overrides.

A config file must be a regular UTF-8 text file of at most :data:`MAX_CONFIG_BYTES`; its
YAML may expand (aliases counted each time they are used) to at most :data:`MAX_NODES`
values, so an alias bomb fails at once instead of filling memory. Every failure is a
one-line :class:`YamlLoadError` naming the file or the override (``schema`` turns it into a
``ConfigError``).

Example:
    >>> parse_yaml_text("a: [1, 2]", "example")
    {'a': [1, 2]}
    >>> parse_yaml_text("a: [1, 2", "override 'a=[1, 2'")
    Traceback (most recent call last):
    ...
    ahazero.config.yaml_load.YamlLoadError: override 'a=[1, 2' is not valid YAML: line 1, column 9: ...
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import yaml

from ahazero.cache.paths import file_kind

__all__ = ["MAX_CONFIG_BYTES", "MAX_NODES", "YamlLoadError", "flow_yaml", "parse_yaml_text", "read_yaml_file",
           "yaml_problem"]

#: The largest config file read (1 MiB; real configs are a few kB).
MAX_CONFIG_BYTES = 1 << 20
#: The most values a config may hold once its aliases are expanded.
MAX_NODES = 100_000


class YamlLoadError(ValueError):
    """A config file or override that cannot be read as bounded YAML."""


def yaml_problem(err: yaml.YAMLError) -> str:
    """A PyYAML error as one line: where it is and what is wrong.

    Example:
        >>> try:
        ...     yaml.safe_load("a: [1")
        ... except yaml.YAMLError as err:
        ...     print(yaml_problem(err))
        line 1, column 6: while parsing a flow sequence, expected ',' or ']', but got '<stream end>'
    """
    mark = getattr(err, "problem_mark", None)
    parts = [getattr(err, "context", None), getattr(err, "problem", None)]
    text = ", ".join(str(p) for p in parts if p) or str(err)
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
    return " ".join(f"{where}{text}".split())


class _Recursive(Exception):
    """An alias inside the node it names."""


def _expanded_size(node: yaml.Node, memo: dict[int, int], active: set[int]) -> int:
    """Values under ``node`` with every alias expanded (shared nodes are counted once per use)."""
    key = id(node)
    if key in memo:
        return memo[key]
    if key in active:
        raise _Recursive
    active.add(key)
    size = 1
    if isinstance(node, yaml.SequenceNode):
        size += sum(_expanded_size(child, memo, active) for child in node.value)
    elif isinstance(node, yaml.MappingNode):
        size += sum(_expanded_size(k, memo, active) + _expanded_size(v, memo, active) for k, v in node.value)
    active.discard(key)
    memo[key] = size
    return size


def parse_yaml_text(text: str, where: str) -> Any:
    """Parse YAML ``text`` safely with the size budget; ``where`` names it in errors.

    Example:
        >>> bomb = "a: &a [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]\\n" + "".join(
        ...     f"{c}: &{c} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\\n"
        ...     for p, c in zip("abcdefgh", "bcdefghi"))
        >>> parse_yaml_text(bomb, "bomb.yaml")
        Traceback (most recent call last):
        ...
        ahazero.config.yaml_load.YamlLoadError: bomb.yaml: its YAML aliases expand to more than 100000 values ...
    """
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            return None
        size = _expanded_size(node, {}, set())
        if size > MAX_NODES:
            raise YamlLoadError(f"{where}: its YAML aliases expand to more than {MAX_NODES} values "
                                f"({size}); write the values out instead of nesting aliases")
        return loader.construct_document(node)
    except yaml.YAMLError as err:
        raise YamlLoadError(f"{where} is not valid YAML: {yaml_problem(err)}") from None
    except _Recursive:
        raise YamlLoadError(f"{where}: a YAML alias refers to itself (a recursive structure)") from None
    except RecursionError:
        raise YamlLoadError(f"{where}: the YAML is nested too deeply") from None
    finally:
        loader.dispose()


def read_yaml_file(path: str | os.PathLike[str]) -> Any:
    """Read and parse a YAML config file: a regular UTF-8 text file of at most 1 MiB.

    Example:
        >>> import pathlib, tempfile
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "c.yaml"
        >>> _ = p.write_bytes(b"\\x89PNG\\r\\n\\x1a\\n\\x00\\x00")
        >>> read_yaml_file(p)
        Traceback (most recent call last):
        ...
        ahazero.config.yaml_load.YamlLoadError: .../c.yaml is not a YAML text file: it holds NUL bytes (binary data)
    """
    path = Path(path)
    try:
        info = os.stat(path)
    except FileNotFoundError:
        raise YamlLoadError(f"config file not found: {path}") from None
    except OSError as err:
        raise YamlLoadError(f"cannot read config file {path}: {err.strerror or err}") from None
    if not stat.S_ISREG(info.st_mode):
        raise YamlLoadError(f"{path} is a {file_kind(info.st_mode)}, not a config file; give a YAML file")
    if info.st_size > MAX_CONFIG_BYTES:
        raise YamlLoadError(f"{path} is {info.st_size} bytes; a config file may hold at most "
                            f"{MAX_CONFIG_BYTES} bytes (1 MiB)")
    try:
        with path.open("rb") as fh:
            data = fh.read(MAX_CONFIG_BYTES + 1)
    except OSError as err:
        raise YamlLoadError(f"cannot read config file {path}: {err.strerror or err}") from None
    if len(data) > MAX_CONFIG_BYTES:
        raise YamlLoadError(f"{path} holds more than {MAX_CONFIG_BYTES} bytes (1 MiB), the most a config may hold")
    if b"\x00" in data:
        raise YamlLoadError(f"{path} is not a YAML text file: it holds NUL bytes (binary data)")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise YamlLoadError(f"{path} is not a YAML text file: byte {err.start} is not UTF-8") from None
    return parse_yaml_text(text, str(path))


def flow_yaml(value: Any) -> str:
    """``value`` as one line of YAML, as it would be written in a config or an override.

    Example:
        >>> flow_yaml({"r": 16, "target_modules": "all-linear"}), flow_yaml(None), flow_yaml(1e-05)
        ('{r: 16, target_modules: all-linear}', 'null', '1.0e-05')
    """
    return yaml.safe_dump(value, default_flow_style=True).strip().removesuffix("\n...").strip()
