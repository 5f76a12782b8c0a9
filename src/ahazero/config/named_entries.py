"""Lists of named entries (``rewards``, ``stages``): an override that changes what an entry is replaces it.

``rewards.1.name=format_gate`` makes entry 1 a fresh ``format_gate`` reward with that reward's
own defaults: the old reward's options (``require_answer_tags: true``) are dropped and its
``weight`` is kept, and one INFO line says so. A stage's ``kind`` works the same way:
``stages.0.kind=sft`` keeps the stage's ``name`` and ``overrides`` and drops what only the old
kind reads (``n``, ``prompts``, ...). Naming the entry's current reward (or kind) again changes
nothing; the whole-entry form ``'rewards.1={name: format_gate, weight: 0.5}'`` sets exactly
what it says. Among one set of overrides an entry's new name applies before the rest, so
``rewards.1.strict=true rewards.1.name=format_gate`` gives the new reward that option.

Example:
    >>> entry = {"name": "think_format", "weight": 0.5, "require_answer_tags": True}
    >>> new, note = replaced_entry(["rewards", "1", "name"], entry, "format_gate")
    >>> new
    {'name': 'format_gate', 'weight': 0.5}
    >>> note
    "rewards.1: format_gate replaces think_format (kept: weight=0.5; dropped think_format's options: require_answer_tags=True)"
    >>> replaced_entry(["rewards", "1", "name"], entry, "think_format") is None
    True
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = ["NAMED_LISTS", "is_selector", "replaced_entry", "selectors_first"]

#: list section -> (the key that says what an entry is, the keys an entry keeps when that changes)
NAMED_LISTS: dict[str, tuple[str, tuple[str, ...]]] = {
    "rewards": ("name", ("weight",)),
    "stages": ("kind", ("name", "overrides")),
}


def is_selector(path: Sequence[str]) -> bool:
    """True for the key path of an entry's name in a list of named entries (``rewards.<i>.name``).

    Example:
        >>> is_selector(["rewards", "0", "name"]), is_selector(["rewards", "0", "weight"])
        (True, False)
        >>> is_selector(["stages", "2", "kind"]), is_selector(["task", "name"])
        (True, False)
    """
    return (len(path) == 3 and path[0] in NAMED_LISTS and str(path[1]).isdigit()
            and path[2] == NAMED_LISTS[path[0]][0])


def replaced_entry(path: Sequence[str], entry: Any, value: Any) -> tuple[dict[str, Any], str] | None:
    """The entry that setting ``path`` to ``value`` makes, and the line that says what changed.

    None when ``path`` is not an entry's name (:func:`is_selector`), when the entry is not a
    mapping, or when the name does not change (the entry keeps its options).

    Example:
        >>> stage = {"name": "data", "kind": "sample", "n": 8, "overrides": {"seed": 1}}
        >>> replaced_entry(["stages", "0", "kind"], stage, "coldstart")[0]
        {'kind': 'coldstart', 'name': 'data', 'overrides': {'seed': 1}}
    """
    if not is_selector(path) or not isinstance(entry, dict) or entry.get(path[2]) == value:
        return None
    section, index, selector = path
    kept_keys = NAMED_LISTS[section][1]
    new = {selector: value, **{k: entry[k] for k in kept_keys if k in entry}}
    old = entry.get(selector)
    dropped = {k: v for k, v in entry.items() if k not in new}
    note = f"{section}.{index}: {value} replaces {old}"
    details = []
    kept = [f"{k}={_short(entry[k])}" for k in kept_keys if k in entry and entry[k] not in (None, {}, [])]
    if kept:
        details.append("kept: " + ", ".join(kept))
    if dropped:
        details.append(f"dropped {old}'s options: " + ", ".join(f"{k}={_short(v)}" for k, v in dropped.items()))
    return new, note + (f" ({'; '.join(details)})" if details else "")


def _short(value: Any, limit: int = 40) -> str:
    text = repr(value) if isinstance(value, str) else str(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def selectors_first(items: Sequence[tuple[list[str], Any]]) -> list[tuple[list[str], Any]]:
    """Overrides in their order, except that entries' new names come first (a stable sort).

    Example:
        >>> selectors_first([(["rewards", "1", "strict"], True), (["rewards", "1", "name"], "format_gate")])
        [(['rewards', '1', 'name'], 'format_gate'), (['rewards', '1', 'strict'], True)]
    """
    return sorted(items, key=lambda item: not is_selector(item[0]))
