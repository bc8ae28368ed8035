"""A run directory is written once (issue #13): a second `repro eval --work-dir W` is refused, `--overwrite` moves the
first run aside whole, and a folder holding files repro did not make is never moved, `--overwrite` or not."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.errors import ReproError
from harness.run.claim import plan_claim
from harness.run.job import job_from_dict
from run.conftest import make_job

DEMO = "eva02_demo"
FAST = "data.workers_per_gpu=1"


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def _error(result) -> str:
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, result.output
    return lines[0]


@pytest.fixture(scope="module")
def checkpoint(synthetic_root, tmp_path_factory) -> Path:
    """One optimizer step of the demo recipe: a real checkpoint of the demo model, inside its train run."""
    pytest.importorskip("mmseg.apis")
    from harness.run.api import train
    rec = train(DEMO, max_iters=1, checkpoint_interval=1, eval_interval=1000, data_root=synthetic_root,
                work_dir=tmp_path_factory.mktemp("train") / "run", cfg_options=[FAST], echo=False)
    return Path(rec["_run_dir"]) / "iter_1.pth"


@pytest.mark.slow
def test_a_second_eval_into_one_work_dir_needs_overwrite_which_keeps_the_first(repro, checkpoint, synthetic_root,
                                                                               tmp_path):
    work = tmp_path / "W"
    args = ["eval", DEMO, "--checkpoint", checkpoint, "--data-root", synthetic_root, "--work-dir", work,
            "--cfg-options", FAST]
    assert repro(*args).exit_code == 0
    first = _snapshot(work)

    again = repro(*args)
    assert again.exit_code == 2
    line = _error(again)
    assert f"--work-dir {work} already holds a run record (eval {DEMO} ss, succeeded, mIoU" in line
    assert "--overwrite" in line
    assert _snapshot(work) == first                                  # not one byte of the first run changed
    assert [p.name for p in tmp_path.iterdir()] == ["W"]

    replaced = repro(*args, "--overwrite")
    assert replaced.exit_code == 0, replaced.output
    aside = [p for p in tmp_path.iterdir() if p.name != "W"]
    assert len(aside) == 1 and aside[0].name.startswith("W.old-")
    assert f"moved aside to {aside[0]}" in replaced.stdout           # the output names where the old run went
    assert _snapshot(aside[0]) == first                              # kept whole
    # the new run directory holds one run: one eval JSON, one launch in the console log
    assert len(list(work.glob("eval_*.json"))) == 1
    assert sum(ln.startswith("$ ") for ln in (work / "console.log").read_text().splitlines()) == 1
    job = json.loads((work / "job.json").read_text())
    assert job["previous_run"] == str(aside[0])


@pytest.mark.slow
def test_a_folder_repro_did_not_make_is_refused_even_with_overwrite(repro, checkpoint, synthetic_root, tmp_path):
    work = tmp_path / "mine"
    work.mkdir()
    (work / "notes.txt").write_text("my notes\n")
    for flags in ([], ["--overwrite"]):
        result = repro("eval", DEMO, "--checkpoint", checkpoint, "--data-root", synthetic_root, "--work-dir", work,
                       "--cfg-options", FAST, *flags)
        assert result.exit_code == 2
        line = _error(result)
        assert f"--work-dir {work} is not empty and holds no repro run (notes.txt)" in line
        assert _snapshot(work) == {"notes.txt": b"my notes\n"}
        assert [p.name for p in tmp_path.iterdir()] == ["mine"]


@pytest.mark.slow
def test_overwrite_refuses_a_run_holding_a_users_file_or_this_runs_own_input(repro, checkpoint, synthetic_root):
    train_dir = checkpoint.parent
    before = _snapshot(train_dir)
    # the checkpoint to evaluate lives in the run that --overwrite would move away
    result = repro("eval", DEMO, "--checkpoint", checkpoint, "--data-root", synthetic_root, "--work-dir", train_dir,
                   "--cfg-options", FAST, "--overwrite")
    assert result.exit_code == 2
    assert f"this run reads {checkpoint} from it" in _error(result)
    assert _snapshot(train_dir) == before

    (train_dir / "notes.txt").write_text("mine\n")
    try:
        result = repro("eval", DEMO, "--checkpoint", checkpoint, "--data-root", synthetic_root,
                       "--work-dir", train_dir, "--cfg-options", FAST, "--overwrite")
        assert result.exit_code == 2
        assert "holds a repro run and files a run does not make: notes.txt" in _error(result)
        assert _snapshot(train_dir) == {**before, "notes.txt": b"mine\n"}
    finally:
        (train_dir / "notes.txt").unlink()


def _record_dir(parent: Path) -> Path:
    """A run directory as `repro eval` leaves it: job.json, result.json, logs."""
    work = parent / "W"
    work.mkdir()
    (work / "job.json").write_text(json.dumps(make_job()))
    (work / "result.json").write_text(json.dumps({"schema": "repro.result/1", "kind": "eval", "reproduction": DEMO,
                                                  "protocol": "ss", "status": "succeeded",
                                                  "metrics": {"mIoU": 31.87}}))
    (work / "console.log").write_text("$ python -m harness.engine.entry\n")
    return work


def test_dry_run_says_what_would_happen_to_a_used_work_dir(repro, tmp_path):
    pytest.importorskip("mmcv")
    work = _record_dir(tmp_path)
    before = _snapshot(work)
    plain = repro("eval", "eva02_L_sz512", "--work-dir", work, "--dry-run")
    assert plain.exit_code == 2, plain.output          # the real run would be refused: no weights, and this folder
    notes = [ln for ln in plain.stdout.splitlines() if ln.startswith("# note: ")]
    assert any(f"--work-dir {work} already holds a run record (eval {DEMO} ss, succeeded, mIoU 31.87)" in n
               for n in notes), notes
    over = repro("eval", "eva02_L_sz512", "--work-dir", work, "--dry-run", "--overwrite")
    assert any("it would be moved aside to W.old-<timestamp>" in ln for ln in over.stdout.splitlines()
               if ln.startswith("# note: "))
    assert _snapshot(work) == before and [p.name for p in tmp_path.iterdir()] == ["W"]


def test_claims_decide_before_anything_is_written(tmp_path):
    job = job_from_dict(make_job())
    assert plan_claim(tmp_path / "new", False, job).action == "create"
    assert not (tmp_path / "new").exists()
    (tmp_path / "empty").mkdir()
    assert plan_claim(tmp_path / "empty", False, job).action == "use"
    work = _record_dir(tmp_path)
    claim = plan_claim(work, True, job)
    assert claim.action == "move-aside" and (work / "result.json").exists()
    moved = claim.apply()
    assert moved.name.startswith("W.old-") and (moved / "result.json").exists()
    assert [p.name for p in work.iterdir()] == [".claim"]          # claimed until its job.json is written


def test_a_node_of_a_multi_node_run_joins_the_run_directory_node_0_started(tmp_path):
    """torchrun on several nodes with a shared --work-dir: every node runs the same command into one folder."""
    launch = {"launcher": "torchrun", "nnodes": 2, "gpus": 1, "master_addr": "10.0.0.1", "master_port": 29500}
    node0 = make_job(launch=dict(launch, node_rank=0))
    work = tmp_path / "W"
    work.mkdir()
    (work / "job.json").write_text(json.dumps(node0))
    node1 = dict(node0, launch=dict(node0["launch"], node_rank=1))
    assert plan_claim(work, False, job_from_dict(node1)).action == "join"
    # a single-node run, or another multi-node job, does not join it
    with pytest.raises(ReproError, match="an unfinished eval run"):
        plan_claim(work, False, job_from_dict(dict(node1, launch=dict(node1["launch"], nnodes=1))))
    with pytest.raises(ReproError, match="already holds"):
        plan_claim(work, False, job_from_dict(dict(node1, launch=dict(node1["launch"], master_port=29501))))
