"""Every `ahazero train` and `ahazero eval` command in the README names a config and overrides that check out."""

from __future__ import annotations

import re
import shlex

import pytest
from helpers import REPO

from ahazero.cli import build_parser
from ahazero.config.schema import ConfigError
from ahazero.config.validate import check_config
from ahazero.training.assemble import load_for_device

#: Inputs a README command may name that an earlier command makes (a trained run, a calibration file).
MADE_BEFORE = re.compile(r"calibration file \S+ not found")


def readme_commands(verbs: tuple[str, ...]) -> list[str]:
    """The README's shell lines that run one of ``verbs`` (continuations joined, comments dropped)."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    lines = []
    for block in re.findall(r"```bash\n(.*?)```", text, re.S):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.split(" #")[0].strip()
            if any(line.startswith(f"ahazero {verb} ") for verb in verbs) and "..." not in line:
                lines.append(line)
    return lines


COMMANDS = readme_commands(("train", "eval"))


def test_the_readme_has_the_commands_this_test_reads():
    assert len(COMMANDS) >= 40
    assert any("--preset one-minute" in c for c in COMMANDS) and any("configs/aha.yaml" in c for c in COMMANDS)


@pytest.mark.parametrize("command", COMMANDS)
def test_readme_command_checks_out(command):
    args, extra = build_parser().parse_known_args(shlex.split(command)[1:])
    assert all("=" in e and not e.startswith("-") for e in extra), extra
    # a model another README command trains first stands in as the base model it starts from
    overrides = [re.sub(r"^model\.name_or_path=runs/.*", "model.name_or_path=qwen2.5-coder-0.5b-instruct", o)
                 for o in [*args.overrides, *extra]]
    try:
        cfg = load_for_device(args.config, cuda=True, presets=getattr(args, "preset", None), overrides=overrides)
        check_config(cfg, cuda=True)
    except ConfigError as err:
        if not MADE_BEFORE.search(str(err)):
            raise
