"""The generated job.sbatch as the live sbatch reads it: quoted values arrive intact (no engine needed)."""
from __future__ import annotations

import pytest

from harness.run.launch import plan
from harness.run.options import LaunchOptions
from harness.run.settle import parse_scontrol

pytestmark = pytest.mark.slurm


def test_quoted_values_reach_slurm_as_written(slurm_env, tmp_path):
    run = tmp_path / "run dir #1"
    run.mkdir()
    opts = LaunchOptions("slurm", gpus=2, cpus_per_task=1, partition="debug", time="30",
                         sbatch_args=['--comment="it\'s a b#c"', "--hold"])
    p = plan(opts, run / "job.json", run, "repro-demo eval")
    p.script_path.write_text(p.script)
    out = slurm_env.run(*p.argv)
    job = out.stdout.strip()
    try:
        info = parse_scontrol(slurm_env.run("scontrol", "show", "job", "-o", job).stdout.strip())
        assert info["JobName"] == "repro-demo eval" and info["Comment"] == "it's a b#c"
        assert info["Partition"] == "debug" and info["TimeLimit"] == "00:30:00"
        assert info["StdOut"] == str(run / f"slurm-{job}.out") and info["NumTasks"] == "2"
        assert info["JobState"] == "PENDING" and info["Reason"] == "JobHeldUser"
    finally:
        slurm_env.run("scancel", job)


def test_sbatch_refuses_what_the_cluster_cannot_give(slurm_env, tmp_path):
    """EnforcePartLimits=ALL: a job asking for more CPUs than exist is refused at once, not pending for ever."""
    out = slurm_env.run("sbatch", "--parsable", "--wait", f"--cpus-per-task={slurm_env.cpus * 4}", "--wrap", "true",
                        check=False)
    assert out.returncode == 1 and not out.stdout.strip() and "Batch job submission failed" in out.stderr
