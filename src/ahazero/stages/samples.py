"""The samples file: which completions rejection sampling keeps, and how they are written.

A samples file is JSON lines, one scored completion per line, with the fields ``id``,
``problem``, ``answer`` (the gold), ``prompt`` (as it was sampled), ``prefill`` (the part of the
prompt that opens the answer, e.g. ``<think>``), ``completion`` (the generated text after it),
``rewards`` (every reward of the config), ``reward`` (their weighted total), ``correct``,
``formatted``, ``language_consistency``, ``truncated``, ``completion_tokens``,
``thinking_tokens``, ``reflections``, ``source``, ``kept`` and ``reject_reason``; a cold-start
record may add ``untrained_spans`` (:mod:`ahazero.stages.sft_masks`).

:func:`write_samples` writes the kept completions to ``OUT`` (what ``ahazero sft`` trains on),
the rest to ``OUT.rejected.jsonl`` and the counts to ``OUT.summary.json``.

A completion is kept when it is finished (not cut at the token limit), correct, well formatted
(when the config has a format reward) and language-consistent (at least ``min_language``), is
not a duplicate of one already kept for the same prompt (whitespace ignored), and its prompt
has fewer than ``max_per_prompt`` kept ones so far; the first failing rule is its
``reject_reason``.

Example:
    >>> rules = RejectionRules(max_per_prompt=1)
    >>> recs = [{"id": "a", "completion": "2+2=4</think><answer>4</answer>", "correct": True, "formatted": True,
    ...          "language_consistency": 1.0, "truncated": False},
    ...         {"id": "a", "completion": "2+2 = 4</think><answer>4</answer>", "correct": True, "formatted": True,
    ...          "language_consistency": 1.0, "truncated": False},
    ...         {"id": "a", "completion": "5</think><answer>5</answer>", "correct": False, "formatted": True,
    ...          "language_consistency": 1.0, "truncated": False}]
    >>> [(r["kept"], r["reject_reason"]) for r in select_samples(recs, rules)]
    [(True, None), (False, 'over_limit'), (False, 'wrong')]
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ahazero.cache.atomic_files import atomic_write_lines, atomic_write_text
from ahazero.stages.samples_reader import ReadError, read_records

__all__ = [
    "MAX_TEXT_CHARS",
    "REJECT_REASONS",
    "RejectionRules",
    "SamplesError",
    "read_samples",
    "rejection_reason",
    "render_summary",
    "sample_paths",
    "select_samples",
    "summarize_samples",
    "write_samples",
]

logger = logging.getLogger("ahazero.stages.samples")

MAX_TEXT_CHARS = 2**20
"""Texts of a samples record longer than this many characters are cut while the file is read."""

#: Why a completion was not kept, in the order the rules are checked.
REJECT_REASONS = ("truncated", "wrong", "unformatted", "language", "duplicate", "over_limit")


class SamplesError(ValueError):
    """A samples file cannot be read or used as asked; the message names the file (and line)."""


@dataclass(frozen=True)
class RejectionRules:
    """What rejection sampling keeps."""

    max_per_prompt: int = 1  #: kept completions per prompt at most
    min_language: float = 1.0  #: least language consistency (share of words in the target language)

    def __post_init__(self) -> None:
        if self.max_per_prompt < 1:
            raise ValueError(f"max_per_prompt must be at least 1, got {self.max_per_prompt}")
        if not 0.0 <= self.min_language <= 1.0:
            raise ValueError(f"min_language must be between 0 and 1, got {self.min_language}")


def rejection_reason(record: dict[str, Any], rules: RejectionRules) -> str | None:
    """The first rule a completion fails on its own (not counting duplicates and the per-prompt limit).

    ``formatted`` and ``language_consistency`` may be None (no format reward in the config; a
    thinking block without words): those rules then do not apply.

    Example:
        >>> rejection_reason({"truncated": False, "correct": True, "formatted": False}, RejectionRules())
        'unformatted'
        >>> rejection_reason({"truncated": False, "correct": True, "formatted": True,
        ...                   "language_consistency": 0.8}, RejectionRules(min_language=0.75)) is None
        True
    """
    if record.get("truncated"):
        return "truncated"
    if record.get("correct") is not True:
        return "wrong"
    if record.get("formatted") is False:
        return "unformatted"
    language = record.get("language_consistency")
    if language is not None and language < rules.min_language:
        return "language"
    return None


def _normalized(text: str) -> str:
    return " ".join(text.split())


def select_samples(records: Iterable[dict[str, Any]], rules: RejectionRules) -> list[dict[str, Any]]:
    """Copies of ``records`` with ``kept`` and ``reject_reason`` set, in the same order.

    Earlier records win: the first correct completion of a prompt is kept before a later one.

    Example:
        >>> ok = {"correct": True, "formatted": True, "truncated": False, "language_consistency": None}
        >>> out = select_samples([{"id": "p", "completion": "a", **ok}, {"id": "p", "completion": " a ", **ok},
        ...                       {"id": "p", "completion": "b", **ok}], RejectionRules(max_per_prompt=2))
        >>> [r["reject_reason"] for r in out]
        [None, 'duplicate', None]
    """
    kept_texts: dict[str, set[str]] = {}
    out = []
    for record in records:
        record = dict(record)
        reason = rejection_reason(record, rules)
        prompt_id = str(record.get("id"))
        seen = kept_texts.setdefault(prompt_id, set())
        text = _normalized(str(record.get("prefill") or "") + str(record.get("completion") or ""))
        if reason is None and text in seen:
            reason = "duplicate"
        if reason is None and len(seen) >= rules.max_per_prompt:
            reason = "over_limit"
        if reason is None:
            seen.add(text)
        record["kept"] = reason is None
        record["reject_reason"] = reason
        out.append(record)
    return out


def summarize_samples(records: Sequence[dict[str, Any]], *, rules: RejectionRules,
                      info: dict[str, Any] | None = None) -> dict[str, Any]:
    """Totals and per-prompt counts of selected records (``kept`` set by :func:`select_samples`).

    Example:
        >>> recs = select_samples([{"id": "p", "completion": "a", "correct": True, "truncated": False},
        ...                        {"id": "q", "completion": "b", "correct": False, "truncated": False}],
        ...                       RejectionRules())
        >>> s = summarize_samples(recs, rules=RejectionRules())
        >>> s["sampled"], s["kept"], s["prompts"], s["prompts_kept"], s["rejected"]
        (2, 1, 2, 1, {'wrong': 1})
    """
    per_prompt: dict[str, dict[str, Any]] = {}
    for record in records:
        entry = per_prompt.setdefault(str(record.get("id")), {"id": str(record.get("id")), "sampled": 0,
                                                              "correct": 0, "kept": 0})
        entry["sampled"] += 1
        entry["correct"] += bool(record.get("correct"))
        entry["kept"] += bool(record.get("kept"))
    reasons = Counter(r["reject_reason"] for r in records if r.get("reject_reason"))
    sampled = len(records)
    kept = sum(bool(r.get("kept")) for r in records)
    return {
        **(info or {}),
        "rules": asdict(rules),
        "sampled": sampled,
        "kept": kept,
        "kept_rate": kept / sampled if sampled else None,
        "correct_rate": sum(bool(r.get("correct")) for r in records) / sampled if sampled else None,
        "prompts": len(per_prompt),
        "prompts_kept": sum(1 for e in per_prompt.values() if e["kept"]),
        "rejected": {reason: reasons[reason] for reason in REJECT_REASONS if reasons[reason]},
        "per_prompt": list(per_prompt.values()),
    }


def sample_paths(out: str | Path) -> tuple[Path, Path, Path]:
    """``(kept, rejected, summary)`` files for an output path.

    Example:
        >>> [p.name for p in sample_paths("runs/x/samples.jsonl")]
        ['samples.jsonl', 'samples.rejected.jsonl', 'samples.summary.json']
    """
    out = Path(out)
    stem = out.name.removesuffix(".jsonl")
    return out, out.with_name(f"{stem}.rejected.jsonl"), out.with_name(f"{stem}.summary.json")


def write_samples(records: Sequence[dict[str, Any]], out: str | Path, summary: dict[str, Any]) -> list[Path]:
    """Write kept records to ``out``, the others beside it, and the summary; return the three paths.

    Example:
        >>> import tempfile
        >>> recs = select_samples([{"id": "p", "completion": "a", "correct": True}], RejectionRules())
        >>> paths = write_samples(recs, tempfile.mkdtemp() + "/s.jsonl", summarize_samples(recs, rules=RejectionRules()))
        >>> [len(read_samples(p)) for p in paths[:2]]
        [1, 0]
    """
    kept_path, rejected_path, summary_path = sample_paths(out)
    for path, kept in ((kept_path, True), (rejected_path, False)):  # each whole or not at all
        atomic_write_lines(path, (json.dumps(r, ensure_ascii=False) for r in records if bool(r.get("kept")) == kept))
    atomic_write_text(summary_path, json.dumps(summary, indent=2) + "\n")
    return [kept_path, rejected_path, summary_path]


def read_samples(path: str | Path, *, max_text_chars: int = MAX_TEXT_CHARS, why: str = "longer than ahazero reads",
                 warn: bool = True) -> list[dict[str, Any]]:
    """Every record of a samples file, each text at most ``max_text_chars`` characters; errors name the line.

    The file is read a line at a time with a byte cap (:mod:`ahazero.stages.samples_reader`):
    a longer text is cut while it is read, and a warning (with ``warn``; else a debug line)
    names the line, the field, its size and ``why`` the cut loses nothing that matters. A file
    that is not UTF-8 JSON lines, or a line that is not a JSON object, is a :class:`SamplesError`.

    Example:
        >>> import tempfile, pathlib
        >>> p = pathlib.Path(tempfile.mkdtemp()) / "s.jsonl"
        >>> _ = p.write_text('{"id": "a", "completion": "x"}\\n\\nnot json\\n')
        >>> read_samples(p)
        Traceback (most recent call last):
        ...
        ahazero.stages.samples.SamplesError: .../s.jsonl:3 is not a JSON object
    """
    path = Path(path)
    if not path.is_file():
        raise SamplesError(f"samples file not found: {path}")
    records, cut_lines = [], []
    try:
        for number, record, cuts in read_records(path, max_text_chars=max_text_chars):
            records.append(record)
            if cuts:
                cut_lines.append((number, cuts))
    except ReadError as err:
        raise SamplesError(f"{path}:{err.line} {err.reason}") from None
    except OSError as err:
        raise SamplesError(f"{path} cannot be read ({err.strerror or err})") from None
    level = logging.WARNING if warn else logging.DEBUG
    for number, cuts in cut_lines[:10]:
        fields = ", ".join(f"'{c.field}' ({c.size:,} {c.unit})" for c in cuts)
        logger.log(level, "%s:%d: %s cut to %s characters (%s)", path, number, fields, f"{max_text_chars:,}", why)
    if len(cut_lines) > 10:
        logger.log(level, "%s: texts of %d more records cut to %s characters", path, len(cut_lines) - 10,
                   f"{max_text_chars:,}")
    return records


def render_summary(summary: dict[str, Any]) -> str:
    """A few lines for the terminal: what was sampled, kept, and why the rest was rejected.

    Example:
        >>> print(render_summary({"sampled": 8, "kept": 2, "prompts": 4, "prompts_kept": 2,
        ...                       "rejected": {"wrong": 6}, "correct_rate": 0.25}))
        kept 2 of 8 completions (25.0%) from 4 prompts; 2 prompts have at least one
        correct: 25.0%; rejected: wrong 6
    """
    sampled, kept = summary.get("sampled", 0), summary.get("kept", 0)
    share = f" ({kept / sampled:.1%})" if sampled else ""
    lines = [f"kept {kept} of {sampled} completions{share} from {summary.get('prompts', 0)} prompts; "
             f"{summary.get('prompts_kept', 0)} prompts have at least one"]
    rejected = ", ".join(f"{k} {v}" for k, v in (summary.get("rejected") or {}).items()) or "none"
    correct = summary.get("correct_rate")
    lines.append(f"correct: {'n/a' if correct is None else f'{correct:.1%}'}; rejected: {rejected}")
    return "\n".join(lines)
