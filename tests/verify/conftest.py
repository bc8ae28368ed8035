import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from harness.cli import cli
from harness.record import write_result

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def repro():
    """Invoke the CLI: repro(*args) -> click Result (output and stderr kept apart)."""
    runner = CliRunner()

    def invoke(*args):
        return runner.invoke(cli, [str(a) for a in args], catch_exceptions=False)
    return invoke


@pytest.fixture
def eva02(reference) -> Path:
    return reference / "eva02"


@pytest.fixture
def expected_copy(tmp_path) -> Path:
    """A writable copy of expected/ (for --regen and broken tolerance files)."""
    target = tmp_path / "expected"
    shutil.copytree(REPO / "expected", target)
    return target


@pytest.fixture
def make_record(tmp_path):
    """Write a result.json from the L-512 ss numbers with overrides; returns the run directory."""
    counter = iter(range(1000))

    def make(reproduction="eva02_L_sz512", protocol="ss", kind="eval", metrics=None, per_class=None, **extra):
        run_dir = tmp_path / "runs" / f"{reproduction}-{protocol}-{next(counter)}"
        source = json.loads((REPO / "tests/data/eva02/eval_eva02_L_sz512_ss.json").read_text())["metric"]
        base_metrics = {k: source[k] * 100 for k in ("aAcc", "mIoU", "mAcc")}
        base_pc = {}
        for key, value in source.items():
            kind_, _, name = key.partition(".")
            if name:
                base_pc.setdefault(name, {})[kind_] = value * 100
        record = {"reproduction": reproduction, "protocol": protocol, "kind": kind, "status": "succeeded",
                  "metrics": base_metrics if metrics is None else metrics,
                  "per_class": base_pc if per_class is None else per_class, **extra}
        write_result(run_dir, record)
        return run_dir
    return make
