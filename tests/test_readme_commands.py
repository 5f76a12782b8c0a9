"""Every command README.md and docs/*.md show is one that works as written (nothing is run).

Commands are read from the pages' ``bash`` blocks (continuations joined, comments dropped, lines
split at ``&&``, ``;``, ``|`` and ``&``) and from inline code spans that start with ``ahazero`` or
``make``. Every ``ahazero SUB ...`` must name a real subcommand whose options the real parser
accepts; the config it names, with its presets and overrides, must check out against the schema
as ``ahazero check`` would on a GPU; every ``make X`` must name a real Makefile target.
"""

from __future__ import annotations

import argparse
import importlib
import re
import shlex
import sys

import pytest
from doc_pages import DOC_PAGES, fenced_blocks, inline_code, page_name, shell_lines
from helpers import REPO

import rewards
from ahazero.cli import build_parser
from ahazero.config.schema import ConfigError
from ahazero.config.validate import check_config
from ahazero.models.registry import NAMED_MODELS
from ahazero.stages.plan import plan_stages
from ahazero.training.assemble import load_for_device

#: Inputs a command may name that an earlier command makes (a calibration file).
MADE_BEFORE = re.compile(r"calibration file \S+ not found")
#: Where a command starts: the console script, its path in .venv, or `python -m ahazero`.
_AHAZERO = re.compile(r"^(?:\S*/)?ahazero$")
_SEPARATORS = {"&&", "||", ";", "|", "&"}


def _tokens(line: str) -> list[str]:
    lex = shlex.shlex(line, posix=True, punctuation_chars="|&;")
    lex.whitespace_split, lex.commenters = True, "#"
    # a shell variable ("$SLURM_NODEID") stands for a value the shell fills in: a number fits every option
    return [re.sub(r"\$\{?\w+\}?", "1", token) for token in lex]


def commands(line: str) -> list[list[str]]:
    """The ``ahazero ...`` and ``make ...`` commands of one shell line, as argument lists.

    >>> commands("make install && .venv/bin/ahazero check c.yaml  # a comment")
    [['make', 'install'], ['ahazero', 'check', 'c.yaml']]
    """
    found, segment = [], []
    for token in [*_tokens(line), ";"]:
        if token not in _SEPARATORS:
            segment.append(token)
            continue
        words, segment = segment, []
        while words and re.fullmatch(r"\w+=.*", words[0]):  # SMOKE=1 scripts/...: the environment, not a word
            words = words[1:]
        for i, word in enumerate(words):
            if word == "make" and i == 0:
                found.append(words)
            elif _AHAZERO.match(word) and (i == 0 or words[i - 1] == "-m"):
                found.append(["ahazero", *words[i + 1:]])
            elif " " in word and "ahazero " in word:  # bash -c '... ahazero train ...'
                found += commands(word)
            else:
                continue
            break
    return found


def _page_commands() -> list[tuple[str, list[str]]]:
    found = []
    for page in DOC_PAGES:
        text = page.read_text(encoding="utf-8")
        spans = [s for s in inline_code(text) if s.startswith(("ahazero ", "make "))]
        for line in [*shell_lines(text), *spans]:
            # `ahazero ...` / `make ...` name no command: prose about commands in general
            found += [(page_name(page), argv) for argv in commands(line) if argv[1:2] != ["..."]]
    return found


COMMANDS = _page_commands()
AHAZERO = [(page, argv) for page, argv in COMMANDS if argv[0] == "ahazero"]
MAKE = [(page, argv) for page, argv in COMMANDS if argv[0] == "make"]


def _id(item: tuple[str, list[str]]) -> str:
    return f"{item[0]}: {shlex.join(item[1])[:90]}"


def _makefile_targets() -> set[str]:
    makefile = (REPO / "Makefile").read_text(encoding="utf-8")
    return set(re.findall(r"^([A-Za-z][\w.-]*):(?!=)", makefile, re.M))


