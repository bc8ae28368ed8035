"""Fixtures for the early-verdict tests: a small synthetic ADE20K-format dataset and two demo reference runs."""
from __future__ import annotations

from pathlib import Path

import pytest

# tiny demo trainings: 48 steps of the published batch 4, logged every 4, evaluated at 24 and 48 on 8 images (the
# demo's lr warms up for 30 steps: before that every run, faulty or not, is at mIoU ~0)
DEMO = dict(max_iters=48, eval_interval=24, checkpoint_interval=24, cfg_options=["data.workers_per_gpu=1"])


@pytest.fixture(scope="session")
def demo_root(tmp_path_factory) -> Path:
    from harness.fetch.synthetic import generate
    return generate(tmp_path_factory.mktemp("data") / "ADEChallengeData2016", num_train=16, num_val=8, seed=0)


@pytest.fixture(scope="session")
def demo_references(tmp_path_factory, demo_root) -> list[Path]:
    """Two demo trainings with seeds 1 and 2 (no reference of their own: `none`)."""
    from harness.run.api import train
    runs = []
    for seed in (1, 2):
        work = tmp_path_factory.mktemp(f"ref{seed}") / "run"
        train("eva02_demo", seed=seed, data_root=demo_root, work_dir=work, echo=False, reference=["none"], **DEMO)
        runs.append(work)
    return runs
