"""Spans of a completion that SFT reads but does not train on.

A samples record may carry ``untrained_spans``: ``[[start, end], ...]`` character offsets into
its ``completion``. A reflective cold start made with ``train_on_slips: false`` marks each
slipped step's line this way, so the model sees the slip (and is trained to check it, catch it
and redo the work) without being trained to write it. Records with spans become tokenized rows
(``input_ids`` and ``labels``, ``-100`` on the prompt and on every token that overlaps a span);
SFTTrainer uses such labels as they are.

Example:
    >>> check_spans({"completion": "Step 1: 2 + 2 = 5", "untrained_spans": [[0, 17]]}, 1)
    [(0, 17)]
    >>> check_spans({"completion": "abc", "untrained_spans": [[2, 9]]}, 3)
    Traceback (most recent call last):
    ...
    ahazero.stages.samples.SamplesError: kept record 3: untrained_spans [2, 9] is not inside its 3-character completion
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ahazero.stages.samples import SamplesError

__all__ = ["UNTRAINED_SPANS", "check_spans", "masked_row"]

#: The samples-record field that lists the completion's untrained character spans.
UNTRAINED_SPANS = "untrained_spans"


def check_spans(record: dict[str, Any], number: int) -> list[tuple[int, int]]:
    """A record's untrained spans as ``(start, end)`` pairs inside its completion; a bad value is a ``SamplesError``."""
    spans = record.get(UNTRAINED_SPANS)
    if spans is None:
        return []
    if not isinstance(spans, list):
        raise SamplesError(f"kept record {number}: {UNTRAINED_SPANS} must be a list of [start, end] pairs, "
                           f"got a {type(spans).__name__}")
    length, out = len(record["completion"]), []
    for span in spans:
        if not (isinstance(span, list) and len(span) == 2 and all(type(v) is int for v in span)):
            raise SamplesError(f"kept record {number}: {UNTRAINED_SPANS} holds {span!r}; each entry is "
                               f"[start, end] (whole numbers)")
        start, end = span
        if not 0 <= start < end <= length:
            raise SamplesError(f"kept record {number}: {UNTRAINED_SPANS} {span} is not inside its "
                               f"{length}-character completion")
        out.append((start, end))
    return out


def masked_row(prompt: str, completion: str, spans: Sequence[tuple[int, int]], tokenizer: Any, *,
               mask_prompt: bool = True) -> dict[str, list[int]]:
    """``input_ids`` and ``labels`` for prompt + completion + EOS, as SFTTrainer tokenizes a prompt-completion row.

    The labels are ``-100`` on every completion token that overlaps a span of ``spans``
    (character offsets into ``completion``) and, with ``mask_prompt`` (SFT's
    ``completion_only_loss``, on unless set false), on the prompt: where its tokens and the
    whole text's tokens agree, as SFTTrainer finds it.

    Example:
        >>> from ahazero.models.loading import load_model_and_tokenizer
        >>> _, tok = load_model_and_tokenizer("tiny")
        >>> row = masked_row("Q: 2 + 3?", " 2 + 3 = 6, no: 5", [(1, 10)], tok)
        >>> trained = [i for i, label in zip(row["input_ids"], row["labels"]) if label != -100]
        >>> tok.decode(trained).strip().startswith(", no: 5")
        True
    """
    from trl.data_utils import common_prefix_length

    eos = tokenizer.eos_token or ""
    text = prompt + completion + ("" if not eos or completion.endswith(eos) else eos)
    encoded = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    ids, offsets = encoded["input_ids"], encoded["offset_mapping"]
    prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    prompt_len = common_prefix_length(prompt_ids, ids) if mask_prompt else 0
    shifted = [(len(prompt) + start, len(prompt) + end) for start, end in spans]
    labels = []
    for index, (token, (start, end)) in enumerate(zip(ids, offsets)):
        hidden = index < prompt_len or any(start < s_end and end > s_start for s_start, s_end in shifted)
        labels.append(-100 if hidden else token)
    return {"input_ids": list(ids), "labels": labels}