@pytest.fixture(scope="module", autouse=True)
def _rewards_the_docs_ask_for(tmp_path_factory):
    """The reward files the docs ask the reader to write (```python blocks opening ``# rewards/NAME.py``).

    They are written to a folder added to the ``rewards`` package, so ``rewards.NAME:function`` imports
    as it would for the reader.
    """
    folder = tmp_path_factory.mktemp("doc-rewards")
    names = []
    for page in DOC_PAGES:
        for body in fenced_blocks(page.read_text(encoding="utf-8"), "python"):
            match = re.match(r"# rewards/(\w+)\.py\n", body)
            if match:
                (folder / f"{match.group(1)}.py").write_text(body, encoding="utf-8")
                names.append(f"rewards.{match.group(1)}")
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(rewards, "__path__", [*rewards.__path__, str(folder)])
        yield names
    for name in names:
        sys.modules.pop(name, None)


def test_the_docs_have_the_commands_this_test_reads():
    readme = [shlex.join(argv) for page, argv in AHAZERO if page == "README.md"]
    assert len(AHAZERO) >= 120 and len(readme) >= 25
    for sub in ("train", "eval", "check", "traces", "report", "sweep", "stages", "rewards", "tasks", "models"):
        assert any(c.startswith(f"ahazero {sub} ") or c == f"ahazero {sub}" for c in readme), sub
    assert any("--preset one-minute" in c for c in readme) and any("configs/aha.yaml" in c for c in readme)
    assert {"install", "train", "test", "bench"} <= {argv[1] for _, argv in MAKE}


def test_the_readme_reward_scores_as_its_docstring_says(_rewards_the_docs_ask_for):
    assert "rewards.brevity" in _rewards_the_docs_ask_for
    brevity = importlib.import_module("rewards.brevity").brevity
    chat = [{"role": "assistant", "content": "x" * 600}]
    assert brevity(completions=["x" * 150, "x" * 1000, chat], answer=["1", "2", "3"]) == [1.0, 0.0, 0.5]


@pytest.mark.parametrize("make", MAKE, ids=[_id(m) for m in MAKE])
def test_make_names_a_real_target(make):
    page, argv = make
    targets = [a for a in argv[1:] if "=" not in a and not a.startswith("-")]
    missing = set(targets) - _makefile_targets()
    assert not missing, f"{page}: `{shlex.join(argv)}`: no Makefile target {sorted(missing)}"


@pytest.mark.parametrize("command", AHAZERO, ids=[_id(c) for c in AHAZERO])
def test_ahazero_command_parses_and_its_config_checks_out(command, capsys):
    page, argv = command
    parser = build_parser()
    if len(argv) == 2:  # `ahazero sft` in prose names a command: it must exist
        choices = next(a.choices for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        assert argv[1] in choices or argv[1] in ("--help", "-h"), f"{page}: `{shlex.join(argv)}`: no such command"
        return
    try:
        args, extra = parser.parse_known_args(argv[1:])
    except SystemExit:
        pytest.fail(f"{page}: `{shlex.join(argv)}`: {capsys.readouterr().err.strip()}")
    overrides_ok = isinstance(getattr(args, "overrides", None), list) and all(
        "=" in e and not e.startswith("-") for e in extra)
    assert not extra or overrides_ok, f"{page}: `{shlex.join(argv)}`: unrecognized arguments {extra}"
    if args.command == "fetch-model" and not args.name.isupper():  # NAME: a placeholder
        assert args.name in NAMED_MODELS, f"{page}: `{shlex.join(argv)}`: no named model {args.name!r}"
    config = getattr(args, "config", None)
    if config is None or "..." in argv or re.search(r"[A-Z<]", config):  # CONFIG, runs/<name>/...: placeholders
        return
    assert (REPO / config).is_file(), f"{page}: `{shlex.join(argv)}`: no config {config}"
    # a model another command trains first stands in as the base model it starts from
    overrides = [re.sub(r"^model\.name_or_path=runs/.*", "model.name_or_path=qwen2.5-coder-0.5b-instruct", o)
                 for o in [*args.overrides, *extra]]
    try:
        cfg = load_for_device(REPO / config, cuda=True, presets=getattr(args, "preset", None), overrides=overrides)
        check_config(cfg, cuda=True)
        if cfg.stages:
            plan_stages(cfg, cuda=True, require_inputs=False)
    except ConfigError as err:
        if not MADE_BEFORE.search(str(err)):
            pytest.fail(f"{page}: `{shlex.join(argv)}`: {err}")
