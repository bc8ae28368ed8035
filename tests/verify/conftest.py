import hashlib
import json
import shutil
import tomllib
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


# reproduction.toml publishes no sha256 for the released segmentation weights (only for the pretrained ones): the
# harness knows it from their verified download, recorded in <REPRO_HOME>/weights/lock.json. These stand for it.
RELEASED = {rep: hashlib.sha256(f"released weights of {rep}".encode()).hexdigest()
            for rep in ("eva02_B_sz512", "eva02_L_sz512", "eva02_L_sz640")}


def released_sha256(reproduction: str = "eva02_L_sz512") -> str | None:
    """The released weights' sha256 as reproduction.toml publishes it, else as the test's lock file records it."""
    toml = REPO / "reproductions" / reproduction / "reproduction.toml"
    published = (tomllib.loads(toml.read_text()).get("weights") or {}).get("sha256") if toml.is_file() else None
    return published or RELEASED.get(reproduction)


@pytest.fixture(autouse=True)
def released_weights_known():
    """The lock file a verified download of the released weights leaves (`repro download`), in the test's home."""
    from harness import registry
    from harness.fetch import weights

    data = weights.read_lock()
    for reproduction, sha in RELEASED.items():
        data[weights.key(weights.weights_file(registry.get(reproduction)))] = {
            "sha256": sha, "size": 1, "first_verified": "2026-01-01T00:00:00Z", "source": "the test's download"}
    weights.weights_dir().mkdir(parents=True, exist_ok=True)
    (weights.weights_dir() / weights.LOCK).write_text(json.dumps(data, indent=2))


def released_checkpoint(reproduction: str = "eva02_L_sz512") -> dict:
    """The checkpoint fields `repro eval` records for the released weights of REPRODUCTION (measured sha256)."""
    sha = released_sha256(reproduction) or released_sha256()
    return {"path": f"weights/{reproduction}.pth", "sha256": sha, "released_sha256": sha,
            "source": "the released weights", "provenance": "released"}


RELEASED_CHECKPOINT = released_checkpoint()


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
            extra.setdefault("checkpoint", released_checkpoint(reproduction))
        record = {"reproduction": reproduction, "protocol": protocol, "kind": kind, "status": "succeeded",
                  "metrics": base_metrics if metrics is None else metrics,
                  "per_class": base_pc if per_class is None else per_class, **extra}
        write_result(run_dir, record)
        return run_dir
    return make


def hand_edited(run_dir: Path, **fields) -> Path:
    """A copy of RUN_DIR whose result.json has FIELDS changed by hand (bytes written, not through write_result): a
    record from someone else. A copy, so the session's schema audit (tests/conftest.py) checks only what the
    harness wrote."""
    import shutil

    copy = run_dir.with_name(run_dir.name + "-edited")
    shutil.copytree(run_dir, copy)
    path = copy / "result.json"
    record = json.loads(path.read_text())
    record.update(fields)
    path.write_text(json.dumps(record, allow_nan=True))
    return copy
