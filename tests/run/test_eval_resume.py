"""Resumable evaluation (issue 25): a 50-image synthetic evaluation killed (SIGKILL, SIGTERM) after about half its
images and resumed with `repro eval --resume` gives the metrics and the ledger of an uninterrupted run, bit for bit:
fast and stock engines, one process and two torchrun CPU processes. A resume with another checkpoint, protocol
or data is refused, naming the field."""
from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("mmseg.apis")

from harness.ledger.store import ARRAYS, LEDGER_FILE, PARTS_DIR, chunk_paths, read_ledger, read_parts  # noqa: E402
from harness.run.api import evaluate  # noqa: E402

DEMO = "eva02_demo"
VAL = 50
OPTIONS = ["data.workers_per_gpu=0"]
LAUNCH = {"none": {}, "torchrun": {"launcher": "torchrun", "gpus": 2}}


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """A 2-step demo checkpoint (trained on its own tiny data) and 50 synthetic val images to evaluate it on."""
    from demo_runs import train_demo_briefly

    from harness.fetch.synthetic import generate
    small = generate(tmp_path_factory.mktemp("train-data") / "ADEChallengeData2016", num_train=4, num_val=2, seed=1)
    run = train_demo_briefly(small, tmp_path_factory.mktemp("train") / "run")
    record = json.loads((run / "result.json").read_text())
    root = generate(tmp_path_factory.mktemp("val-data") / "ADEChallengeData2016", num_train=4, num_val=VAL, seed=0)
    return root, run / record["artifacts"]["final_checkpoint"]


@pytest.fixture(autouse=True)
def _small_chunks(monkeypatch):
    """A ledger chunk every 2 images per process (the engine subprocesses inherit it)."""
    monkeypatch.setenv("REPRO_LEDGER_EVERY_IMAGES", "2")


def _launch(launcher: str):
    from harness.run.options import LaunchOptions
    return LaunchOptions(**LAUNCH[launcher])


_uninterrupted: dict = {}


def _uninterrupted_run(demo, engine: str, launcher: str, tmp_path_factory) -> Path:
    """One uninterrupted evaluation per engine and launcher, shared by the kill tests."""
    key = (engine, launcher)
    if key not in _uninterrupted:
        root, ckpt = demo
        rec = evaluate(DEMO, checkpoint=ckpt, data_root=root, engine=engine, launch=_launch(launcher),
                       work_dir=tmp_path_factory.mktemp("whole") / "run", cfg_options=OPTIONS, echo=False)
        _uninterrupted[key] = Path(rec["_run_dir"])
    return _uninterrupted[key]


