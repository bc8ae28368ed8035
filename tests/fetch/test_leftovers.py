"""Prepares that run at once or die midway: two commands into one data root both succeed; a command killed while
it swaps in a new dataset leaves nothing that the next command does not clean up (or restore)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from harness.fetch import atomic, dataroot, layout

from .test_ade20k import hashes, make_zip, prepare


def _cli(*args) -> list[str]:
    return [sys.executable, "-m", "harness", "prepare", "ade20k", *args]


def _many_files(n):
    def mutate(root):
        extra = root / "extra"
        extra.mkdir()
        for i in range(n):
            (extra / f"{i:05d}.txt").write_text(str(i))
    return mutate


def _dot_folders(parent):
    return sorted(p.name for p in parent.iterdir() if p.name.startswith("."))


def test_two_prepares_into_one_root_both_succeed(home, tmp_path):
    big = make_zip(tmp_path / "big.zip", filler=600)              # ~40 MB: seconds of extraction and hashing
    root = tmp_path / "data" / "ADEChallengeData2016"
    cmd = _cli("--zip", str(big["path"]), "--data-root", str(root), *hashes(big))
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=300) for p in procs]
    for proc, (out, err) in zip(procs, outs):
        assert proc.returncode == 0, err[-2000:]
        assert "ADE20K ready at" in out
    assert dataroot.status(root) == "ready"
    layout.check_manifest(root, deep=True)
    assert _dot_folders(root.parent) == []


def test_prepare_killed_during_the_force_swap_is_cleaned_up(home, tmp_path):
    first = make_zip(tmp_path / "first.zip", _many_files(6000))
    second = make_zip(tmp_path / "second.zip", seed=1)
    root = tmp_path / "ADEChallengeData2016"
    assert prepare("--zip", str(first["path"]), "--data-root", str(root), *hashes(first)).exit_code == 0
    # the old dataset (6000 extra files) is renamed aside and then deleted: kill the command while it deletes
    proc = subprocess.Popen(_cli("--zip", str(second["path"]), "--data-root", str(root), "--force", *hashes(second)),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    caught = None
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        old = [n for n in os.listdir(tmp_path) if n.startswith(".ADEChallengeData2016.old-")]
        if old:
            caught = old[0]
            proc.send_signal(signal.SIGKILL)
            break
        time.sleep(0.0005)
    proc.wait()
    assert caught is not None, "the swap was not caught in progress"
    assert (tmp_path / caught).exists(), "the killed command left its old folder"
    assert layout.read_manifest(root)["origin"]["source"] == str(second["path"]), "killed after the swap"
    # the next prepare, even one with nothing to do, removes the dead command's leftover
    result = prepare("--zip", str(second["path"]), "--data-root", str(root), *hashes(second))
    assert result.exit_code == 0, result.output
    assert _dot_folders(tmp_path) == []
    assert dataroot.status(root) == "ready"


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_killed_between_the_two_renames_the_old_dataset_comes_back(home, tmp_path):
    z = make_zip(tmp_path / "a.zip")
    root = tmp_path / "ADEChallengeData2016"
    assert prepare("--zip", str(z["path"]), "--data-root", str(root), *hashes(z)).exit_code == 0
    digest = layout.read_manifest(root)["files_sha256"]
    # what a command killed right after renaming the old dataset aside leaves: no root, the old one beside it
    aside = tmp_path / f"{atomic._prefix(root, 'old')}{_dead_pid()}"
    os.replace(root, aside)
    other_host = tmp_path / ".ADEChallengeData2016.partial-otherhost-1"
    other_host.mkdir()
    assert prepare("--zip", str(z["path"]), "--data-root", str(root), *hashes(z)).exit_code == 0
    assert layout.read_manifest(root)["files_sha256"] == digest
    assert _dot_folders(tmp_path) == [other_host.name], "another host's staging folder is not ours to judge"
