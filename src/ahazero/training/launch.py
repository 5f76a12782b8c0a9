"""Launch ``ahazero train`` on several GPUs or machines through ``accelerate launch``.

``ahazero train CONFIG --gpus G [--strategy ddp|fsdp|zero2|zero3]`` re-runs itself under
``accelerate launch`` with ``configs/accelerate/<strategy>.yaml`` (or ``--accelerate-config
FILE``); each process then runs the ordinary training code, and only the main process writes
the run directory. ``--num-machines N --machine-rank R --main-process-ip IP
[--main-process-port P]``, given on every machine, join N machines into one job of G x N
processes; a config file may hold the same four settings instead (the flags win).

Example:
    >>> plan = LaunchPlan(accelerate_config="configs/accelerate/ddp.yaml", gpus=2)
    >>> launch_command(["configs/default.yaml", "seed=1"], plan, resume=False)[1:9]
    ['-m', 'accelerate.commands.launch', '--config_file', 'configs/accelerate/ddp.yaml', '--num_processes', '2', '--num_machines', '1']
"""

from __future__ import annotations

import importlib.util
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ahazero.config.schema import ConfigError

__all__ = [
    "STRATEGIES",
    "LaunchPlan",
    "in_distributed_launch",
    "launch_command",
    "plan_launch",
    "read_accelerate_config",
    "resolve_accelerate_config",
]

STRATEGIES = ("ddp", "fsdp", "zero2", "zero3")

#: The accelerate configs shipped in a source checkout (found from any working directory).
_SHIPPED = Path(__file__).resolve().parents[3] / "configs" / "accelerate"


@dataclass(frozen=True)
class LaunchPlan:
    """This machine's part of a distributed run: its processes and how it meets the others."""

    accelerate_config: str
    gpus: int  #: processes on this machine (one per GPU)
    num_machines: int = 1
    machine_rank: int = 0
    main_process_ip: str | None = None
    main_process_port: int | None = None
    warnings: tuple[str, ...] = ()

    @property
    def num_processes(self) -> int:
        """Processes in the whole job, over every machine (accelerate's ``--num_processes``)."""
        return self.gpus * self.num_machines


def in_distributed_launch() -> bool:
    """True inside a process started by accelerate / torchrun (so we must not launch again).

    Example:
        >>> import os
        >>> in_distributed_launch() == ("LOCAL_RANK" in os.environ or "ACCELERATE_LAUNCHED" in os.environ)
        True
    """
    return "LOCAL_RANK" in os.environ or "ACCELERATE_LAUNCHED" in os.environ


def resolve_accelerate_config(strategy: str, path: str | None = None) -> str:
    """The accelerate config for a strategy: ``path`` if given, else ``configs/accelerate/<strategy>.yaml``.

    The shipped file is looked up under the working directory first, then in the source
    checkout this package runs from.

    Example:
        >>> Path(resolve_accelerate_config("ddp")).name
        'ddp.yaml'
        >>> resolve_accelerate_config("horovod")
        Traceback (most recent call last):
        ...
        ahazero.config.schema.ConfigError: unknown strategy 'horovod'; valid choices: ddp, fsdp, zero2, zero3
    """
    if strategy not in STRATEGIES:
        raise ConfigError(f"unknown strategy '{strategy}'; valid choices: {', '.join(STRATEGIES)}")
    if path:
        if not Path(path).is_file():
            raise ConfigError(f"--accelerate-config: file not found: {path}")
        return str(path)
    relative = Path("configs") / "accelerate" / f"{strategy}.yaml"
    for chosen in (relative, _SHIPPED / f"{strategy}.yaml"):
        if chosen.is_file():
            return str(chosen)
    raise ConfigError(f"accelerate config not found: {relative} (run from the repository root, "
                      "or pass --accelerate-config FILE)")


