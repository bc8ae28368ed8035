"""`repro batch --launcher slurm` on the live single-node cluster: ONE job array, one task per run, each task's own
record; a task cancelled while it waits is settled as such by `repro verify` of the batch."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("mmseg.apis")

from demo_runs import train_demo_briefly  # noqa: E402

from harness.run.record import read_result  # noqa: E402

from .test_slurm import DEMO, FAST, repro, wait_until_ended  # noqa: E402

pytestmark = [pytest.mark.slurm, pytest.mark.slow]


@pytest.fixture(scope="module")
def demo_run(slurm_data, tmp_path_factory) -> Path:
    """A 2-step demo training run on this machine: the checkpoint the batch evaluates."""
    return train_demo_briefly(slurm_data, tmp_path_factory.mktemp("batch-train") / "run")


def test_a_batch_is_one_job_array_and_a_cancelled_task_is_shown_as_such(slurm_env, slurm_data, demo_run, tmp_path):
    folder = tmp_path / "batch"
    # each task takes every CPU of the one node: task 1 waits while task 0 runs
    out = repro("batch", DEMO, "--checkpoint", demo_run, "--launcher", "slurm", "--cpus-per-task", slurm_env.cpus,
                "--partition", "debug", *FAST, "--data-root", slurm_data, "--batch-dir", folder)
    assert out.returncode == 0 and "submitted Slurm job array" in out.stdout, out.stdout + out.stderr
    batch = json.loads((folder / "batch.json").read_text())
    job = batch["slurm_job"]
    assert [r["slurm_job"] for r in batch["runs"]] == [f"{job}_0", f"{job}_1"]
    assert "#SBATCH --array=0-1" in (folder / "job.sbatch").read_text()
    slurm_env.run("scancel", f"{job}_1")

    assert wait_until_ended(slurm_env, f"{job}_0")["JobState"] == "COMPLETED"
    first = read_result(folder / batch["runs"][0]["run_dir"])
    assert first["status"] == "succeeded" and first["protocol"] == "ss"
    assert first["launch"]["slurm_job"] == f"{job}_0" and first["launch"]["array_task"] == 0
    # cancelled before the array was split (task 0 not yet started), Slurm keeps no record of task 1 at all
    assert wait_until_ended(slurm_env, f"{job}_1", forgotten_ends=True).get("JobState", "CANCELLED") == "CANCELLED"

    verdict = repro("verify", folder)
    assert verdict.returncode == 1, verdict.stdout + verdict.stderr
    second = read_result(folder / batch["runs"][1]["run_dir"])
    assert second["status"] == "failed" and "CANCELLED" in second["failure"]
    assert f"FAIL {DEMO} ms (task 1): failed: Slurm job {job}_1 ended CANCELLED" in verdict.stdout
    assert verdict.stdout.strip().splitlines()[-1].startswith("batch: 2 runs —")
