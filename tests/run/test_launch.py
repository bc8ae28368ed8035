"""The commands each launcher runs, built without starting anything (no engine needed)."""
from __future__ import annotations

import shlex
import sys
from pathlib import Path

import pytest

from harness.errors import ReproError
from harness.run.launch import plan
from harness.run.options import LaunchOptions

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
                     'export OMP_NUM_THREADS="${OMP_NUM_THREADS:-${SLURM_CPUS_PER_TASK:-1}}"',
                     f"srun --kill-on-bad-exit=1 --mpi=none {shlex.quote(sys.executable)} -u {ENTRY}",
                     f'{shlex.quote(sys.executable)} -m harness.run.finalize --run-dir {RUN} --rc "$rc"'):
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


# ------------------------------------------------------------------------ job.sbatch: validated, quoted values

INJECTED = "gpu\necho INJECTED"


@pytest.mark.parametrize("flag, opts", [
    ("--partition", LaunchOptions("slurm", partition=INJECTED)),
    ("--account", LaunchOptions("slurm", account=INJECTED)),
    ("--time", LaunchOptions("slurm", time="1:00\recho INJECTED")),
    ("--sbatch-arg", LaunchOptions("slurm", sbatch_args=["--exclusive", INJECTED])),
    ("--srun-arg", LaunchOptions("slurm", srun_args=[f"--comment={INJECTED}"])),
])
def test_a_value_with_a_newline_never_reaches_job_sbatch(flag, opts, tmp_path):
    with pytest.raises(ReproError) as info:
        plan(opts, tmp_path / "job.json", tmp_path, "j")
    line = info.value.one_line()
    assert flag in line and "newline or control character" in line and "\n" not in line
    assert not list(tmp_path.iterdir())


def test_sbatch_values_are_quoted_and_the_sbatch_lines_come_first():
    opts = LaunchOptions("slurm", partition="debug", account="a b", sbatch_args=["--comment='x y'#z", "--mem 4G"])
    lines = plan(opts, JOB, RUN, "repro-x-eval").script.splitlines()
    assert "#SBATCH --account='a b'" in lines and "#SBATCH --partition=debug" in lines
    assert "#SBATCH '--comment=x y#z'" in lines and "#SBATCH --mem 4G" in lines
    first_other = next(i for i, ln in enumerate(lines[1:], 1) if not ln.startswith("#SBATCH"))
    assert all(not ln.startswith("#SBATCH") for ln in lines[first_other:])
    assert sum(ln.startswith("srun ") for ln in lines) == 1


def test_an_unbalanced_quote_in_an_sbatch_arg_is_one_line():
    with pytest.raises(ReproError, match="unbalanced quote"):
        LaunchOptions("slurm", sbatch_args=["--comment='x"]).validate()


# ------------------------------------------------------------------------ the record: which reason, which node

def _run_dir(tmp_path: Path, **launch) -> Path:
    import json

    from run.conftest import make_job
    run = tmp_path / "run"
    run.mkdir()
    (run / "job.json").write_text(json.dumps(make_job(launch={"launcher": "torchrun", "world_size": 12, **launch})))
    return run


def test_the_reason_is_rank_0s_first_then_the_others_by_rank(tmp_path):
    from harness.run.finalize import finalize
    run = _run_dir(tmp_path)
    (run / "failure.rank1.txt").write_text("RuntimeError: [gloo] Connection closed by peer\n")
    (run / "failure.rank10.txt").write_text("RuntimeError: [gloo] timed out\n")
    (run / "failure.txt").write_text("ReproError: checkpoint does not match the model\n")
    rec = finalize(run, 1)
    assert rec["failure"] == ("ReproError: checkpoint does not match the model; "
                              "rank 1: RuntimeError: [gloo] Connection closed by peer; "
                              "rank 10: RuntimeError: [gloo] timed out")


def test_a_node_other_than_0_never_writes_the_record(tmp_path):
    """Node 1's settings are job.node1.json; it reports its outcome and leaves result.json to node 0."""
    import json

    from harness.run.folder import job_file
    from harness.run.finalize import finalize
    run = _run_dir(tmp_path)
    assert job_file(0) == "job.json" and job_file(1) == "job.node1.json"
    (run / job_file(1)).write_text(json.dumps({"kind": "eval", "reproduction": "eva02_demo",
                                               "launch": {"launcher": "torchrun", "node_rank": 1}}))
    assert finalize(run, 0, node_rank=1)["status"] == "worker-done"
    failed = finalize(run, 1, node_rank=1)
    assert failed["status"] == "failed" and failed["failure"].startswith("node 1: processes exited with code 1")
    assert not (run / "result.json").exists()
    assert finalize(run, 0)["status"] == "failed"         # node 0: outputs missing, and it writes the record
    assert (run / "result.json").exists()


@pytest.mark.slow
def test_two_torchrun_nodes_sharing_a_work_dir_write_one_record(tmp_path):
    """Two `repro train` "nodes" of one CPU process each, on loopback, one --work-dir: node 1 starts after node 0
    wrote its settings, keeps its own job file, and leaves the one result.json to node 0."""
    import json
    import socket
    import subprocess
    import time

    pytest.importorskip("mmseg.apis")
    from harness.fetch.synthetic import generate
    from harness.run.record import read_result

    data = generate(tmp_path / "data" / "ADEChallengeData2016", num_train=16, num_val=8, seed=0)
    work = tmp_path / "shared"
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    argv = [str(Path(sys.executable).parent / "repro"), "train", "eva02_demo", "--max-iters", "2",
            "--samples-per-gpu", "2", "--checkpoint-interval", "2", "--eval-interval", "1000", "--device", "cpu",
            "--launcher", "torchrun", "--gpus", "1", "--nnodes", "2", "--master-addr", "127.0.0.1",
            "--master-port", str(port), "--data-root", str(data), "--work-dir", str(work),
            "--cfg-options", "data.workers_per_gpu=1"]
    nodes = {0: subprocess.Popen(argv + ["--node-rank", "0"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                 text=True)}
    deadline = time.monotonic() + 120
    while not (work / "job.json").exists():
        assert nodes[0].poll() is None and time.monotonic() < deadline, nodes[0].communicate()[0]
        time.sleep(0.2)
    nodes[1] = subprocess.Popen(argv + ["--node-rank", "1"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                text=True)
    outs = {rank: proc.communicate(timeout=600)[0] for rank, proc in nodes.items()}
    assert [nodes[0].returncode, nodes[1].returncode] == [0, 0], outs
    assert "node rank 0 writes the record" in outs[1]
    assert json.loads((work / "job.json").read_text())["launch"]["node_rank"] == 0
    assert json.loads((work / "job.node1.json").read_text())["launch"]["node_rank"] == 1
    assert sorted(p.name for p in work.glob("result*.json")) == ["result.json"]
    rec = read_result(work)
    assert rec["status"] == "succeeded" and rec["launch"]["node_rank"] == 0 and rec["launch"]["world_size"] == 2
