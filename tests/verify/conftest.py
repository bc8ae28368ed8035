import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from harness.cli import cli
from harness.run.record import write_result

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


RELEASED_CHECKPOINT = {"path": "weights/eva02_L_ade_seg_upernet_sz512.pth", "sha256": "5e" * 32,
                       "released_sha256": "5e" * 32, "source": "the released weights", "provenance": "released"}


def _with_means(per_class: dict, metrics: dict, keep=()) -> dict:
    """per_class scaled (except the classes in `keep`) so that mean IoU / Acc equal metrics' mIoU / mAcc, as in
    any record mmseg produced; a record whose summary disagrees with its classes is refused by verify."""
    out = {name: dict(values) for name, values in per_class.items()}
    for metric, key in (("mIoU", "IoU"), ("mAcc", "Acc")):
        if metrics.get(metric) is None:
            continue
        fixed = sum(out[name][key] for name in keep)
        free = [name for name in out if name not in keep and out[name].get(key) is not None]
        factor = (metrics[metric] * len(free + list(keep)) - fixed) / sum(out[name][key] for name in free)
        for name in free:
            out[name][key] *= factor
    return out


@pytest.fixture
def with_means():
    return _with_means


@pytest.fixture
def make_record(tmp_path):
    """Write a result.json from the L-512 ss numbers with overrides; returns the run directory.

    Given metrics, the per-class values are scaled to agree with them (the record stays consistent); an eval
    record evaluated the released weights unless `checkpoint=` says otherwise."""
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
        if metrics is not None and per_class is None:
            per_class = _with_means(base_pc, metrics)
        if kind == "eval":
            extra.setdefault("checkpoint", RELEASED_CHECKPOINT)
        record = {"reproduction": reproduction, "protocol": protocol, "kind": kind, "status": "succeeded",
                  "metrics": base_metrics if metrics is None else metrics,
                  "per_class": base_pc if per_class is None else per_class, **extra}
        write_result(run_dir, record)
        return run_dir
    return make
