"""The commands each launcher runs, built without starting anything (no engine needed)."""
from __future__ import annotations

import shlex
import sys
from pathlib import Path

import pytest

from harness.errors import ReproError
from harness.launch import LaunchOptions, plan

JOB = Path("/runs/x/job.json")
RUN = Path("/runs/x")
ENTRY = f"-m harness.engine.entry --job {JOB}"


def test_local_runs_the_entry_module_once():
    p = plan(LaunchOptions(), JOB, RUN, "j")
    assert p.command == f"{shlex.quote(sys.executable)} {ENTRY}"
    assert p.script is None


def test_torchrun_one_node_is_standalone():
    p = plan(LaunchOptions("torchrun", gpus=2), JOB, RUN, "j")
    assert p.command == (f"{shlex.quote(sys.executable)} -m torch.distributed.run --nnodes 1 --standalone "
                         f"--nproc-per-node 2 {ENTRY}")


def test_torchrun_two_nodes():
    opts = LaunchOptions("torchrun", gpus=8, nnodes=2, node_rank=1, master_addr="10.0.0.1")
    assert plan(opts, JOB, RUN, "j").command == (
        f"{shlex.quote(sys.executable)} -m torch.distributed.run --nnodes 2 --node-rank 1 --master-addr 10.0.0.1 "
        f"--master-port 29500 --nproc-per-node 8 {ENTRY}")
    assert opts.world_size == 16


def test_slurm_script_has_one_task_per_gpu_and_finalizes():
    opts = LaunchOptions("slurm", gpus=4, nnodes=2, partition="gpu", account="proj", time="02:00:00",
                         srun_args=["--mpi=none"], sbatch_args=["--exclusive"], slurm_wait=True)
    p = plan(opts, JOB, RUN, "repro-x-eval")
    assert p.argv == ["sbatch", "--parsable", "--wait", str(RUN / "job.sbatch")]
    lines = p.script.splitlines()
    for expected in ("#SBATCH --job-name=repro-x-eval", "#SBATCH --nodes=2", "#SBATCH --ntasks-per-node=4",
                     "#SBATCH --gpus-per-node=4", "#SBATCH --partition=gpu", "#SBATCH --account=proj",
                     "#SBATCH --time=02:00:00", "#SBATCH --exclusive", "export MASTER_PORT=29500",
                     f"srun --kill-on-bad-exit=1 --mpi=none {shlex.quote(sys.executable)} -u {ENTRY}",
                     f'{shlex.quote(sys.executable)} -m harness.launch finalize --run-dir {RUN} --rc "$rc"'):
        assert expected in lines, expected


@pytest.mark.parametrize("opts, words", [
    (LaunchOptions("none", gpus=2), "--launcher torchrun"),
    (LaunchOptions("torchrun", gpus=2, nnodes=2), "--master-addr"),
    (LaunchOptions("torchrun", nnodes=2, node_rank=2, master_addr="a"), "--node-rank 2"),
    (LaunchOptions("mpi"), "unknown launcher"),
])
def test_inconsistent_launch_options_are_one_line_errors(opts, words):
    with pytest.raises(ReproError) as info:
        opts.validate()
    assert words in info.value.one_line() and "\n" not in info.value.one_line()
