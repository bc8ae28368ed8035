"""An evaluation's Slurm job asks for SIGTERM before its time limit, flushes its ledger on it and requeues itself;
the requeued job continues from the ledger and ends with the metrics of one uninterrupted run (issue 25)."""
from __future__ import annotations

import json
import math
import time
from pathlib import Path

import pytest

from harness.run.launch import REQUEUE_LINES, plan
from harness.run.options import LaunchOptions

DEMO = "eva02_demo"


def test_an_evaluation_job_script_asks_for_the_signal_and_requeues(tmp_path):
    """No cluster needed: the script's lines, and a training job's script without them."""
    opts = LaunchOptions("slurm", gpus=2, time="30", sbatch_args=["--signal=B:TERM@300"])
    script = plan(opts, tmp_path / "job.json", tmp_path, "repro-demo-eval", requeue=True).script
    lines = script.splitlines()
    for line in REQUEUE_LINES:
        assert line in lines
    # the user's own --signal comes later, so it wins
    assert lines.index("#SBATCH --signal=B:TERM@300") > lines.index("#SBATCH --signal=B:TERM@60")
    assert 'trap \'requeued=1; kill -TERM "$srun_pid" 2>/dev/null\' TERM' in lines
    assert lines.index('  scontrol requeue "$SLURM_JOB_ID"') < next(i for i, ln in enumerate(lines) if "finalize" in ln)
    train = plan(opts, tmp_path / "job.json", tmp_path, "repro-demo-train").script
    assert "--requeue" not in train and "trap" not in train


@pytest.mark.slurm
@pytest.mark.slow
def test_an_evaluation_cut_by_its_time_limit_is_requeued_and_finishes_like_an_uninterrupted_one(
        slurm_env, tmp_path, monkeypatch):
    """Under `--time 2` Slurm signals the job 60 s before its limit, so each session evaluates for about a minute
    less its start-up; the job flushes and requeues itself (Slurm holds a requeued job about 2 minutes), and a
    later session finishes the rest. The number of images is sized from this machine's measured speed (ms on the 2
    training-set images, one thread as under Slurm) for about 100 s of evaluation: 2-3 sessions, about 7 minutes in
    all (a fixed 40 images ended in one session on a faster machine)."""
    pytest.importorskip("mmseg.apis")
    import sys

    from demo_runs import train_demo_briefly

    from harness.fetch.synthetic import generate
    from harness.run.api import evaluate
    from slurm.test_slurm import job_id, repro, wait_until_ended

    small = generate(tmp_path / "small" / "ADEChallengeData2016", num_train=4, num_val=2, seed=1)
    run = train_demo_briefly(small, tmp_path / "train")
    ckpt = run / json.loads((run / "result.json").read_text())["artifacts"]["final_checkpoint"]
    options = ["data.workers_per_gpu=0"]
    # one thread everywhere, as the Slurm task has (one CPU): a convolution summed over other thread splits can
    # round a logit differently and flip a pixel, and the resumed run must equal the uninterrupted one bit for bit
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    probe = evaluate(DEMO, "ms", checkpoint=ckpt, data_root=small, work_dir=tmp_path / "probe", cfg_options=options,
                     echo=False)
    per_image = probe["timing"]["eval_s"] / 2
    num_val = min(300, max(40, math.ceil(100 / per_image)))
    root = generate(tmp_path / "val" / "ADEChallengeData2016", num_train=4, num_val=num_val, seed=0)
    whole = evaluate(DEMO, "ms", checkpoint=ckpt, data_root=root, work_dir=tmp_path / "whole", cfg_options=options,
                     echo=False)

    work = tmp_path / "cut"
    out = repro("eval", DEMO, "--protocol", "ms", "--checkpoint", ckpt, "--data-root", root, "--work-dir", work,
                "--launcher", "slurm", "--gpus", "1", "--cpus-per-task", "1", "--partition", "debug", "--time", "2",
                "--device", "cpu", "--cfg-options", "data.workers_per_gpu=0", REPRO_LEDGER_EVERY_IMAGES="2")
    assert out.returncode == 0 and "submitted Slurm job" in out.stdout, out.stdout + out.stderr
    job = job_id(work)
    deadline = time.monotonic() + 900
    while not (work / "result.json").exists():
        assert time.monotonic() < deadline, f"no record after 15 minutes ({num_val} images, {per_image:.2f} s each): {slurm_env.job(job)}"
        time.sleep(2)
    info = wait_until_ended(slurm_env, job)
    record = json.loads((work / "result.json").read_text())
    log = "".join(p.read_text() for p in Path(work).glob("slurm-*.out"))
    assert record["status"] == "succeeded", (record.get("failure"), info, log[-2000:], sys.executable)
    assert record["sessions"] >= 2 and "requeueing job" in log, (record["sessions"], log[-2000:])
    assert int(info.get("Restarts", "0")) >= 1, info
    assert record["metrics"] == whole["metrics"] and record["per_class"] == whole["per_class"]
    assert record["ledger"] == whole["ledger"]
