"""`repro eval/train --launcher slurm` submitted to a live single-node Slurm cluster (tests/slurm/cluster.py): the
same records as torchrun and local runs, and failed, timed-out, refused and cancelled jobs that each end in a record
saying exactly that (Slurm's own state from `scontrol show job`, not sbatch's exit code)."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("mmseg.apis")

from harness.run.record import read_result  # noqa: E402

pytestmark = [pytest.mark.slurm, pytest.mark.slow]

DEMO = "eva02_demo"
REPRO = str(Path(sys.executable).parent / "repro")
FAST = ["--device", "cpu", "--cfg-options", "data.workers_per_gpu=1"]
# 2 processes x 2 images = the demo's published batch of 4
TRAIN = ["--samples-per-gpu", "2", "--checkpoint-interval", "2", "--eval-interval", "1000"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def slurm_flags(*extra: str) -> list[str]:
    """Two tasks on the one 2-CPU node, a rendezvous port of their own."""
    return ["--launcher", "slurm", "--gpus", "2", "--cpus-per-task", "1", "--partition", "debug",
            "--master-port", str(_free_port()), *extra]


def repro(*args, timeout: float = 600, **env: str) -> subprocess.CompletedProcess:
    """The real `repro` command, with this process's environment (REPRO_HOME, SLURM_CONF) and `env` on top."""
    return subprocess.run([REPRO, *map(str, args)], capture_output=True, text=True, timeout=timeout, check=False,
                          env={**os.environ, **env})


def job_id(run_dir: Path) -> str:
    return json.loads((run_dir / "job.slurm.json").read_text())["job_id"]


def wait_until_ended(cluster, job: str, timeout: float = 300, forgotten_ends: bool = False) -> dict:
    """Slurm's fields once the job has ended; `forgotten_ends`: a job Slurm no longer knows ({}) has ended too."""
    deadline = time.monotonic() + timeout
    while True:
        info = cluster.job(job)
        if info.get("JobState") not in ("PENDING", "RUNNING", "CONFIGURING", "COMPLETING", None):
            return info
        if forgotten_ends and not info:
            return info
        assert time.monotonic() < deadline, f"Slurm job {job} still {info.get('JobState')} after {timeout} s"
        time.sleep(1)


@pytest.fixture(scope="module")
def torchrun_train(slurm_data, tmp_path_factory) -> dict:
    work = tmp_path_factory.mktemp("torchrun") / "train"
    out = repro("train", DEMO, "--max-iters", "2", *TRAIN, "--launcher", "torchrun", "--gpus", "2", *FAST,
                "--data-root", slurm_data, "--work-dir", work)
    assert out.returncode == 0, out.stdout + out.stderr
    return read_result(work)


def test_train_on_slurm_ends_with_the_torchrun_record(slurm_env, torchrun_train, slurm_data, tmp_path):
    """Submitted without --slurm-wait: the job's own last step writes the record."""
    work = tmp_path / "train"
    out = repro("train", DEMO, "--max-iters", "2", *TRAIN, *slurm_flags(), *FAST, "--data-root", slurm_data,
                "--work-dir", work)
    assert out.returncode == 0 and "submitted Slurm job" in out.stdout, out.stdout + out.stderr
    info = wait_until_ended(slurm_env, job_id(work))
    assert info["JobState"] == "COMPLETED", info
    rec = read_result(work)
    assert rec["status"] == "succeeded", rec["failure"]
    assert rec["launch"]["launcher"] == "slurm" and rec["launch"]["slurm_job"] == job_id(work)
    for key in ("metrics", "per_class", "seed", "batch"):
        assert rec[key] == torchrun_train[key], key
    assert rec["training"]["iterations"] == torchrun_train["training"]["iterations"] == 2
    assert rec["launch"]["world_size"] == torchrun_train["launch"]["world_size"] == 2
    assert "backend gloo" in (work / "train.log").read_text()


def test_eval_on_slurm_matches_one_local_process(slurm_env, torchrun_train, slurm_data, tmp_path):
    ckpt = Path(torchrun_train["_path"]).parent / torchrun_train["artifacts"]["final_checkpoint"]
    local, slurm = tmp_path / "local", tmp_path / "slurm"
    out = repro("eval", DEMO, "--checkpoint", ckpt, *FAST, "--data-root", slurm_data, "--work-dir", local)
    assert out.returncode == 0, out.stderr
    out = repro("eval", DEMO, "--checkpoint", ckpt, *slurm_flags("--slurm-wait"), *FAST, "--data-root", slurm_data,
                "--work-dir", slurm)
    assert out.returncode == 0, out.stdout + out.stderr
    one, two = read_result(local), read_result(slurm)
    assert two["status"] == "succeeded" and two["launch"]["world_size"] == 2
    assert two["metrics"] == one["metrics"] and two["per_class"] == one["per_class"]
    assert slurm_env.job(job_id(slurm))["JobState"] == "COMPLETED"