def read_accelerate_config(path: str) -> dict[str, Any]:
    """An accelerate config file (YAML or JSON) as a dict; a clear error when it is not one.

    Example:
        >>> read_accelerate_config(resolve_accelerate_config("zero3"))["deepspeed_config"]["zero_stage"]
        3
    """
    import yaml

    try:
        data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as err:
        raise ConfigError(f"accelerate config {path} cannot be read: {err}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"accelerate config {path} is not a mapping of accelerate settings")
    return data


def _pick(flag_value: Any, flag: str, data: dict[str, Any], key: str, path: str | None,
          default: Any) -> tuple[Any, str]:
    """A setting and where it came from: the command-line flag, else the accelerate config file."""
    if flag_value is not None:
        return flag_value, flag
    if path is not None and data.get(key) is not None:
        return data[key], f"{key} in {path}"
    return default, flag


def _as_int(value: Any, source: str) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{source} must be a whole number, got {value!r}") from None


def _config_warnings(data: dict[str, Any], path: str) -> list[str]:
    """What a run under this accelerate config would miss; an error when it cannot start at all."""
    kind = str(data.get("distributed_type", "")).upper()
    notes = []
    if kind == "DEEPSPEED":
        if importlib.util.find_spec("deepspeed") is None:
            raise ConfigError(f"{path} uses DeepSpeed, which is not installed here (pip install deepspeed; "
                              f"the ddp and fsdp strategies need nothing more)")
        ds = data.get("deepspeed_config") or {}
        if str(ds.get("zero_stage")) == "3" and not ds.get("zero3_save_16bit_model"):
            notes.append(f"{path}: without zero3_save_16bit_model: true, ZeRO-3 saves the final model as a "
                         "DeepSpeed checkpoint that `ahazero eval --model final` cannot load")
    if kind == "FSDP":
        fsdp = data.get("fsdp_config") or {}
        state = str(fsdp.get("fsdp_state_dict_type", fsdp.get("state_dict_type", "FULL_STATE_DICT")))
        if "FULL_STATE_DICT" not in state.upper():
            notes.append(f"{path}: with fsdp_state_dict_type {state}, transformers saves no final model "
                         "(it writes runs/<name>/model only from a FULL_STATE_DICT), so `ahazero eval --model "
                         "final` has nothing to read; use FULL_STATE_DICT")
    return notes


def plan_launch(
    *,
    gpus: int | None = None,
    num_machines: int | None = None,
    machine_rank: int | None = None,
    main_process_ip: str | None = None,
    main_process_port: int | None = None,
    strategy: str | None = None,
    accelerate_config: str | None = None,
    visible_gpus: int | None = None,
) -> LaunchPlan | None:
    """Check the launch options and return how to launch, or ``None`` for one plain process.

    ``gpus`` is the number of processes on this machine (default: the config file's
    ``num_processes`` divided over its machines, else 1). The machine settings come from the
    flags, else from the accelerate config file (``num_machines``, ``machine_rank``,
    ``main_process_ip``, ``main_process_port``). Training goes through accelerate when the
    job has more than one process or a strategy or config file was asked for by name.
    ``visible_gpus`` (this machine's GPU count, ``None`` without CUDA) bounds ``gpus``.

    Example:
        >>> plan_launch() is None
        True
        >>> plan = plan_launch(gpus=8, num_machines=2, machine_rank=1, main_process_ip="10.0.0.1")
        >>> plan.num_processes, plan.machine_rank, Path(plan.accelerate_config).name
        (16, 1, 'ddp.yaml')
        >>> plan_launch(num_machines=2, machine_rank=2, main_process_ip="10.0.0.1")
        Traceback (most recent call last):
        ...
        ahazero.config.schema.ConfigError: --machine-rank is 2, out of range for 2 machines: valid machine ranks are 0-1
    """
    wants = (strategy is not None or accelerate_config is not None or (gpus or 1) > 1 or (num_machines or 1) > 1)
    path = resolve_accelerate_config(strategy or "ddp", accelerate_config) if wants else None
    data = read_accelerate_config(path) if path else {}

    machines, machines_src = _pick(num_machines, "--num-machines", data, "num_machines", path, 1)
    machines = _as_int(machines, machines_src)
    if machines < 1:
        raise ConfigError(f"{machines_src} must be 1 or more, got {machines}")
    rank, rank_src = _pick(machine_rank, "--machine-rank", data, "machine_rank", path, 0)
    rank = _as_int(rank, rank_src)
    if not 0 <= rank < machines:
        valid = "0" if machines == 1 else f"0-{machines - 1}"
        raise ConfigError(f"{rank_src} is {rank}, out of range for {machines} machine{'s' * (machines > 1)}: "
                          f"valid machine rank{'s are' if machines > 1 else ' is'} {valid}")
    ip, ip_src = _pick(main_process_ip, "--main-process-ip", data, "main_process_ip", path, None)
    if ip is not None and (not str(ip).strip() or any(c.isspace() for c in str(ip))):
        raise ConfigError(f"{ip_src} {ip!r} is not a host name or address")
    if machines > 1 and ip is None:
        raise ConfigError(f"{machines} machines need --main-process-ip: the address of the machine with "
                          "--machine-rank 0, reachable from every machine")
    if machines == 1 and ip is not None and main_process_ip is not None:
        raise ConfigError("--main-process-ip is set but the job has one machine; add --num-machines N (N > 1) "
                          "or leave it out")
    port, port_src = _pick(main_process_port, "--main-process-port", data, "main_process_port", path, None)
    if port is not None:
        port = _as_int(port, port_src)
        if not 1 <= port <= 65535:
            raise ConfigError(f"{port_src} must be a port number 1-65535, got {port}")

    if gpus is not None:
        per_machine, gpus_src = _as_int(gpus, "--gpus"), "--gpus"
    elif data.get("num_processes") is not None:
        total = _as_int(data["num_processes"], f"num_processes in {path}")
        if total % machines:
            raise ConfigError(f"num_processes {total} in {path} does not divide over {machines} machines; "
                              "pass --gpus (processes per machine)")
        per_machine, gpus_src = total // machines, f"num_processes in {path}"
    else:
        per_machine, gpus_src = 1, "--gpus"
    if per_machine < 1:
        raise ConfigError(f"{gpus_src} must be 1 or more (processes on each machine), got {per_machine}")
    if visible_gpus is not None and per_machine > visible_gpus:
        raise ConfigError(f"{gpus_src} asks for {per_machine} processes on this machine, which has "
                          f"{visible_gpus} GPU{'s' * (visible_gpus != 1)}")
    if path is None:
        if main_process_port is not None:
            raise ConfigError("--main-process-port applies only to a launch through accelerate (--gpus G > 1 or "
                              "--num-machines N > 1); one process has nothing to connect")
        return None
    return LaunchPlan(accelerate_config=path, gpus=per_machine, num_machines=machines, machine_rank=rank,
                      main_process_ip=None if ip is None else str(ip), main_process_port=port,
                      warnings=tuple(_config_warnings(data, path)))


def launch_command(train_args: list[str], plan: LaunchPlan, *, resume: bool) -> list[str]:
    """The ``accelerate launch`` command line that runs this machine's part of ``ahazero train``.

    Example:
        >>> plan = LaunchPlan(accelerate_config="f.yaml", gpus=4, num_machines=2, machine_rank=1,
        ...                   main_process_ip="10.0.0.1", main_process_port=29500)
        >>> " ".join(launch_command(["c.yaml"], plan, resume=True)[3:])
        '--config_file f.yaml --num_processes 8 --num_machines 2 --machine_rank 1 --main_process_ip 10.0.0.1 --main_process_port 29500 -m ahazero train c.yaml --resume'
    """
    # `python -m accelerate.commands.launch` is `accelerate launch` from this same environment
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", plan.accelerate_config,
           "--num_processes", str(plan.num_processes), "--num_machines", str(plan.num_machines),
           "--machine_rank", str(plan.machine_rank)]
    if plan.main_process_ip is not None:
        cmd += ["--main_process_ip", plan.main_process_ip]
    if plan.main_process_port is not None:
        cmd += ["--main_process_port", str(plan.main_process_port)]
    cmd += ["-m", "ahazero", "train", *train_args]
    if resume:
        cmd.append("--resume")
    return cmd
