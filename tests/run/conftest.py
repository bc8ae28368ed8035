"""Fixtures for the eval/train pipeline tests: a small synthetic ADE20K-format dataset and a CLI runner."""
from __future__ import annotations

import shlex
from pathlib import Path

import pytest
from click.testing import CliRunner

from harness.cli import cli


@pytest.fixture(scope="session")
def synthetic_root(tmp_path_factory) -> Path:
    """16 training / 8 validation images, generated once per session (a second or two)."""
    from harness.fetch.synthetic import generate
    return generate(tmp_path_factory.mktemp("data") / "ADEChallengeData2016", num_train=16, num_val=8, seed=0)


@pytest.fixture
def repro():
    """repro(*args) -> click Result; the CLI in this process (the engine still starts as a subprocess)."""
    runner = CliRunner()

    def invoke(*args):
        argv = [str(a) for a in args]
        result = runner.invoke(cli, argv, catch_exceptions=False)
        result.argv = shlex.join(["repro", *argv])
        return result
    return invoke



def make_job(**fields) -> dict:
    """A job.json as `repro` writes it (every required field, checked against harness.run.job.Job), with `fields`
    changed; `launch` is merged into a one-process launch."""
    from harness.run.job import job_from_dict
    launch = {"launcher": "none", "gpus": 1, "nnodes": 1, "node_rank": 0, "world_size": 1, **fields.pop("launch", {})}
    job = {"kind": "eval", "reproduction": "eva02_demo", "protocol": "ss", "config": "config.py", "run_dir": "/run",
           "device": "cpu", "launch": launch, "dataset": {"name": "ade20k-synthetic"}, "data_root": "/data",
           "started": "2026-12-06T07:00:00+00:00", "cfg_options": {}, "checkpoint": None, "samples_per_gpu": 1,
           "seed": None, **fields}
    job_from_dict(job)
    return job
