"""Run folders with a ledger: result.json's metrics and per-class values computed from the ledger (so the record is
consistent and `repro verify` reads it), the ledger named with its sha256, as a finished evaluation leaves them."""
from pathlib import Path

import pytest
from click.testing import CliRunner

from harness.cli import cli
from harness.fileio import file_sha256
from harness.ledger.metrics import rescore_totals
from harness.ledger.store import LEDGER_FILE, write_ledger
from harness.run.record import write_result
from harness.registry import datasets

from .synthetic import KnownDistribution

CHECKPOINT = {"path": "weights/eva02_L_ade_seg_upernet_sz512.pth", "sha256": "5e" * 32, "released_sha256": "5e" * 32,
              "source": "the released weights", "provenance": "released"}
MANIFEST = "ab" * 32


def write_run(run_dir: Path, ledger, reproduction="eva02_L_sz512", protocol="ss", ledger_entry=True, **extra) -> Path:
    """A finished eval run folder for LEDGER (150 ADE20K classes)."""
    classes = datasets.of(None).classes
    scores = rescore_totals(ledger.totals(), ["mIoU"], classes)
    write_ledger(run_dir / LEDGER_FILE, ledger)
    record = {"reproduction": reproduction, "protocol": protocol, "kind": "eval", "status": "succeeded",
              "metrics": {k: scores["metrics"][k] for k in ("aAcc", "mIoU", "mAcc")},
              "per_class": {name: {"IoU": v["IoU"], "Acc": v["Acc"]} for name, v in scores["per_class"].items()},
              "checkpoint": CHECKPOINT,
              "dataset": {"name": "ade20k", "split": "validation", "root": "data/ade", "num_images": ledger.num_images,
                          "manifest_sha256": MANIFEST}, **extra}
    if ledger_entry:
        record["ledger"] = {"file": LEDGER_FILE, "sha256": file_sha256(run_dir / LEDGER_FILE),
                            "images": ledger.num_images}
    write_result(run_dir, record)
    return run_dir


@pytest.fixture
def ade_dist() -> KnownDistribution:
    return KnownDistribution(classes=150, seed=99)


@pytest.fixture
def make_run(tmp_path):
    counter = iter(range(1000))

    def make(ledger, **kw):
        return write_run(tmp_path / "runs" / f"run{next(counter)}", ledger, **kw)
    return make


@pytest.fixture
def repro():
    runner = CliRunner()

    def invoke(*args):
        return runner.invoke(cli, [str(a) for a in args], catch_exceptions=False)
    return invoke