def _checkpoint_of_another_model(tmp_path: Path) -> Path:
    """A real torch checkpoint (preflight reads it) that the engine refuses to load into the demo model."""
    import torch
    ckpt = tmp_path / "other.pth"
    torch.save({"state_dict": {"backbone.foo": torch.zeros(3)}, "meta": {}}, ckpt)
    return ckpt


def test_a_failed_job_is_a_failed_record_not_a_refused_submission(slurm_env, slurm_data, tmp_path):
    """sbatch --wait exits with the job's code; the job id it printed tells a failed job from a refused one."""
    ckpt = _checkpoint_of_another_model(tmp_path)
    work = tmp_path / "run"
    out = repro("eval", DEMO, "--checkpoint", ckpt, *slurm_flags("--slurm-wait"), *FAST, "--data-root", slurm_data,
                "--work-dir", work)
    err = [ln for ln in out.stderr.splitlines() if ln.startswith("error:")]
    assert out.returncode == 1 and len(err) == 1, out.stderr
    assert err[0].startswith("error: eval of eva02_demo failed:") and "refused" not in err[0]
    rec = read_result(work)
    rank0, _, others = rec["failure"].partition("; rank 1: ")     # rank 0's reason first, the others after it
    assert rec["status"] == "failed" and "does not match the model" in rank0
    assert others == "" or "does not match the model" in others
    assert slurm_env.job(job_id(work))["JobState"] == "FAILED"


@pytest.mark.parametrize("flags, words", [
    (["--partition", "nosuch"], "invalid partition"),
    (["--cpus-per-task", "8"], "More processors requested than permitted"),
])
def test_a_refused_submission_is_a_record_that_says_so(slurm_env, slurm_data, tmp_path, flags, words):
    work = tmp_path / "run"
    ckpt = _checkpoint_of_another_model(tmp_path)         # the job is refused before anything reads it
    out = repro("eval", DEMO, "--checkpoint", ckpt, *slurm_flags("--slurm-wait"), *flags, *FAST,
                "--data-root", slurm_data, "--work-dir", work)
    assert out.returncode == 1, out.stdout + out.stderr
    assert "sbatch refused the job" in out.stderr and words.lower() in out.stderr.lower()
    rec = read_result(work)
    assert rec["status"] == "failed" and rec["failure"].startswith("sbatch refused the job:")
    assert words.lower() in rec["failure"].lower()
    assert not (work / "job.slurm.json").exists()


def _pending_eval(slurm_data, tmp_path, *extra):
    ckpt = _checkpoint_of_another_model(tmp_path)         # the job never starts
    work = tmp_path / "run"
    argv = [REPRO, "eval", DEMO, "--checkpoint", ckpt, *slurm_flags("--sbatch-arg=--begin=now+600", *extra),
            *FAST, "--data-root", slurm_data, "--work-dir", work]
    return work, subprocess.Popen([str(a) for a in argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                  text=True)


def test_a_job_cancelled_while_pending_under_slurm_wait(slurm_env, slurm_data, tmp_path):
    """sbatch --wait exits 0 for a job cancelled while pending; the record still says it never ran."""
    work, proc = _pending_eval(slurm_data, tmp_path, "--slurm-wait")
    deadline = time.monotonic() + 120
    while not (work / "job.slurm.json").exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.5)
    job = job_id(work)
    assert slurm_env.job(job)["JobState"] == "PENDING"
    slurm_env.run("scancel", job)
    stdout, stderr = proc.communicate(timeout=120)
    assert proc.returncode == 1, stdout + stderr
    assert f"Slurm job {job} ended CANCELLED while pending" in stderr and "never started" in stderr
    rec = read_result(work)
    assert rec["status"] == "failed" and rec["failure"].startswith(f"Slurm job {job} ended CANCELLED")
    assert rec["launch"]["slurm_state"]["JobState"] == "CANCELLED"


def test_verify_settles_a_job_cancelled_while_pending(slurm_env, slurm_data, tmp_path):
    work, proc = _pending_eval(slurm_data, tmp_path)
    stdout, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 0 and "submitted Slurm job" in stdout, stdout + stderr
    job = job_id(work)
    out = repro("verify", work)
    assert out.returncode == 2 and "is PENDING" in out.stderr and not (work / "result.json").exists()
    slurm_env.run("scancel", job)
    wait_until_ended(slurm_env, job)
    out = repro("verify", work)
    assert out.returncode == 2 and f"Slurm job {job} ended CANCELLED" in out.stderr, out.stderr
    assert read_result(work)["failure"] == f"Slurm job {job} ended CANCELLED while pending (BeginTime); it never started"


