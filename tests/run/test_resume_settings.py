"""`repro train --resume` (issue #13): only an unfinished run is resumed, with the job's own recorded settings; flags
given again must agree; `--dry-run` shows the directory and the checkpoint it would resume; a finished run is never
touched. The unfinished run is a real one, stopped with SIGTERM after its first checkpoint (a failed record)."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytest.importorskip("mmseg.apis")

from harness.engine.train import find_resume_checkpoint
from harness.errors import ReproError
from harness.run.claim import new_run_dir
from harness.run.record import read_result
from harness.run.api import train

DEMO = "eva02_demo"
FAST = "data.workers_per_gpu=1"
REPRO = str(Path(sys.executable).parent / "repro")
MAX_ITERS = 12


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("runs")


@pytest.fixture(scope="module")
def interrupted(runs, synthetic_root, tmp_path_factory) -> Path:
    """`repro train` with its own data root and schedule, stopped by SIGTERM once a checkpoint is complete."""
    env = dict(os.environ, REPRO_RUNS=str(runs), REPRO_HOME=str(tmp_path_factory.mktemp("home")))
    argv = [REPRO, "train", DEMO, "--max-iters", str(MAX_ITERS), "--checkpoint-interval", "2", "--eval-interval",
            "1000", "--data-root", str(synthetic_root), "--cfg-options", FAST]
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    parent = runs / DEMO / "train"
    deadline = time.monotonic() + 240
    while True:
        assert proc.poll() is None, "training ended before it could be stopped"
        assert time.monotonic() < deadline, "no complete checkpoint after 240 s"
        work = next(parent.glob("*"), None)
        if work is not None and find_resume_checkpoint(work) is not None:
            break
        time.sleep(0.1)
    proc.send_signal(signal.SIGTERM)          # repro passes it on to the engine and writes a failed record
    assert proc.wait(timeout=120) != 0
    assert read_result(work)["status"] == "failed"
    return work


@pytest.fixture(scope="module")
def finished(interrupted, runs, synthetic_root) -> Path:
    """A completed run of the same reproduction, newer than the interrupted one."""
    work = new_run_dir(DEMO, "train", root=runs)
    rec = train(DEMO, max_iters=1, checkpoint_interval=1, eval_interval=1000, data_root=synthetic_root,
                work_dir=work, cfg_options=[FAST], echo=False)
    assert rec["status"] == "succeeded"
    return work


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


def _error(result) -> str:
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, result.output
    return lines[0]


@pytest.mark.slow
def test_a_finished_run_is_never_resumed(finished, synthetic_root):
    before = _snapshot(finished)
    with pytest.raises(ReproError, match="is a finished run .*--resume continues only unfinished runs"):
        train(DEMO, resume=True, work_dir=finished, max_iters=1, data_root=synthetic_root, cfg_options=[FAST],
              echo=False)
    assert _snapshot(finished) == before and read_result(finished)["status"] == "succeeded"


@pytest.mark.slow
def test_resume_dry_run_shows_the_unfinished_run_and_its_checkpoint(repro, interrupted, finished, runs, monkeypatch,
                                                                    synthetic_root):
    monkeypatch.setenv("REPRO_RUNS", str(runs))
    before = _snapshot(interrupted)
    result = repro("train", DEMO, "--resume", "--dry-run")
    assert result.exit_code == 0, result.output
    ckpt = find_resume_checkpoint(interrupted)
    lines = result.stdout.splitlines()
    assert f"# run directory: {interrupted}" in lines                    # the unfinished run, not the newer finished
    assert f"# resumes the unfinished run in {interrupted} from {ckpt}" in lines
    assert f"resume_from = '{ckpt}'" in lines
    rerun = next(ln for ln in lines if ln.startswith("# as a repro command"))
    assert f"--max-iters {MAX_ITERS} " in rerun and f"--data-root {synthetic_root} " in rerun   # its own settings
    assert not [ln for ln in lines if ln.startswith("# note: ")]
    assert _snapshot(interrupted) == before


@pytest.mark.slow
@pytest.mark.parametrize("flag, value, recorded", [("--max-iters", "20", str(MAX_ITERS)),
                                                   ("--seed", "7", "0"),
                                                   ("--cfg-options", "data.workers_per_gpu=0", f"{FAST}")])
def test_flags_given_again_must_agree_with_the_run(repro, interrupted, finished, runs, monkeypatch, flag, value,
                                                   recorded):
    monkeypatch.setenv("REPRO_RUNS", str(runs))
    before = _snapshot(interrupted)
    result = repro("train", DEMO, "--resume", flag, value)
    assert result.exit_code == 2
    assert f"error: {flag} {value} differs from the interrupted run's {recorded}" in _error(result)
    assert _snapshot(interrupted) == before


@pytest.mark.slow
def test_a_different_data_root_is_refused(repro, interrupted, finished, runs, monkeypatch, tmp_path):
    monkeypatch.setenv("REPRO_RUNS", str(runs))
    result = repro("train", DEMO, "--resume", "--data-root", tmp_path)
    assert result.exit_code == 2
    assert f"--data-root {tmp_path} differs from the interrupted run's" in _error(result)
    over = repro("train", DEMO, "--resume", "--overwrite")
    assert over.exit_code == 2 and "pass one of them" in _error(over)


@pytest.mark.slow
def test_plain_resume_finishes_the_run_with_its_own_settings(repro, interrupted, finished, runs, monkeypatch,
                                                            synthetic_root):
    monkeypatch.setenv("REPRO_RUNS", str(runs))
    finished_before = _snapshot(finished)
    ckpt = find_resume_checkpoint(interrupted)
    result = repro("train", DEMO, "--resume")                          # no --data-root, no --max-iters
    assert result.exit_code == 0, result.output
    rec = read_result(interrupted)
    assert rec["status"] == "succeeded" and rec["training"]["resumed"] is True
    assert rec["training"]["resumed_from"] == ckpt.name
    assert rec["training"]["max_iters"] == rec["training"]["iterations"] == MAX_ITERS
    assert rec["dataset"]["root"] == str(synthetic_root)
    # the schedule continued: the first logged iteration after the resume follows the checkpoint
    lines = [json.loads(ln) for ln in (interrupted / "train.log.json").read_text().splitlines()]
    metas = [i for i, ln in enumerate(lines) if "exp_name" in ln]
    after = [ln["iter"] for ln in lines[metas[-1]:] if ln.get("mode") == "train"]
    assert len(metas) == 2 and after and after[0] == int(ckpt.stem.split("_")[1]) + 1 and after[-1] == MAX_ITERS
    assert _snapshot(finished) == finished_before
