"""The choices a run is started with, each written once: launchers, evaluation engines, precisions, devices, and
the launch options (how many processes start, where). `click.Choice` in harness/cli takes its tuples from here.

Torch-free: `target_device` asks torch only when "auto" has to look at this machine.
"""
from __future__ import annotations

import re
import shlex
from dataclasses import asdict, dataclass, field

from harness.errors import ReproError

LAUNCHERS = ("none", "torchrun", "slurm")
ENGINES = ("fast", "stock")
PRECISIONS = ("fp32", "tf32", "bf16")
DEVICES = ("auto", "cpu", "cuda")
DEFAULT_MASTER_PORT = 29500
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def check_choice(what: str, value: str, choices: tuple[str, ...]) -> str:
    """`value` if it is one of `choices`, else the one-line refusal naming them (`unknown launcher 'x'`)."""
    if value not in choices:
        raise ReproError(f"unknown {what} '{value}'", fix=f"use one of: {', '.join(choices)}")
    return value


def target_device(requested: str, launcher: str, cuda_here: bool | None = None) -> str:
    """cpu or cuda for a job: `auto` means the GPUs of the machines that run it. Slurm jobs run on the GPU nodes
    (`cuda`); none/torchrun run here, so `auto` follows this machine's torch.cuda.is_available()."""
    check_choice("device", requested, DEVICES)
    if requested != "auto":
        return requested
    if launcher == "slurm":
        return "cuda"
    if cuda_here is None:
        import torch
        cuda_here = torch.cuda.is_available()
    return "cuda" if cuda_here else "cpu"


def check_script_value(flag: str, value: str) -> str:
    """A value bound for job.sbatch: one line without control characters, or a one-line ReproError."""
    if _CONTROL.search(value):
        raise ReproError(f"{flag} {value!r} holds a newline or control character, which would change job.sbatch",
                         fix=f"give {flag} a single-line value")
    return value


def split_arg(flag: str, value: str) -> list[str]:
    """`--sbatch-arg "--mem 4G"` is two words, `--sbatch-arg "--comment='a b'"` one: split as a shell would."""
    try:
        return shlex.split(value)
    except ValueError as exc:
        raise ReproError(f"{flag} {value!r} has an unbalanced quote", fix=f"quote the whole {flag} value once") from exc


@dataclass
class LaunchOptions:
    """How many processes start and where. `gpus` is per node; on a CPU machine it counts CPU processes."""
    launcher: str = "none"
    gpus: int = 1
    nnodes: int = 1
    node_rank: int = 0
    master_addr: str | None = None
    master_port: int | None = None
    partition: str | None = None
    account: str | None = None
    time: str | None = None
    cpus_per_task: int = 5
    srun_args: list[str] = field(default_factory=list)
    sbatch_args: list[str] = field(default_factory=list)
    slurm_wait: bool = False

    @property
    def world_size(self) -> int:
        return self.gpus * self.nnodes

    def validate(self) -> None:
        if self.launcher not in LAUNCHERS:
            raise ReproError(f"unknown launcher '{self.launcher}'", fix=f"use one of: {', '.join(LAUNCHERS)}")
        if self.gpus < 1 or self.nnodes < 1:
            raise ReproError("--gpus and --nnodes must be at least 1")
        if not 0 <= self.node_rank < self.nnodes:
            raise ReproError(f"--node-rank {self.node_rank} is outside 0..{self.nnodes - 1}",
                             fix="give each node a rank below --nnodes")
        if self.launcher == "none" and self.world_size > 1:
            raise ReproError(f"--launcher none runs one process, but --gpus {self.gpus} --nnodes {self.nnodes} "
                             f"asks for {self.world_size}", fix="add `--launcher torchrun` (or `--launcher slurm`)")
        if self.launcher == "torchrun" and self.nnodes > 1 and not self.master_addr:
            raise ReproError("--nnodes > 1 needs the address of node 0",
                             fix="add `--master-addr <node 0 host>` (and the same `--master-port` on every node)")
        if self.launcher == "slurm" and self.node_rank != 0:
            raise ReproError("--node-rank is for torchrun; Slurm starts every node from one sbatch",
                             fix="drop --node-rank (submit once, with --nnodes)")
        if self.launcher == "slurm":
            for flag, value in (("--partition", self.partition), ("--account", self.account),
                                ("--time", self.time), ("--master-addr", self.master_addr)):
                if value is not None:
                    check_script_value(flag, value)
            for value in self.srun_args:
                check_script_value("--srun-arg", value)
            for value in self.sbatch_args:
                split_arg("--sbatch-arg", check_script_value("--sbatch-arg", value))

    def record(self) -> dict:
        data = asdict(self)
        data["world_size"] = self.world_size
        return data

    def cli_flags(self) -> list[str]:
        """These options as `repro eval/train` flags, defaults left out."""
        flags: list[str] = []
        defaults = LaunchOptions()
        for name in ("launcher", "gpus", "nnodes", "node_rank", "master_addr", "master_port", "partition",
                     "account", "time", "cpus_per_task"):
            value = getattr(self, name)
            if value != getattr(defaults, name):
                flags += [f"--{name.replace('_', '-')}", str(value)]
        flags += [f"--srun-arg={a}" for a in self.srun_args] + [f"--sbatch-arg={a}" for a in self.sbatch_args]
        return flags + (["--slurm-wait"] if self.slurm_wait else [])
