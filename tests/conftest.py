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


# ------------------------------------------------------------------ every job.json and result.json against its schema

def pytest_configure(config):
    """The writers of job.json and result.json note each file in this log (harness/run/folder.py: AUDIT_ENV),
    subprocesses included; pytest_sessionfinish checks them all against docs/*.schema.json."""
    import tempfile

    from harness.run.folder import AUDIT_ENV
    fd, log = tempfile.mkstemp(prefix="repro-written-", suffix=".log")
    os.close(fd)
    os.environ[AUDIT_ENV] = log
    config._repro_audit_log = log


def pytest_sessionfinish(session, exitstatus):
    import json

    from harness.run.schema import validate
    log = getattr(session.config, "_repro_audit_log", None)
    if not log or not os.path.exists(log):
        return
    schemas = {name: json.loads((REPO / "docs" / f"{name}.schema.json").read_text()) for name in ("job", "result")}
    problems, checked = [], 0
    for line in sorted(set(Path(log).read_text().splitlines())):
        path = Path(line)
        if not path.is_file():      # moved aside or removed by its test since
            continue
        kind = "result" if path.name == "result.json" else "job"
        errors = validate(json.loads(path.read_text()), schemas[kind])
        checked += 1
        problems += [f"{path}: {e}" for e in errors[:3]]
    os.unlink(log)
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(f"schema check: {checked} job.json / result.json files written by this session")
    if problems:
        if reporter is not None:
            reporter.write_line("files that do not match docs/job.schema.json / docs/result.schema.json:", red=True)
            for problem in problems[:20]:
                reporter.write_line(f"  {problem}", red=True)
        session.exitstatus = 1
