"""`repro list` settles a Slurm run at any depth of the runs root: a zoo run lies four folders deep
(runs/mmseg/<name>/<protocol>/<stamp>), where the old three-deep search never looked."""
from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("mmseg.apis")

from harness.run.record import read_result  # noqa: E402

from .test_slurm import _pending_eval, job_id, repro, wait_until_ended  # noqa: E402

pytestmark = [pytest.mark.slurm, pytest.mark.slow]


def test_repro_list_settles_a_cancelled_run_four_folders_deep(slurm_env, slurm_data, tmp_path):
    work, proc = _pending_eval(slurm_data, tmp_path)            # submitted to start in 10 minutes
    stdout, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 0 and "submitted Slurm job" in stdout, stdout + stderr
    runs = tmp_path / "runs"
    deep = runs / "mmseg" / "segformer_mit-b0_512x512_160k_ade20k" / "ss" / "20261206T080000Z"
    deep.parent.mkdir(parents=True)
    Path(work).rename(deep)                                     # where a zoo run's folder lies
    job = job_id(deep)
    slurm_env.run("scancel", job)
    wait_until_ended(slurm_env, job)
    assert not (deep / "result.json").exists()
    out = repro("list", REPRO_RUNS=str(runs))
    assert out.returncode == 0, out.stderr
    rec = read_result(deep)
    assert rec["status"] == "failed" and rec["failure"].startswith(f"Slurm job {job} ended CANCELLED")
