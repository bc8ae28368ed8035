"""`repro prepare ade20k` against zips served on 127.0.0.1: resume, corrupt/failed/slow transfers, bad archives,
layout faults, manifest verification, and a killed extraction."""
from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from harness.cli import cli
from harness.errors import ReproError
from harness.fetch import dataroot, layout, synthetic
from harness.registry import datasets

COUNTS = "6,3"


def make_zip(path: Path, mutate=None, filler: int = 0, folder: str = "ADEChallengeData2016", seed: int = 0) -> dict:
    """An ADE20K-format zip (6 training / 3 validation images) and its md5/sha1."""
    work = path.parent / f"{path.stem}-src"
    root = synthetic.generate(work / "ADEChallengeData2016", 6, 3, seed=seed, force=True)
    (root / layout.MANIFEST).unlink()
    (root / "objectInfo150.txt").write_text("Idx\tRatio\tTrain\tVal\tName\n")
    if mutate:
        mutate(root)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zf:
        for f in sorted(root.rglob("*")):
            if f.is_file():
                zf.write(f, f"{folder}/{f.relative_to(root).as_posix()}")
        for i in range(filler):
            zf.writestr(f"{folder}/filler/{i:05d}.bin", os.urandom(64 << 10))
    shutil.rmtree(work)
    data = path.read_bytes()
    return {"path": path, "md5": hashlib.md5(data).hexdigest(), "sha1": hashlib.sha1(data).hexdigest(),
            "size": len(data)}


def prepare(*args):
    return CliRunner().invoke(cli, ["prepare", "ade20k", *args])


def hashes(z):
    return ["--md5", z["md5"], "--sha1", z["sha1"], "--counts", COUNTS]


@pytest.fixture
def good_zip(tmp_path):
    return make_zip(tmp_path / "ADEChallengeData2016.zip")


@pytest.fixture
def served(server, good_zip):
    url = server.add("/mirror/ADEChallengeData2016.zip", good_zip["path"].read_bytes())
    return {**good_zip, "url": url, "route": "/mirror/ADEChallengeData2016.zip"}


def test_download_extract_verify_and_facts(home, tmp_path, served, server):
    root = tmp_path / "data" / "ADEChallengeData2016"
    assert dataroot.status(root) == "missing"
    result = prepare("--url", served["url"], "--data-root", str(root), *hashes(served))
    assert result.exit_code == 0, result.output
    assert f"ADE20K ready at {root}: 6 training / 3 validation images" in result.output
    assert dataroot.status(root) == "ready"
    facts = dataroot.dataset_facts(root)
    assert facts == {"root": str(root), "split": "validation", "num_images": 3,
                     "manifest_sha256": layout.read_manifest(root)["files_sha256"], "synthetic": False}
    assert (root / "objectInfo150.txt").is_file() and not (root / "ADEChallengeData2016").exists()
    assert (home / "downloads" / "ADEChallengeData2016.zip").is_file()
    result = prepare("--verify", "--data-root", str(root))
    assert result.exit_code == 0 and "ADE20K verified" in result.output
    # prepared already: nothing is fetched again
    gets = len(server.gets(served["route"]))
    assert prepare("--url", served["url"], "--data-root", str(root), *hashes(served)).exit_code == 0
    assert len(server.gets(served["route"])) == gets
    assert not [p for p in root.parent.iterdir() if p.name.startswith(".")], "no staging folder left"


