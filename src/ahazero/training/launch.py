"""Launch ``ahazero train`` on several GPUs through ``accelerate launch``.

``ahazero train CONFIG --gpus N [--strategy ddp|fsdp|zero2|zero3]`` re-runs itself under
``accelerate launch`` with ``configs/accelerate/<strategy>.yaml``; each process then runs the
ordinary training code, and only the main process writes the run directory.

Example:
    >>> cmd = launch_command(["configs/default.yaml", "seed=1"], gpus=2, strategy="ddp",
    ...                      accelerate_config="configs/accelerate/ddp.yaml", resume=False)
    >>> cmd[1:8]
    ['-m', 'accelerate.commands.launch', '--config_file', 'configs/accelerate/ddp.yaml', '--num_processes', '2', '-m']
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from ahazero.config.schema import ConfigError

__all__ = ["STRATEGIES", "in_distributed_launch", "launch_command", "resolve_accelerate_config"]

STRATEGIES = ("ddp", "fsdp", "zero2", "zero3")


def in_distributed_launch() -> bool:
    """True inside a process started by accelerate / torchrun (so we must not launch again).

    Example:
        >>> import os
        >>> in_distributed_launch() == ("LOCAL_RANK" in os.environ)
        True
    """
    return "LOCAL_RANK" in os.environ or "ACCELERATE_LAUNCHED" in os.environ


def resolve_accelerate_config(strategy: str, path: str | None = None) -> str:
    """The accelerate config for a strategy: ``path`` if given, else ``configs/accelerate/<strategy>.yaml``.

    Example:
        >>> resolve_accelerate_config("ddp")  # from the repository root  # doctest: +SKIP
        'configs/accelerate/ddp.yaml'
        >>> resolve_accelerate_config("horovod")
        Traceback (most recent call last):
        ...
        ahazero.config.schema.ConfigError: unknown strategy 'horovod'; valid choices: ddp, fsdp, zero2, zero3
    """
    if strategy not in STRATEGIES:
        raise ConfigError(f"unknown strategy '{strategy}'; valid choices: {', '.join(STRATEGIES)}")
    chosen = Path(path) if path else Path("configs") / "accelerate" / f"{strategy}.yaml"
    if not chosen.is_file():
        raise ConfigError(
            f"accelerate config not found: {chosen} (run from the repository root, or pass --accelerate-config)"
        )
    return str(chosen)


def launch_command(
    train_args: list[str], *, gpus: int, strategy: str, accelerate_config: str, resume: bool
) -> list[str]:
    """The ``accelerate launch`` command line that runs ``ahazero train`` on ``gpus`` processes.

    Example:
        >>> launch_command(["c.yaml"], gpus=4, strategy="fsdp", accelerate_config="f.yaml", resume=True)[-3:]
        ['train', 'c.yaml', '--resume']
    """
    # `python -m accelerate.commands.launch` is `accelerate launch` from this same environment
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", accelerate_config,
           "--num_processes", str(gpus), "-m", "ahazero", "train", *train_args]
    if resume:
        cmd.append("--resume")
    return cmd
