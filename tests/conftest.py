import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
REFERENCE = REPO.parent / "shared" / "reference"


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path_factory, monkeypatch):
    """Every test gets its own REPRO_HOME and runs root, so nothing touches the user's cache."""
    home = tmp_path_factory.mktemp("repro_home")
    monkeypatch.setenv("REPRO_HOME", str(home))
    monkeypatch.setenv("REPRO_RUNS", str(home / "runs"))
    monkeypatch.delenv("REPRO_DATA", raising=False)
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
    yield


@pytest.fixture
def reference() -> Path:
    if not REFERENCE.is_dir():
        pytest.fail(f"{REFERENCE} is missing: the tests read ../shared/reference beside the repository")
    return REFERENCE


def pytest_report_header(config):
    return [f"reference: {REFERENCE}", f"REPRO cpu threads: {os.cpu_count()}"]