def test_cut_transfer_resumes_in_the_same_and_the_next_command(home, tmp_path, served, server):
    root = tmp_path / "ADEChallengeData2016"
    cut = 65536                 # a whole number of the helper's 64 KiB chunks
    assert served["size"] > cut
    # a dropped connection is resumed by the same command
    server.plan(served["route"], ("cut", cut))
    assert prepare("--url", served["url"], "--data-root", str(root), *hashes(served)).exit_code == 0
    first, second = server.gets(served["route"])
    assert first.range is None and first.sent == cut
    assert second.range == f"bytes={cut}-" and second.status == 206
    assert server.sent(served["route"]) == served["size"]
    # a command that fails mid-transfer keeps the part; the next one asks only for the rest
    shutil.rmtree(root)
    (home / "downloads" / "ADEChallengeData2016.zip").unlink()
    server.log.clear()
    server.plan(served["route"], ("cut", cut), ("status", 404))
    result = prepare("--url", served["url"], "--data-root", str(root), *hashes(served))
    assert result.exit_code == 2 and "HTTP 404" in result.output
    assert dataroot.status(root) == "missing"
    assert (home / "downloads" / "ADEChallengeData2016.zip.part").stat().st_size == cut
    assert prepare("--url", served["url"], "--data-root", str(root), *hashes(served)).exit_code == 0
    assert server.gets(served["route"])[-1].range == f"bytes={cut}-"
    assert server.sent(served["route"]) == served["size"]
    assert dataroot.status(root) == "ready"


def test_corrupt_byte_is_caught_and_moved_aside(home, tmp_path, served, server):
    root = tmp_path / "ADEChallengeData2016"
    server.plan(served["route"], ("corrupt", 1000))
    result = prepare("--url", served["url"], "--data-root", str(root), *hashes(served))
    assert result.exit_code == 2
    assert "downloaded ADEChallengeData2016.zip from" in result.output and "does not match" in result.output
    downloads = home / "downloads"
    assert not (downloads / "ADEChallengeData2016.zip").exists()
    assert len(list(downloads.glob("ADEChallengeData2016.zip.bad-*"))) == 1
    assert dataroot.status(root) == "missing"
    result = prepare("--url", served["url"], "--data-root", str(root), *hashes(served))
    assert result.exit_code == 0, result.output
    assert server.gets(served["route"])[-1].range is None, "started over, not resumed from a bad file"


@pytest.mark.parametrize("fault,message", [((("status", 500),) * 4, "HTTP 500"),      # retried 3 times first
                                           ((("status", 403),), "HTTP 403")], ids=["500", "403"])
def test_http_errors(home, tmp_path, served, server, fault, message):
    root = tmp_path / "ADEChallengeData2016"
    server.plan(served["route"], *fault)
    result = prepare("--url", served["url"], "--data-root", str(root), *hashes(served))
    assert result.exit_code == 2
    assert f"downloading {served['url']} failed: {message}" in result.output
    assert dataroot.status(root) == "missing"
    assert not (home / "downloads" / "ADEChallengeData2016.zip").exists()


def test_slow_server(home, tmp_path, served, server, monkeypatch):
    monkeypatch.setenv("REPRO_HTTP_TIMEOUT", "0.5")
    root = tmp_path / "ADEChallengeData2016"
    server.plan(served["route"], ("stall", 2, 0), ("stall", 2, 0), ("stall", 2, 0), ("stall", 2, 0))
    result = prepare("--url", served["url"], "--data-root", str(root), *hashes(served))
    assert result.exit_code == 2
    assert f"downloading {served['url']} failed:" in result.output and "timed out" in result.output
    assert not (home / "downloads" / "ADEChallengeData2016.zip").exists()
    # a stall after some data resumes from where it stopped
    server.plan(served["route"], ("stall", 2, 65536))
    assert prepare("--url", served["url"], "--data-root", str(root), *hashes(served)).exit_code == 0
    assert server.gets(served["route"])[-1].range == "bytes=65536-"