def _seconds_per_step(record: dict, slurm_data: Path) -> float:
    """A lower bound of one training step's time in the timed-out job: mmcv's own fastest step from a training
    log (train.log.json, `time` of the train lines), plus mmcv's IterLoader pause of 2 s at every epoch end
    ("prevent possible deadlock"), shared by the steps of an epoch. With the 16 training images here an epoch is
    4 steps of 2 x 2 images, so the pause (0.5 s a step) outweighs the step itself (about 0.1 s); sized from the
    fastest step alone, the job ran 5 times longer than planned and its resume took 6 minutes."""
    lines = [json.loads(ln) for ln in (Path(record["_path"]).parent / "train.log.json").read_text().splitlines()]
    times = [ln["time"] for ln in lines if ln.get("mode") == "train" and "time" in ln]
    images = len(list((Path(slurm_data) / "images" / "training").iterdir()))
    steps_per_epoch = max(1, images // (2 * 2))         # 2 processes x 2 images
    return (min(times) if times else 0.1) + 2.0 / steps_per_epoch


@pytest.fixture(scope="module")
def timed_out(cluster, torchrun_train, slurm_data, tmp_path_factory):
    """A training under `--time 1` that needs at least 100 s of steps: Slurm kills it 60 to 90 s after it starts
    (limits are checked about every 30 s), after some checkpoints, and its resume has 10 to 40 s of steps left.
    Its length comes from this machine's fastest step."""
    steps = int(100 / _seconds_per_step(torchrun_train, slurm_data)) + 1
    interval = max(1, steps // 25)
    mp = pytest.MonkeyPatch()
    mp.setenv("SLURM_CONF", str(cluster.conf))
    runs = tmp_path_factory.mktemp("runs")              # a runs root of its own, where `repro list` looks
    work = runs / DEMO / "train" / "timed-out"
    started = time.monotonic()
    out = repro("train", DEMO, "--max-iters", steps, "--samples-per-gpu", "2", "--checkpoint-interval", interval,
                "--eval-interval", "100000", *slurm_flags("--time", "1"), *FAST, "--data-root", slurm_data,
                "--work-dir", work)
    assert out.returncode == 0, out.stdout + out.stderr
    info = wait_until_ended(cluster, job_id(work), timeout=170)
    yield work, info, time.monotonic() - started, steps
    mp.undo()


def test_a_job_killed_at_its_time_limit_is_settled_by_repro_list(slurm_env, timed_out):
    work, info, seconds, _ = timed_out
    assert info["JobState"] == "TIMEOUT" and info["Reason"] == "TimeLimit", info
    assert not (work / "result.json").exists()          # the job never reached its finalize step
    out = repro("list", REPRO_RUNS=str(work.parents[2]))
    assert out.returncode == 0, out.stderr
    rec = read_result(work)
    job = job_id(work)
    assert rec["status"] == "failed" and rec["kind"] == "train"
    assert rec["failure"].startswith(f"Slurm job {job} ended TIMEOUT (TimeLimit) before the run was finalized")
    assert rec["launch"]["slurm_state"]["JobState"] == "TIMEOUT"
    assert seconds < 170


def test_resume_continues_a_timed_out_training(slurm_env, timed_out, slurm_data):
    """The run's own settings (steps, batch, intervals) are recorded; the resumed job gets a longer time limit."""
    work, _, _, steps = timed_out
    repro("list", REPRO_RUNS=str(work.parents[2]))     # settled (failed record) if the test above did not run
    done = sorted(int(p.stem.split("_")[1]) for p in work.glob("iter_*.pth"))
    assert done and done[-1] < steps, "no checkpoint before the time limit"
    out = repro("train", DEMO, "--resume", *slurm_flags("--time", "10", "--slurm-wait"), *FAST,
                "--data-root", slurm_data, "--work-dir", work)
    assert out.returncode == 0, out.stdout + out.stderr
    rec = read_result(work)
    assert rec["status"] == "succeeded" and rec["training"]["resumed"] is True
    assert rec["training"]["iterations"] == steps
    resumed_from = rec["training"]["resumed_from"]
    assert int(resumed_from[5:-4]) in done
    assert f"resumed from {work / resumed_from}" in (work / "train.log").read_text()
