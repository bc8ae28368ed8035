import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# the tests' own data: the authors' files, checkpoint key manifests, golden outputs (origin: tests/data/PROVENANCE.md)
DATA = REPO / "tests" / "data"


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path_factory, monkeypatch):
    """Every test gets its own REPRO_HOME and runs root, so nothing touches the user's cache."""
    home = tmp_path_factory.mktemp("repro_home")
    monkeypatch.setenv("REPRO_HOME", str(home))
    monkeypatch.setenv("REPRO_RUNS", str(home / "runs"))
    monkeypatch.delenv("REPRO_DATA", raising=False)
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
    import harness.console
    monkeypatch.setattr(harness.console, "_verbose", None)   # a CLI call with --verbose must not reach the next test
    yield


@pytest.fixture
def server():
    """A file server on 127.0.0.1 (tests/fetch/server.py), standing in for the download hosts."""
    from fetch.server import FileServer  # tests/ is on sys.path (it has no __init__.py)
    srv = FileServer().start()
    yield srv
    srv.stop()


@pytest.fixture
def reference() -> Path:
    return DATA


@pytest.fixture(scope="session")
def golden_expected() -> dict:
    """The golden mini outputs, decoded bit-exactly from their compact file (see tests/golden_codec.py)."""
    import numpy as np
    from golden_codec import decode
    return decode(np.load(DATA / "golden" / "mini" / "expected.npz"))


def pytest_report_header(config):
    return [f"test data: {DATA}", f"REPRO cpu threads: {os.cpu_count()}"]
