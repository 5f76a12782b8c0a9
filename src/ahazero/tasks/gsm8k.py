"""``gsm8k``: grade-school math word problems (GSM8K): from the Hugging Face Hub, the bundled copy, or local files.

Where the rows come from, per split (the first that applies):

1. ``train_file`` / ``test_file``: an explicit ``.jsonl``, ``.json`` or ``.parquet`` file for
   that split (e.g. only ``test_file`` to evaluate on a local test set);
2. ``source: bundled``: the copy of the upstream GSM8K files shipped in the package
   (:mod:`ahazero.tasks.bundled`, sha256-pinned; 7,473 train and 1,319 test problems);
3. ``source`` naming a local directory: ``<dir>/<split>.jsonl`` (or ``.json`` / ``.parquet``),
   as in the original GSM8K repository, or the hub snapshot layout
   ``<dir>/<hub_config>/<split>-*.parquet`` (``huggingface-cli download openai/gsm8k --repo-type
   dataset --local-dir <dir>``);
4. otherwise ``source`` is a hub id: ``datasets.load_dataset(source, hub_config, split=split)``.
   For the default ``openai/gsm8k`` (config ``main``) the bundled copy is used when the hub is
   not reachable, or fails to serve it, with a log line saying so.

A ``source`` is local when it exists, starts with ``/``, ``.`` or ``~``, or ends with a data-file
suffix; a single file as ``source`` is refused (GSM8K has two files: use ``train_file`` /
``test_file``). Rows are in the raw GSM8K format ``{"question", "answer"}``: the gold number is
what follows the last ``####`` in ``answer`` (see :func:`extract_gsm8k_answer`); the whole
worked answer is kept as ``solution``. ``id`` is ``gsm8k-<split>-<row index>``.

Example:
    >>> GSM8KTask(source="/data/gsm8k").columns
    ('id', 'problem', 'answer', 'solution')
    >>> extract_gsm8k_answer("48 + 24 = <<48+24=72>>72 clips\\n#### 72")
    '72'
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, ClassVar

import datasets
from pydantic import Field

from ahazero.tasks._checked_read import read_task_file
from ahazero.tasks._io import is_local_source, load_hub_split, require_columns
from ahazero.tasks.base import Split, Task, rows_to_dataset, subsample_indices
from ahazero.tasks.bundled import BUNDLED_SOURCE, bundled_path, hub_or_bundled, read_bundled

__all__ = ["GSM8KTask", "extract_gsm8k_answer"]

logger = logging.getLogger(__name__)

HUB_ID = "openai/gsm8k"
COLUMNS = ["question", "answer"]

_LOCAL_HINT = (
    "source='bundled' (the copy shipped with ahazero), "
    "source='/path/to/gsm8k' (a directory with train.jsonl and test.jsonl), "
    "or train_file='/path/to/train.jsonl' / test_file='/path/to/test.jsonl'"
)


def extract_gsm8k_answer(solution: str) -> str:
    """The gold number of a GSM8K answer: the text after the last ``####``, cleaned.

    Whitespace, thousands separators (commas), ``$`` signs and a trailing period are removed.
    Raises :class:`ValueError` when there is no ``####``.

    Example:
        >>> extract_gsm8k_answer("... so she pays $1,250.\\n#### $1,250.")
        '1250'
    """
    if "####" not in solution:
        raise ValueError(f"no '####' final-answer marker in GSM8K answer: {solution[-80:]!r}")
    answer = solution.rsplit("####", 1)[1].strip().replace(",", "").replace("$", "").strip()
    while answer.endswith("."):
        answer = answer[:-1].rstrip()
    if not answer:
        raise ValueError(f"empty final answer after '####' in GSM8K answer: {solution[-80:]!r}")
    return answer


def _directory_files(directory: Path, split: str, hub_config: str) -> list[Path]:
    for suffix in (".jsonl", ".json", ".parquet"):
        if (directory / f"{split}{suffix}").is_file():
            return [directory / f"{split}{suffix}"]
    shards = sorted((directory / hub_config).glob(f"{split}-*.parquet"))
    if shards:
        return shards
    raise FileNotFoundError(
        f"task 'gsm8k': no {split} data in directory {directory}: looked for {split}.jsonl, "
        f"{split}.json, {split}.parquet and {hub_config}/{split}-*.parquet"
    )


class GSM8KTask(Task):
    """GSM8K from a hub id (default ``openai/gsm8k``), a local directory or explicit split files.

    Example:
        >>> import json, pathlib, tempfile
        >>> d = pathlib.Path(tempfile.mkdtemp())
        >>> for split in ("train", "test"):
        ...     _ = (d / f"{split}.jsonl").write_text(json.dumps(
        ...         {"question": f"{split}: 2 + 3?", "answer": "2 + 3 = 5\\n#### 5"}) + "\\n")
        >>> row = GSM8KTask(source=str(d)).load("test")[0]
        >>> row["id"], row["problem"], row["answer"]
        ('gsm8k-test-00000', 'test: 2 + 3?', '5')
    """

    name: ClassVar[str] = "gsm8k"
    columns: ClassVar[tuple[str, ...]] = ("id", "problem", "answer", "solution")
    features: ClassVar[datasets.Features] = datasets.Features(
        {name: datasets.Value("string") for name in ("id", "problem", "answer", "solution")}
    )

    source: str = Field(
        HUB_ID,
        min_length=1,
        description="Hub dataset id (the default falls back to the bundled copy without the hub), "
        "'bundled' (the copy shipped with ahazero), or a local directory with train/test files.",
    )
    hub_config: str = Field("main", min_length=1, description="Hub config name ('main' or 'socratic').")
    train_file: str | None = Field(
        None, description="Local train file (.jsonl/.json/.parquet); overrides source."
    )
    test_file: str | None = Field(
        None, description="Local test file (.jsonl/.json/.parquet); overrides source."
    )

    def _records(self, split: Split) -> tuple[list[dict[str, Any]], str]:
        explicit = self.train_file if split == "train" else self.test_file
        if explicit is not None:
            return read_task_file(explicit, COLUMNS, self.name), explicit
        if self.source == BUNDLED_SOURCE:
            return read_bundled("gsm8k", split), f"bundled copy {bundled_path('gsm8k', split)}"
        if not is_local_source(self.source):
            if self.source == HUB_ID and self.hub_config == "main":
                return hub_or_bundled(self.name, self.source, self.hub_config, split, _LOCAL_HINT, "gsm8k")
            rows = load_hub_split(self.name, self.source, self.hub_config, split, _LOCAL_HINT)
            return rows, f"{self.source} ({split})"
        path = Path(self.source).expanduser()
        if not path.exists():
            raise FileNotFoundError(
                f"task 'gsm8k': source directory not found: {self.source!r} (expected a directory with "
                "train.jsonl and test.jsonl, or a hub id such as 'openai/gsm8k')"
            )
        if path.is_file():
            raise ValueError(
                f"task 'gsm8k': source {str(path)!r} is a single file, but GSM8K has separate train "
                "and test files; pass train_file=... and/or test_file=..., or a directory holding "
                "train.jsonl and test.jsonl"
            )
        files = _directory_files(path, split, self.hub_config)
        records = [record for file in files for record in read_task_file(file, COLUMNS, self.name)]
        return records, str(files[0]) if len(files) == 1 else f"{path} ({split})"

    def _load(self, split: Split) -> datasets.Dataset:
        records, where = self._records(split)
        require_columns(records, COLUMNS, where)
        rows = []
        for index in subsample_indices(len(records), self.cap(split), self.seed, split):
            record = records[index]
            try:
                gold = extract_gsm8k_answer(str(record["answer"]))
            except ValueError as err:
                raise ValueError(f"{where}: row {index}: {err}") from None
            rows.append(
                {
                    "id": f"gsm8k-{split}-{index:05d}",
                    "problem": str(record["question"]).strip(),
                    "answer": gold,
                    "solution": str(record["answer"]),
                }
            )
        logger.info("task gsm8k: %d %s rows from %s", len(rows), split, where)
        return rows_to_dataset(rows, self.features)
