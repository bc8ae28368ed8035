"""--resume merges the flags given again with the interrupted job's own settings (harness/run/resume.py), and picks only
unfinished runs: the rules on job.json files as `repro train` writes them, without starting the engine."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.errors import ReproError
from harness.run.job import job_from_dict
from harness.run.options import LaunchOptions
from harness.run.resume import TrainSettings, latest_unfinished, recorded_settings, resumable
from run.conftest import make_job

DEMO = "eva02_demo"


def _job(data_root: Path, **launch) -> dict:
    return make_job(kind="train", seed=0, max_iters=12, accumulate=1, samples_per_gpu=2, workers_per_gpu=None,
                    checkpoint_interval=2, eval_interval=None, deterministic=False, data_root=str(data_root),
                    pretrained=None, cfg_options={}, batch={"total_batch": 4, "allow_batch_mismatch": False},
                    launch=LaunchOptions(**({"launcher": "torchrun", "gpus": 2} | launch)).record())


def _settings(recorded_root: Path, **given) -> TrainSettings:
    return recorded_settings(job_from_dict(_job(recorded_root)), TrainSettings(**given))


def test_nothing_given_means_the_recorded_settings(tmp_path):
    settings = _settings(tmp_path)
    assert settings.max_iters == 12 and settings.data_root == str(tmp_path) and settings.seed == 0
    assert settings.launch.launcher == "torchrun" and settings.launch.world_size == 2


def test_the_same_values_given_again_agree(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path.parent)
    settings = _settings(tmp_path, max_iters=12, samples_per_gpu=2, data_root=tmp_path.name,   # a relative spelling
                         launch=LaunchOptions("torchrun", gpus=2, partition="other"))
    assert settings.launch.partition == "other"                  # where it runs may change
    assert settings.launch.gpus == 2


@pytest.mark.parametrize("given, flag", [({"samples_per_gpu": 4}, "--samples-per-gpu"),
                                         ({"deterministic": True}, "--deterministic"),
                                         ({"accumulate": 2}, "--accumulate"),
                                         ({"launch": LaunchOptions("torchrun", gpus=4)}, "--gpus")])
def test_a_flag_that_disagrees_is_named(tmp_path, given, flag):
    with pytest.raises(ReproError) as err:
        _settings(tmp_path, **given)
    assert err.value.message.startswith(f"{flag} ") and "interrupted run's" in err.value.message


def _run(parent: Path, name: str, record: str | None, job: dict) -> Path:
    import zipfile
    run = parent / name
    run.mkdir(parents=True)
    (run / "job.json").write_text(json.dumps(job))
    with zipfile.ZipFile(run / "iter_2.pth", "w") as zf:           # a complete torch file is a whole zip
        zf.writestr("archive/data.pkl", b"")
    if record:
        (run / "result.json").write_text(json.dumps({"schema": "repro.result/1", "status": record, "kind": "train",
                                                     "reproduction": DEMO, "protocol": "ss"}))
    return run


def test_only_unfinished_runs_of_this_reproduction_are_resumable(tmp_path):
    import os
    job = _job(tmp_path)
    failed = _run(tmp_path, "a", "failed", job)
    killed = _run(tmp_path, "b", None, job)
    done = _run(tmp_path, "c", "succeeded", job)
    other = _run(tmp_path, "d", None, dict(job, reproduction="eva02_B_sz512"))
    for age, run in enumerate([failed, killed, done, other]):      # d newest
        os.utime(run, (1000 + age, 1000 + age))
    assert resumable(failed, DEMO)[1].name == "iter_2.pth"
    assert latest_unfinished(tmp_path, DEMO)[0] == killed
    with pytest.raises(ReproError, match="is a finished run"):
        resumable(done, DEMO)
    with pytest.raises(ReproError, match="not a train run of eva02_demo"):
        resumable(other, DEMO)
    mine = tmp_path / "mmseg_work_dir"                              # checkpoints, but no job of ours
    mine.mkdir()
    (mine / "iter_2.pth").write_bytes((killed / "iter_2.pth").read_bytes())
    with pytest.raises(ReproError, match="holds no repro run"):
        resumable(mine, DEMO)