def _interrupt(work: Path, command: str, signum: int, at_least: int = VAL // 3) -> int:
    """Run the engine command (as `repro` would), wait until its ledger chunks hold `at_least` images, then send
    `signum` to its whole process group; return its exit code."""
    proc = subprocess.Popen(shlex.split(command), start_new_session=True, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 600
    try:
        while True:
            parts = read_parts(work / PARTS_DIR) if (work / PARTS_DIR).is_dir() else None
            if parts is not None and parts.num_images >= at_least:
                break
            assert proc.poll() is None, f"the evaluation ended (rc {proc.returncode}) before it could be interrupted"
            assert time.monotonic() < deadline, "no ledger chunks in 10 minutes"
            time.sleep(0.1)
        if signum == signal.SIGKILL:   # every process of the tree: torchrun's workers have sessions of their own
            for pid in [proc.pid, *_descendants(proc.pid)]:
                os.kill(pid, signal.SIGKILL)
        else:                          # as a terminal or a scheduler does; torchrun passes it on to its workers
            os.killpg(proc.pid, signum)
        return proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def _descendants(pid: int) -> list[int]:
    """The processes started by `pid`, recursively (from /proc)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    out, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            out.append(child)
            todo.append(child)
    return out


def _assert_same(resumed: Path, whole: Path) -> None:
    a, b = (json.loads((d / "result.json").read_text()) for d in (resumed, whole))
    assert a["status"] == b["status"] == "succeeded", a.get("failure")
    assert a["metrics"] == b["metrics"] and a["per_class"] == b["per_class"]
    la, lb = read_ledger(resumed / LEDGER_FILE), read_ledger(whole / LEDGER_FILE)
    for name in ARRAYS:
        assert np.array_equal(getattr(la, name), getattr(lb, name)), name
    assert a["ledger"] == b["ledger"] and a["ledger"]["images"] == VAL        # the same bytes, the same sha256
    assert not (resumed / PARTS_DIR).exists()


@pytest.mark.slow
@pytest.mark.parametrize("launcher", ["none", "torchrun"])
@pytest.mark.parametrize("engine", ["fast", "stock"])
@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
def test_an_interrupted_evaluation_resumed_equals_an_uninterrupted_one(demo, tmp_path, tmp_path_factory, repro,
                                                                      engine, launcher, signum):
    root, ckpt = demo
    whole = _uninterrupted_run(demo, engine, launcher, tmp_path_factory)
    work = tmp_path / "run"
    prepared = evaluate(DEMO, checkpoint=ckpt, data_root=root, engine=engine, launch=_launch(launcher),
                        work_dir=work, cfg_options=OPTIONS, echo=False, prepare_only=True)
    rc = _interrupt(work, prepared["job"]["launch"]["command"], signum)
    assert rc != 0
    done = read_parts(work / PARTS_DIR)
    assert VAL // 3 <= done.num_images < VAL and all(p.stat().st_size > 0 for p in chunk_paths(work / PARTS_DIR))
    if signum == signal.SIGTERM:   # the engine flushed what it had and said why, in one line
        assert "evaluation interrupted by SIGTERM" in (work / "failure.txt").read_text()

    result = repro("eval", DEMO, "--resume", "--work-dir", work)
    assert result.exit_code == 0, result.output
    record = json.loads((work / "result.json").read_text())
    assert record["sessions"] == 2 and record["eval_engine"] == engine
    assert record["launch"]["world_size"] == (2 if launcher == "torchrun" else 1)
    _assert_same(work, whole)
    assert repro("verify", work).exit_code != 2


# ------------------------------------------------------------------------------------------------ refusals

@pytest.fixture
def unfinished(demo, tmp_path):
    """An evaluation prepared and never finished (as if killed before its first chunk): what --resume continues."""
    root, ckpt = demo
    work = tmp_path / "run"
    evaluate(DEMO, checkpoint=ckpt, data_root=root, work_dir=work, cfg_options=OPTIONS, echo=False,
             prepare_only=True)
    return work


@pytest.mark.slow
def test_a_resume_with_other_settings_is_refused_naming_the_field(demo, unfinished, tmp_path, repro):
    import torch

    from harness.fetch.synthetic import generate
    root, ckpt = demo
    other = tmp_path / "other.pth"
    state = torch.load(ckpt, map_location="cpu", weights_only=False)
    next(iter(state["state_dict"].values())).add_(1)
    torch.save(state, other)
    other_data = generate(tmp_path / "other-data" / "ADEChallengeData2016", num_train=4, num_val=VAL, seed=5)
    for flags, field in ((["--checkpoint", other], "checkpoint"), (["--protocol", "ms"], "protocol"),
                         (["--data-root", other_data], "data"), (["--engine", "stock"], "engine"),
                         (["--precision", "bf16"], "precision")):
        result = repro("eval", DEMO, "--resume", "--work-dir", unfinished, *flags)
        assert result.exit_code == 2, (field, result.output)
        assert f"{unfinished}: the {field} differs from the interrupted evaluation's" in result.output, field
        assert len(result.output.strip().splitlines()) == 1
    assert not (unfinished / "result.json").exists()


@pytest.mark.slow
def test_a_checkpoint_changed_since_the_interruption_is_refused(demo, unfinished, tmp_path, repro):
    import shutil

    import torch
    job = json.loads((unfinished / "job.json").read_text())
    recorded = Path(tmp_path / "moved.pth")
    shutil.copy(job["checkpoint"]["path"], recorded)        # the recorded path now holds other weights
    job["checkpoint"]["path"] = str(recorded)
    (unfinished / "job.json").write_text(json.dumps(job))
    state = torch.load(recorded, map_location="cpu", weights_only=False)
    next(iter(state["state_dict"].values())).add_(1)
    torch.save(state, recorded)
    result = repro("eval", DEMO, "--resume", "--work-dir", unfinished)
    assert result.exit_code == 2 and "the checkpoint differs from the interrupted evaluation's" in result.output


def test_resume_finds_nothing_to_continue(tmp_path, repro):
    result = repro("eval", DEMO, "--resume")
    assert result.exit_code == 2
    assert "nothing to resume: no unfinished evaluation of eva02_demo (ss) under" in result.output
    (tmp_path / "empty").mkdir()
    result = repro("eval", DEMO, "--resume", "--work-dir", tmp_path / "empty")
    assert result.exit_code == 2 and "holds no repro run (no job.json)" in result.output