def test_truncated_and_wrong_zips(home, tmp_path, good_zip):
    root = tmp_path / "ADEChallengeData2016"
    short = tmp_path / "short.zip"
    short.write_bytes(good_zip["path"].read_bytes()[: good_zip["size"] // 2])
    result = prepare("--zip", str(short), "--data-root", str(root), *hashes(good_zip))
    assert result.exit_code == 2 and f"{short} has md5" in result.output
    result = prepare("--zip", str(short), "--data-root", str(root), "--md5", hashlib.md5(short.read_bytes()).hexdigest(),
                     "--counts", COUNTS)
    assert result.exit_code == 2 and f"{short} is not a readable zip" in result.output
    other = make_zip(tmp_path / "other.zip", folder="SomethingElse")
    result = prepare("--zip", str(other["path"]), "--data-root", str(root), *hashes(other))
    assert result.exit_code == 2 and "holds no files under ADEChallengeData2016/" in result.output
    # the published checksums are the default: a generated zip cannot pass them
    result = prepare("--zip", str(good_zip["path"]), "--data-root", str(root), "--counts", COUNTS)
    assert result.exit_code == 2 and f"expected {datasets.get('ade20k').archive.md5}" in result.output
    assert dataroot.status(root) == "missing"


def _drop(rel):
    return lambda root: (root / rel).unlink()


def _label(value):
    def mutate(root):
        p = root / "annotations/validation/ADE_val_00000002.png"
        a = np.asarray(Image.open(p)).copy()
        a[0, 0] = value
        Image.fromarray(a, "L").save(p)
    return mutate


def _rgb(root):
    p = root / "annotations/training/ADE_train_00000004.png"
    Image.open(p).convert("RGB").save(p)


def _extra(root):
    shutil.copy(root / "images/training/ADE_train_00000001.jpg", root / "images/training/ADE_train_00000099.jpg")


@pytest.mark.parametrize("mutate,message", [
    (_drop("annotations/training/ADE_train_00000003.png"),
     "images/training/ADE_train_00000003.jpg: no annotation annotations/training/ADE_train_00000003.png"),
    (_extra, "images/training/ADE_train_00000099.jpg: no annotation"),
    (_label(151), "annotations/validation/ADE_val_00000002.png: label value 151 outside 0..150"),
    (_rgb, "annotations/training/ADE_train_00000004.png: annotation must be single-channel uint8, found mode RGB"),
], ids=["missing-annotation", "extra-image", "label-151", "rgb-annotation"])
def test_layout_faults_name_the_file(home, tmp_path, mutate, message):
    bad = make_zip(tmp_path / "bad.zip", mutate)
    root = tmp_path / "ADEChallengeData2016"
    result = prepare("--zip", str(bad["path"]), "--data-root", str(root), *hashes(bad))
    assert result.exit_code == 2
    assert message in result.output
    assert not root.exists() and not [p for p in tmp_path.iterdir() if p.name.startswith(".ADE")]
    assert dataroot.status(root) == "missing"


def test_verify_finds_missing_extra_and_changed_files(home, tmp_path, good_zip):
    root = tmp_path / "ADEChallengeData2016"
    assert prepare("--zip", str(good_zip["path"]), "--data-root", str(root), *hashes(good_zip)).exit_code == 0
    img = root / "images/validation/ADE_val_00000001.jpg"
    data = img.read_bytes()
    img.write_bytes(data[:500] + bytes([data[500] ^ 1]) + data[501:])        # same size, one bit
    assert dataroot.status(root) == "ready"                                      # sizes only
    result = prepare("--verify", "--data-root", str(root))
    assert result.exit_code == 2
    assert "images/validation/ADE_val_00000001.jpg: changed (sha256 differs from the manifest)" in result.output
    assert f"--data-root {root} --force" in result.output
    img.write_bytes(data)
    (root / "annotations/training/ADE_train_00000002.png").unlink()
    (root / "images/validation/notes.txt").write_text("x")
    assert dataroot.status(root) == "changed"
    result = prepare("--verify", "--data-root", str(root))
    assert "annotations/training/ADE_train_00000002.png: missing" in result.output
    assert "images/validation/notes.txt: extra file, not in the manifest" in result.output
    with pytest.raises(ReproError, match="ADE_train_00000002.png: missing"):
        dataroot.dataset_facts(root)
    # a root that is not prepared is refused, not overwritten
    result = prepare("--zip", str(good_zip["path"]), "--data-root", str(root), *hashes(good_zip))
    assert result.exit_code == 2 and "--force" in result.output
    assert prepare("--zip", str(good_zip["path"]), "--data-root", str(root), *hashes(good_zip), "--force").exit_code == 0
    assert dataroot.verify(root)["counts"] == {"training": 6, "validation": 3}


def test_synthetic_status_and_facts(tmp_path):
    root = synthetic.generate(tmp_path / "ADEChallengeData2016", 8, 2)
    assert dataroot.status(root) == "synthetic"
    assert dataroot.dataset_facts(root)["synthetic"] is True
    assert dataroot.dataset_facts(root, "training")["num_images"] == 8
    (root / "images/training/ADE_train_00000001.jpg").unlink()
    with pytest.raises(ReproError) as info:
        dataroot.verify(root)
    assert "--synthetic 8 --val 2 --seed 0" in info.value.fix


def test_killed_extraction_leaves_the_data_root_as_it_was(home, tmp_path, good_zip):
    root = tmp_path / "ADEChallengeData2016"
    assert prepare("--zip", str(good_zip["path"]), "--data-root", str(root), *hashes(good_zip)).exit_code == 0
    before = layout.read_manifest(root)["files_sha256"]
    big = make_zip(tmp_path / "big.zip", filler=1500, seed=1)           # ~100 MB of members to extract
    cmd = [sys.executable, "-m", "harness", "prepare", "ade20k", "--zip", str(big["path"]), "--data-root", str(root),
           "--force", *hashes(big)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    staging = None
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        found = list(tmp_path.glob(".ADEChallengeData2016.partial-*/filler"))
        if found and len(os.listdir(found[0])) > 50:
            staging = found[0].parent
            break
        time.sleep(0.005)
    assert staging is not None, "extraction was not caught in progress"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert layout.read_manifest(root)["files_sha256"] == before
    layout.check_manifest(root, deep=True)
    assert dataroot.status(root) == "ready"
    # the next run removes the dead process's staging folder and completes
    assert prepare("--zip", str(big["path"]), "--data-root", str(root), "--force", *hashes(big)).exit_code == 0
    assert not staging.exists()
    assert layout.read_manifest(root)["files_sha256"] != before
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".ADE")]


def test_layout_error_names_the_archive_and_the_counts_flag(home, tmp_path, good_zip):
    """A well-formed archive with other image counts than the published ones: the error names the archive (not
    a staging folder that is gone by the time it is read) and says how to accept its counts."""
    root = tmp_path / "ADEChallengeData2016"
    result = prepare("--zip", str(good_zip["path"]), "--data-root", str(root), "--md5", good_zip["md5"],
                     "--sha1", good_zip["sha1"])
    assert result.exit_code == 2
    line = result.output.strip()
    assert ".partial-" not in line
    assert str(good_zip["path"]) in line
    assert "images/training/: 6 images, expected 20210" in line
    assert "--counts 6,3" in line
    assert dataroot.status(root) == "missing"
    assert prepare("--zip", str(good_zip["path"]), "--data-root", str(root), *hashes(good_zip)).exit_code == 0


@pytest.mark.parametrize("processes", [1, 3])
def test_unpack_hashes_and_checks_what_it_writes(tmp_path, processes):
    """One pass per member, in-process or spread over workers: the sizes, sha256 and label facts it returns are
    those of the files it wrote, and a bad label is found wherever its chunk lands."""
    from harness.fetch import unpack
    bad = make_zip(tmp_path / "bad.zip", _label(151), filler=150)          # 170 members: several chunks
    members = dataroot.list_members(bad["path"], "ADEChallengeData2016")
    dest = tmp_path / "out"
    dest.mkdir()
    pairs, found = layout.check_names([rel for _, rel in members], {"training": 6, "validation": 3}, "fix", "here")
    assert found == {"training": 6, "validation": 3}
    files, facts = unpack.unpack(bad["path"], members, dest, progress=False, processes=processes, pairs=pairs)
    assert sorted(files) == layout.list_files(dest) and len(files) == len(members)
    assert sorted(facts) == sorted(rel for pair in pairs for rel in pair), "facts of every paired file, no other"
    for rel, (size, digest) in files.items():
        data = (dest / rel).read_bytes()
        assert size == len(data) and digest == hashlib.sha256(data).hexdigest()
    for rel, fact in facts.items():
        reader = layout.image_facts if rel.endswith(".jpg") else layout.annotation_facts
        assert fact == reader(dest / rel), rel
    with pytest.raises(ReproError, match="ADE_val_00000002.png: label value 151 outside 0..150"):
        layout.check_pairs(pairs, facts, "fix", "here")
