"""Claiming a run folder (harness/run/claim.py): one written-once rule for --work-dir, the default folders, batch
folders and `repro import -o`, atomic against a concurrent claimant, never following a symlink out of the folder."""
from __future__ import annotations

import json
import multiprocessing
import os
from pathlib import Path

import pytest

from harness.errors import ReproError
from harness.run.claim import claim_default, claim_new, new_run_dir, plan_claim, release
from harness.run.folder import CLAIM_FILE


def _claim_after(barrier, folder: str, queue) -> None:
    barrier.wait()
    try:
        claim_new(folder, "--work-dir")
        queue.put(("won", ""))
    except ReproError as exc:
        queue.put(("refused", exc.one_line()))


@pytest.mark.parametrize("exists", [False, True], ids=["new", "empty"])
def test_eight_concurrent_claims_of_one_folder_one_wins(tmp_path, exists):
    folder = tmp_path / "W"
    if exists:
        folder.mkdir()
    ctx = multiprocessing.get_context("fork")
    barrier, queue = ctx.Barrier(8), ctx.Queue()
    procs = [ctx.Process(target=_claim_after, args=(barrier, str(folder), queue)) for _ in range(8)]
    for p in procs:
        p.start()
    outcomes = [queue.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(timeout=60)
    assert [o for o, _ in outcomes].count("won") == 1, outcomes
    for outcome, line in outcomes:
        if outcome == "refused":
            assert line.startswith(f"error: --work-dir {folder} ") and "\n" not in line
    assert [p.name for p in folder.iterdir()] == [CLAIM_FILE]       # the winner's, until its marker is written
    with pytest.raises(ReproError, match="is being claimed by another command"):
        claim_new(folder, "--work-dir")
    (folder / "job.json").write_text("{}")
    release(folder)
    with pytest.raises(ReproError, match="is not empty"):           # claimed, filled, released: written once
        claim_new(folder, "--work-dir")


def test_a_claim_that_finds_the_folder_filled_meanwhile_is_refused(tmp_path):
    folder = tmp_path / "W"
    folder.mkdir()
    decided = plan_claim(folder)                                    # empty when looked at ...
    (folder / "result.json").write_text("{}")                       # ... filled by another command since
    with pytest.raises(ReproError, match="was filled by another command meanwhile"):
        decided.apply()
    assert sorted(p.name for p in folder.iterdir()) == ["result.json"]


def test_default_folders_lie_inside_the_runs_root(tmp_path, monkeypatch):
    monkeypatch.setenv("REPRO_RUNS", str(tmp_path / "runs"))
    claim = claim_default(tmp_path / "runs" / "eva02_demo" / "ss")
    assert claim.path.parent == tmp_path / "runs" / "eva02_demo" / "ss" and (claim.path / CLAIM_FILE).exists()
    with pytest.raises(ReproError, match="would lie outside the runs root"):
        new_run_dir("../../elsewhere", "ss")
    with pytest.raises(ReproError, match="would lie outside the runs root"):
        claim_default(tmp_path / "elsewhere")
    assert not (tmp_path / "elsewhere").exists()


def _eval_json(tmp_path: Path) -> Path:
    """An mmseg eval JSON as the authors' tools/test.py writes it (metrics as fractions)."""
    path = tmp_path / "src" / "eval_single_scale_20230318_171005.json"
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps({"config": "configs/eva02/upernet/eva02_demo.py",
                                "metric": {"aAcc": 0.8, "mIoU": 0.3187, "mAcc": 0.4}}))
    return path


def test_import_into_a_folder_that_is_not_a_run_is_refused(tmp_path):
    from harness.verify.importer import import_result
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("my notes\n")
    with pytest.raises(ReproError, match=r"-o .*mine is not empty and holds no repro run \(notes.txt\)"):
        import_result(_eval_json(tmp_path), reproduction="eva02_demo", protocol="ss", out_dir=out)
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]


def test_import_never_follows_a_symlink_out_of_the_folder(tmp_path):
    from harness.verify.importer import import_result
    outside = tmp_path / "outside"
    outside.mkdir()
    out = tmp_path / "run"
    out.mkdir()
    os.symlink(outside, out / "imported")
    with pytest.raises(ReproError, match="holds no repro run"):
        import_result(_eval_json(tmp_path), reproduction="eva02_demo", protocol="ss", out_dir=out)
    assert list(outside.iterdir()) == []                       # nothing written through the link
    (out / "imported").unlink()
    run_dir = import_result(_eval_json(tmp_path), reproduction="eva02_demo", protocol="ss", out_dir=out)
    assert sorted(p.name for p in run_dir.iterdir()) == ["imported", "result.json"]    # the claim released
    with pytest.raises(ReproError, match="already holds a run record"):              # written once
        import_result(_eval_json(tmp_path), reproduction="eva02_demo", protocol="ss", out_dir=out)
