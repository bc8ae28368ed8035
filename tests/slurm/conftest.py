"""The live Slurm cluster for tests/slurm: started once per test session, stopped (by PID) at its end."""
from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest

from .cluster import Cluster, missing


def pytest_configure(config):
    config.addinivalue_line("markers", "slurm: needs the live single-node Slurm cluster of tests/slurm/cluster.py "
                                       "(Debian's slurm-wlm + munge, root); skipped with the reason elsewhere")


@pytest.fixture(scope="session")
def cluster():
    reason = missing()
    if reason:
        pytest.skip(reason)
    # not under pytest's basetemp: munged runs as the `munge` user, who cannot enter root's 0700 folders
    root = Path(tempfile.mkdtemp(prefix="repro-slurm-"))
    c = Cluster.start(root)
    yield c
    c.stop()
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def slurm_env(cluster, monkeypatch) -> Cluster:
    """SLURM_CONF for this process and everything it starts (repro, sbatch, scontrol)."""
    monkeypatch.setenv("SLURM_CONF", str(cluster.conf))
    return cluster


@pytest.fixture(scope="session")
def slurm_data(tmp_path_factory) -> Path:
    """16 training / 8 validation synthetic ADE20K images, as tests/run uses."""
    from harness.fetch.synthetic import generate
    return generate(tmp_path_factory.mktemp("data") / "ADEChallengeData2016", num_train=16, num_val=8, seed=0)
