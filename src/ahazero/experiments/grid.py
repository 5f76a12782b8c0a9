"""Sweep variants from ``--grid KEY=V1,V2`` flags (the cartesian product of the axes) and ``--variant`` flags, times the seeds.

Each value is YAML, as in an override (``1e-6``, ``null``, ``[+, -]``); commas inside
brackets or braces do not split values. A variant's name joins ``<key>_<value>`` labels:
the key's last part (the full key when two axes share it), the value with anything but
letters, digits and dots turned into ``-`` (a path gives its file stem), or ``v1, v2, ...``
when two values of an axis would get the same label.

``--variant LABEL [config=FILE] [preset=NAME ...] [KEY=V ...]`` adds one named variant beside
the grid's: its own overrides, and optionally another config file and presets (an arm that
no grid point expresses, such as another recipe as a reference). With ``--variant`` flags and
no ``--grid``, the sweep runs just those variants.

Example:
    >>> axes = parse_grid(["grpo.learning_rate=1e-6,5e-6", "rewards.1.weight=0.1"])
    >>> [v.run_name for v in expand(axes, sweep="lr")]
    ['lr-learning_rate_1e-6-weight_0.1', 'lr-learning_rate_5e-6-weight_0.1']
    >>> expand(axes, sweep="lr", seeds=[0, 1])[1].overrides
    ('grpo.learning_rate=1e-6', 'rewards.1.weight=0.1', 'seed=1')
    >>> ref = parse_variant(["ref", "config=configs/default.yaml", "preset=big-batch", "grpo.max_steps=30"])
    >>> [(v.run_name, v.config, v.presets, v.overrides) for v in expand([], sweep="aha", variants=[ref])]
    [('aha-ref', 'configs/default.yaml', ('big-batch',), ('grpo.max_steps=30',))]
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import Any

import yaml

from ahazero.config.schema import ConfigError, parse_override

__all__ = ["ExplicitVariant", "GridAxis", "MAX_VARIANTS", "NAME_PATTERN", "Variant", "check_name", "check_size",
           "expand", "parse_grid", "parse_variant", "split_values"]

#: What a run (and a sweep) name may look like.
NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*")

#: Keys the sweep sets itself.
_OWNED = {"name": "each variant's run is named <sweep>-<variant>", "output_root": "give it as an override "
          "for every variant (ahazero sweep CONFIG output_root=DIR ...)"}

_MAX_NAME = 120

MAX_VARIANTS = 256
"""The most runs one sweep may have (grid points and ``--variant`` flags, times the seeds): each is a training run."""


@dataclass(frozen=True)
class GridAxis:
    """One ``--grid`` flag: a dotted key and its values (as typed, and parsed)."""

    key: str
    raw: tuple[str, ...]
    values: tuple[Any, ...]


@dataclass(frozen=True)
class ExplicitVariant:
    """One ``--variant`` flag: a label, its overrides (as typed, and parsed), its config file and presets."""

    label: str
    overrides: tuple[str, ...]
    values: dict[str, Any]
    config: str | None = None
    presets: tuple[str, ...] = ()


@dataclass(frozen=True)
class Variant:
    """One run of a sweep: its name, the overrides that make it, the grid values and seed.

    ``config`` and ``presets`` are a ``--variant``'s own (None / empty: the sweep's config, no extra presets).
    """

    label: str
    run_name: str
    overrides: tuple[str, ...]
    values: dict[str, Any] = field(default_factory=dict)
    seed: int | None = None
    config: str | None = None
    presets: tuple[str, ...] = ()


def check_name(name: str, what: str = "--name") -> str:
    """Return ``name`` if it is a valid run/sweep name; :class:`ConfigError` otherwise.

    Example:
        >>> check_name("aha-v2")
        'aha-v2'
    """
    if not NAME_PATTERN.fullmatch(name or ""):
        raise ConfigError(f"{what} {name!r}: use letters, digits, '.', '_' and '-', starting with a letter or digit")
    return name


def split_values(text: str) -> list[str]:
    """Split ``V1,V2,...`` at commas outside brackets, braces and quotes.

    Example:
        >>> split_values("1e-6, [+, -], {a: 1, b: 2}, 'x,y'")
        ['1e-6', '[+, -]', '{a: 1, b: 2}', "'x,y'"]
    """
    parts, depth, quote, current = [], 0, "", []
    for char in text:
        if quote:
            quote = "" if char == quote else quote
        elif char in "'\"":
            quote = char
        elif char in "[{(":
            depth += 1
        elif char in "]})":
            depth -= 1
        elif char == "," and depth == 0:
            parts.append("".join(current).strip())
            current = []
            continue
        current.append(char)
    parts.append("".join(current).strip())
    return parts


def parse_grid(specs: Sequence[str]) -> list[GridAxis]:
    """Parse ``--grid`` flags; :class:`ConfigError` naming the flag for a malformed one.

    Example:
        >>> parse_grid(["task.calibration=calibration/aha.jsonl,null"])[0].values
        ('calibration/aha.jsonl', None)
        >>> parse_grid(["grpo.temperature"])
        Traceback (most recent call last):
        ...
        ahazero.config.schema.ConfigError: --grid 'grpo.temperature' must look like KEY=V1,V2,...
    """
    axes: list[GridAxis] = []
    for spec in specs:
        key, sep, text = spec.partition("=")
        key = key.strip()
        if not sep or not key or not text.strip():
            raise ConfigError(f"--grid {spec!r} must look like KEY=V1,V2,...")
        if key in _OWNED:
            raise ConfigError(f"--grid {key}: the sweep sets '{key}' ({_OWNED[key]})")
        if any(a.key == key for a in axes):
            raise ConfigError(f"--grid {key} is given twice; list all its values in one flag: {key}=V1,V2")
        raw = split_values(text)
        if len(raw) > MAX_VARIANTS:
            raise ConfigError(f"--grid {key} has {len(raw)} values; a sweep runs at most {MAX_VARIANTS} variants")
        if any(not r for r in raw):
            raise ConfigError(f"--grid {spec!r} has an empty value")
        if len(set(raw)) < len(raw):
            raise ConfigError(f"--grid {spec!r} repeats a value")
        try:
            values = tuple(parse_override(f"{key}={r}")[1] for r in raw)
        except (yaml.YAMLError, ConfigError) as err:  # parse_override raises ConfigError for bad YAML
            raise ConfigError(f"--grid {spec!r}: {str(err).splitlines()[0]}; quote values with YAML's special "
                              "characters, e.g. ['*', '/']") from None
        axes.append(GridAxis(key, tuple(raw), values))
    return axes


def parse_variant(spec: Sequence[str]) -> ExplicitVariant:
    """Parse one ``--variant LABEL [config=FILE] [preset=NAME ...] [KEY=V ...]``; :class:`ConfigError` if malformed.

    Example:
        >>> v = parse_variant(["cal-big", "grpo.gradient_accumulation_steps=32", "task.calibration=null"])
        >>> v.label, v.values, v.config
        ('cal-big', {'grpo.gradient_accumulation_steps': 32, 'task.calibration': None}, None)
        >>> parse_variant(["seed=1"])
        Traceback (most recent call last):
        ...
        ahazero.config.schema.ConfigError: --variant seed=1: give a label first (--variant LABEL KEY=V ...)
    """
    if not spec or "=" in spec[0]:
        raise ConfigError(f"--variant {' '.join(spec)}: give a label first (--variant LABEL KEY=V ...)")
    label = check_name(spec[0], "--variant label")
    overrides: list[str] = []
    values: dict[str, Any] = {}
    config: str | None = None
    presets: list[str] = []
    for item in spec[1:]:
        key, sep, text = item.partition("=")
        key = key.strip()
        if not sep or not key or not text.strip():
            raise ConfigError(f"--variant {label}: {item!r} must look like KEY=VALUE (or config=FILE, preset=NAME)")
        if key == "config":
            if config is not None:
                raise ConfigError(f"--variant {label}: config= is given twice")
            config = text.strip()
        elif key == "preset":
            presets.append(text.strip())
        elif key in _OWNED:
            raise ConfigError(f"--variant {label}: the sweep sets '{key}' ({_OWNED[key]})")
        elif key in values:
            raise ConfigError(f"--variant {label}: {key} is given twice")
        else:
            try:
                values[key] = parse_override(f"{key}={text}")[1]
            except (yaml.YAMLError, ConfigError) as err:
                raise ConfigError(f"--variant {label}: {item!r}: {str(err).splitlines()[0]}") from None
            overrides.append(f"{key}={text}")
    return ExplicitVariant(label, tuple(overrides), values, config, tuple(presets))


def check_size(axes: Sequence[GridAxis], variants: Sequence[ExplicitVariant] = (), seeds: int = 1) -> int:
    """The number of runs :func:`expand` would make, or :class:`ConfigError` past :data:`MAX_VARIANTS` (nothing expanded).

    Example:
        >>> check_size(parse_grid(["a.x=1,2,3", "a.y=1,2"]), seeds=2)
        12
        >>> check_size(parse_grid([f"a.k{i}=" + ",".join(map(str, range(10))) for i in range(8)]))
        Traceback (most recent call last):
        ...
        ahazero.config.schema.ConfigError: the sweep would have 100000000 runs: 10 x 10 x 10 x 10 x 10 x 10 x 10 x 10 grid points; ...
    """
    points = math.prod(len(a.raw) for a in axes) if axes or not variants else 0
    total = (points + len(variants)) * seeds
    if total <= MAX_VARIANTS:
        return total
    parts = [" x ".join(str(len(a.raw)) for a in axes) + " grid points"] if axes else []
    parts += [f"{len(variants)} --variant"] if variants else []
    how = " + ".join(parts or ["1 config"])
    if seeds > 1:
        how = f"({how}) x {seeds} seeds" if len(parts) > 1 else f"{how} x {seeds} seeds"
    raise ConfigError(f"the sweep would have {total} runs: {how}; a sweep runs at most {MAX_VARIANTS}: split it, or "
                      "give fewer values or seeds")


def _value_labels(raw: Sequence[str]) -> list[str]:
    labels = []
    for text in raw:
        if "/" in text and not text.startswith(("[", "{")):
            text = PurePosixPath(text).stem
        labels.append(re.sub(r"[^A-Za-z0-9.]+", "-", text).strip("-.") or "v")
    if len(set(labels)) < len(labels):
        labels = [f"v{i + 1}" for i in range(len(raw))]
    return labels


def _key_labels(keys: Sequence[str]) -> dict[str, str]:
    last = [k.rsplit(".", 1)[-1] for k in keys]
    return {k: (short if last.count(short) == 1 else k) for k, short in zip(keys, last)}


def expand(axes: Sequence[GridAxis], *, sweep: str, seeds: Sequence[int] | None = None,
           variants: Sequence[ExplicitVariant] = ()) -> list[Variant]:
    """Every variant of the grid, in flag order (the last flag varies fastest), then the ``variants``; seeds innermost.

    ``seeds`` adds ``seed=<s>`` to each variant and ``-s<s>`` to its name when there is more than one.
    With ``variants`` and no axes there is no grid variant (no ``base``).

    Example:
        >>> [v.label for v in expand(parse_grid(["a.x=1,2"]), sweep="s", seeds=[7, 8])]
        ['x_1-s7', 'x_1-s8', 'x_2-s7', 'x_2-s8']
        >>> expand([], sweep="solo")[0].run_name
        'solo-base'
    """
    key_labels = _key_labels([a.key for a in axes])
    value_labels = [_value_labels(a.raw) for a in axes]
    seed_list: list[int | None] = list(seeds) if seeds else [None]
    explicit = list(variants)
    variants_out: list[Variant] = []
    points = list(itertools.product(*[range(len(a.raw)) for a in axes])) if axes or not explicit else []
    for index, choice in enumerate(points):
        for seed in seed_list:
            parts = [f"{key_labels[a.key]}_{value_labels[n][i]}" for n, (a, i) in enumerate(zip(axes, choice))]
            if seed is not None and len(seed_list) > 1:
                parts.append(f"s{seed}")
            label = "-".join(parts) or "base"
            if len(sweep) + 1 + len(label) > _MAX_NAME:
                label = f"v{index + 1:02d}" + (f"-s{seed}" if seed is not None and len(seed_list) > 1 else "")
            overrides = [f"{a.key}={a.raw[i]}" for a, i in zip(axes, choice)]
            if seed is not None:
                overrides.append(f"seed={seed}")
            values = {a.key: a.values[i] for a, i in zip(axes, choice)}
            variants_out.append(Variant(label=label, run_name=f"{sweep}-{label}", overrides=tuple(overrides),
                                        values=values, seed=seed))
    for extra in explicit:
        for seed in seed_list:
            label = extra.label + (f"-s{seed}" if seed is not None and len(seed_list) > 1 else "")
            overrides = [*extra.overrides] + ([f"seed={seed}"] if seed is not None else [])
            variants_out.append(Variant(label=label, run_name=f"{sweep}-{label}", overrides=tuple(overrides),
                                        values=dict(extra.values), seed=seed, config=extra.config,
                                        presets=extra.presets))
    return variants_out
