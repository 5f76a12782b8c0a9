"""The configuration reference page is written from the schema, and the checked-in page is current."""

from __future__ import annotations

import subprocess
import sys
import types
import typing

from helpers import REPO
from pydantic import BaseModel

from ahazero.config.reference import REFERENCE_PAGE, REGENERATE, reference_markdown
from ahazero.config.schema import ExperimentConfig


def test_the_checked_in_reference_is_current():
    page = (REPO / REFERENCE_PAGE).read_text(encoding="utf-8")
    assert page == reference_markdown(), f"{REFERENCE_PAGE} is stale; regenerate it with: {REGENERATE}"


def _keys(model: type[BaseModel], prefix: str = "") -> list[tuple[str, object]]:
    """Every dotted key of the schema (list entries as ``N``) with its field."""
    found = []
    for name, field in model.model_fields.items():
        found.append((prefix + name, field))
        union = typing.get_origin(field.annotation) in (typing.Union, types.UnionType)
        for arg in typing.get_args(field.annotation) if union else (field.annotation,):
            inner = typing.get_args(arg)[0] if typing.get_origin(arg) is list else arg
            if isinstance(inner, type) and issubclass(inner, BaseModel):
                found += _keys(inner, f"{prefix}{name}{'.N' if inner is not arg else ''}.")
    return found


def test_every_key_of_the_schema_has_a_row_with_its_help_and_choices():
    page = reference_markdown()
    rows = {line.split("|")[1].strip(): line for line in page.splitlines() if line.startswith("| `")}
    keys = _keys(ExperimentConfig)
    assert {"model.lora.r", "generation.graph_mode", "stages.N.kind", "rewards.N.weight", "collapse.min_z"} <= {
        k for k, _ in keys}
    for key, field in keys:
        row = rows[f"`{key}`"]
        assert (field.description or "")[:20].replace("<", "&lt;").replace("`", "") in row.replace("`", ""), key
        for choice in typing.get_args(field.annotation) if typing.get_origin(field.annotation) is typing.Literal else ():
            assert f"`{choice}`" in row, (key, choice)
    assert "| `on_collapse` | string | `warn` | one of `warn`, `stop`, `off` |" in page
    assert "| `grpo.num_generations` | an integer &gt;= 2 |" in page  # the checked grpo ranges
    assert "| `format_gate` | `format`: `{}`, `accuracy`: `{}` |" in page  # the registered rewards' options


def test_the_script_writes_the_page_and_check_mode_finds_a_stale_one(tmp_path):
    page = tmp_path / "reference.md"
    script = [sys.executable, str(REPO / "scripts" / "gen_config_reference.py"), "--page", str(page)]
    stale = subprocess.run([*script, "--check"], capture_output=True, text=True)
    assert stale.returncode == 1 and REGENERATE in stale.stderr
    assert subprocess.run(script, capture_output=True, text=True).returncode == 0
    assert page.read_text(encoding="utf-8") == reference_markdown()
    assert subprocess.run([*script, "--check"], capture_output=True, text=True).returncode == 0
