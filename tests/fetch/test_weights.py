"""`repro download` against a Hugging Face-compatible endpoint on 127.0.0.1, and the resolve/status API."""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys

import pytest
from click.testing import CliRunner

from harness import registry
from harness.cli import cli
from harness.errors import ReproError
from harness.fetch import weights


def run(*args):
    return CliRunner().invoke(cli, ["download", *args])


def rep():
    return registry.get("tiny")


def lock():
    return json.loads((weights.weights_dir() / "lock.json").read_text())


def test_download_verifies_locks_and_resolves(tiny, server):
    assert weights.status(rep(), "weights") == "missing"
    result = run("tiny", "--pretrained")
    assert result.exit_code == 0, result.output
    assert "tiny weights: verified" in result.output and "tiny pretrained: verified" in result.output
    entry = lock()[weights.key(rep().weights)]
    assert entry["sha256"] == hashlib.sha256(tiny["seg"]).hexdigest() and entry["size"] == len(tiny["seg"])
    assert weights.status(rep(), "weights") == "verified" == weights.status(rep(), "pretrained")
    path = weights.resolve(rep(), "weights")
    assert path.read_bytes() == tiny["seg"]
    assert weights.sha256_of(rep(), "weights") == hashlib.sha256(tiny["seg"]).hexdigest()
    assert weights.sha256_of(rep(), "pretrained") == rep().pretrained.sha256
    assert str(path).startswith(str(weights.hf_cache()))
    gets = len(server.gets(tiny["seg_path"]))
    assert run("tiny").exit_code == 0                      # pinned commit in the cache: no transfer at all
    assert len(server.gets(tiny["seg_path"])) == gets == 1


def test_cut_transfer_resumes_without_refetching(tiny, server):
    server.plan(tiny["seg_path"], ("cut", 1 << 20))
    result = run("tiny")
    assert result.exit_code == 0, result.output
    first, second = server.gets(tiny["seg_path"])
    assert first.range is None and first.sent == 1 << 20
    assert second.range == f"bytes={1 << 20}-" and second.status == 206
    assert server.sent(tiny["seg_path"]) == len(tiny["seg"])
    assert weights.resolve(rep()).read_bytes() == tiny["seg"]


def test_stalled_server_is_resumed(tiny, server, monkeypatch):
    from huggingface_hub import constants
    monkeypatch.setattr(constants, "HF_HUB_DOWNLOAD_TIMEOUT", 1)
    server.plan(tiny["seg_path"], ("stall", 3))
    result = run("tiny")
    assert result.exit_code == 0, result.output
    gets = server.gets(tiny["seg_path"])
    assert gets[1].range == "bytes=65536-"
    assert weights.status(rep()) == "verified"


@pytest.mark.parametrize("which", ["pretrained", "weights"])
def test_corrupt_byte_is_quarantined(tiny, server, which):
    """pretrained: caught by the published sha256; weights: by the sha256 the endpoint declares (LFS etag)."""
    path = tiny["pt_path"] if which == "pretrained" else tiny["seg_path"]
    server.plan(path, ("corrupt", 12345))
    args = ["tiny", "--pretrained"] if which == "pretrained" else ["tiny"]
    result = run(*args)
    assert result.exit_code == 2
    filename = getattr(rep(), which).filename
    assert f"error: {filename} for tiny failed verification: sha256" in result.output
    assert "moved to " + str(weights.quarantine_dir()) in result.output
    assert weights.status(rep(), which) == "quarantined"
    with pytest.raises(ReproError, match="a bad copy was quarantined"):
        weights.resolve(rep(), which)
    assert weights.key(getattr(rep(), which)) not in (lock() if (weights.weights_dir() / "lock.json").exists()
                                                      else {})
    result = run(*args)                                     # the server is healthy again
    assert result.exit_code == 0, result.output
    assert weights.status(rep(), which) == "verified"


def test_lock_catches_a_changed_file(tiny, server):
    assert run("tiny").exit_code == 0
    locked = lock()[weights.key(rep().weights)]["sha256"]
    # the mirror now serves different bytes under the same name and revision, with a matching etag
    import shutil
    shutil.rmtree(weights.hf_cache())
    other = tiny["seg"][:-1] + b"\x00"
    server.add_hf("test-org/tiny", rep().weights.revision, rep().weights.filename, other)
    result = run("tiny")
    assert result.exit_code == 2
    assert f"expected {locked} (recorded in" in result.output
    assert weights.status(rep()) == "quarantined"


def test_tampered_cache_file_is_caught_by_resolve(tiny):
    assert run("tiny").exit_code == 0
    path = weights.resolve(rep())
    with open(path.resolve(), "r+b") as fh:
        fh.seek(100)
        fh.write(b"\x00\x01\x02")
    assert weights.status(rep()) == "unverified"
    with pytest.raises(ReproError, match="failed verification: sha256"):
        weights.resolve(rep())
    assert weights.status(rep()) == "quarantined"
    assert not path.exists()


@pytest.mark.parametrize("fault,expect", [(None, "has no file seg/tiny_seg.pth in test-org/tiny@0123456789ab (HTTP 404)"),
                                          (("status", 500), "failed: HTTP 500")])
def test_http_errors_are_reported(tiny, server, fault, expect):
    if fault is None:
        del server.files[tiny["seg_path"]]
    else:
        server.plan(tiny["seg_path"], fault)
    result = run("tiny")
    assert result.exit_code == 2
    assert expect in result.output and "--from-file PATH" in result.output
    assert weights.status(rep()) == "missing"
    blobs = weights.hf_cache() / "models--test-org--tiny" / "blobs"
    assert not blobs.exists() or not [p for p in blobs.iterdir() if not p.name.endswith(".incomplete")]


def test_offline_says_what_is_missing(tiny):
    env = dict(os.environ, HF_HUB_OFFLINE="1")
    out = subprocess.run([sys.executable, "-m", "harness", "download", "tiny"], env=env, capture_output=True,
                         text=True, timeout=60, check=False)
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1
    assert lines[0].startswith("error: seg/tiny_seg.pth (3.1 MB) for tiny is not in the cache and HF_HUB_OFFLINE=1 is set")
    assert "`repro download tiny --from-file PATH`" in lines[0]


def test_from_file(tiny, tmp_path):
    good, bad = tmp_path / "good.pt", tmp_path / "bad.pt"
    good.write_bytes(tiny["pt"])
    bad.write_bytes(tiny["pt"][:-1] + b"!")
    result = run("tiny", "--pretrained", "--from-file", str(bad))
    assert result.exit_code == 2 and f"{bad} is not pt/tiny_pt.pt of tiny: sha256" in result.output
    assert weights.status(rep(), "pretrained") == "missing"
    result = run("tiny", "--pretrained", "--from-file", str(good))
    assert result.exit_code == 0, result.output
    assert weights.status(rep(), "pretrained") == "verified"
    assert weights.resolve(rep(), "pretrained") == good
    # no published hash: the first registered file becomes the reference, a different one is refused
    seg = tmp_path / "seg.pth"
    seg.write_bytes(tiny["seg"])
    assert run("tiny", "--from-file", str(seg)).exit_code == 0
    seg2 = tmp_path / "seg2.pth"
    seg2.write_bytes(tiny["seg"][:-1] + b"!")
    result = run("tiny", "--from-file", str(seg2))
    assert result.exit_code == 2 and "(recorded in" in result.output
    wrong_size = tmp_path / "small.pth"
    wrong_size.write_bytes(b"x" * 1000)
    result = run("tiny", "--from-file", str(wrong_size))
    assert result.exit_code == 2 and "published about 3.1 MB" in result.output


def test_bulk_continues_past_a_failure(tiny, server):
    server.plan(tiny["pt_path"], ("status", 500))
    result = run("--all", "--pretrained")
    assert result.exit_code == 2
    assert "tiny weights: verified" in result.output
    assert "tiny pretrained: FAILED" in result.output
    assert "1 download(s) failed: tiny pretrained" in result.output
    assert weights.status(rep(), "weights") == "verified"
    assert weights.status(registry.get("noweights"), "weights") == "none"


def test_real_reproductions_without_cache(home):
    """The published reproductions' metadata resolves to clear 'missing' states, with no network."""
    from harness.registry import load_reproduction, reproductions_root
    for folder in sorted(reproductions_root().glob("eva02_[BL]*")):
        try:
            r = load_reproduction(folder)
        except ReproError:
            pytest.skip("reproduction configs not written yet")
        assert weights.status(r, "weights") == "missing"
        with pytest.raises(ReproError, match="are not in") as info:
            weights.resolve(r)
        assert f"`repro download {r.id}`" in info.value.fix and "--from-file PATH" in info.value.fix


def test_endpoint_flag(tiny, server, monkeypatch):
    monkeypatch.delenv("HF_ENDPOINT")
    result = run("tiny", "--endpoint", server.url + "/")
    assert result.exit_code == 0, result.output
    assert server.gets(tiny["seg_path"]) and weights.status(rep()) == "verified"
    assert lock()[weights.key(rep().weights)]["source"] == f"huggingface_hub from {server.url}"


def test_a_registered_file_that_fails_is_never_moved(tiny, tmp_path):
    """A file given with --from-file stays where the user keeps it, even when it later fails its check."""
    mine = tmp_path / "mine" / "seg.pth"
    mine.parent.mkdir()
    mine.write_bytes(tiny["seg"])
    assert run("tiny", "--from-file", str(mine)).exit_code == 0
    assert weights.resolve(rep()) == mine
    with open(mine, "r+b") as fh:                   # the user's copy changes (bit rot, an edit, another file)
        fh.seek(100)
        fh.write(b"\x00\x01\x02")
    changed = mine.read_bytes()
    with pytest.raises(ReproError, match="failed verification: sha256") as info:
        weights.resolve(rep())
    assert f"{mine} is left where it is" in info.value.message
    assert mine.read_bytes() == changed, "the user's file is neither moved nor altered"
    assert not weights.quarantine_dir().exists() or not list(weights.quarantine_dir().iterdir())
    assert weights.status(rep()) == "missing", "no longer registered"
    assert str(mine) not in json.dumps(lock()[weights.key(rep().weights)].get("checked", {}))
    # the same failure through `repro download --from-file` leaves it in place too
    result = run("tiny", "--from-file", str(mine))
    assert result.exit_code == 2 and mine.read_bytes() == changed


def _read_bytes_so_far() -> int:
    with open("/proc/self/io") as fh:
        return int(next(line for line in fh if line.startswith("rchar:")).split()[1])


def test_a_verified_checkpoint_is_not_hashed_again(tiny, server):
    """`repro download` hashes the file once; resolving it and the eval preflight reuse that digest (the lock
    file records size + mtime + inode), reading none of its bytes again."""
    import io
    import zipfile

    from harness.run import preflight

    buf = io.BytesIO()                              # a torch-format checkpoint: a zip with a data.pkl record
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("tiny_seg/data.pkl", b"\x80\x02}q\x00.")
        zf.writestr("tiny_seg/data/0", tiny["seg"][:3_100_000])
    checkpoint = buf.getvalue()
    server.add_hf("test-org/tiny", rep().weights.revision, rep().weights.filename, checkpoint)
    assert run("tiny").exit_code == 0
    digest = hashlib.sha256(checkpoint).hexdigest()
    before = _read_bytes_so_far()
    assert weights.resolve(rep()).read_bytes() == checkpoint
    reread = _read_bytes_so_far() - before - len(checkpoint)           # minus the read_bytes() above
    assert reread < len(checkpoint) // 10, f"resolve() read {reread} bytes of a verified file"
    before = _read_bytes_so_far()
    found = preflight.resolve_checkpoint(rep(), None, preflight.Notes())
    assert found["sha256"] == digest and found["path"] == str(weights.resolve(rep()).resolve())
    reread = _read_bytes_so_far() - before
    assert reread < len(checkpoint) // 10, f"the eval preflight read {reread} bytes of a verified checkpoint"
    # a changed file (new mtime) is hashed again, and caught
    path = weights.resolve(rep())
    with open(path.resolve(), "r+b") as fh:
        fh.seek(len(checkpoint) // 2)
        fh.write(b"\xff\xfe")
    with pytest.raises(ReproError, match="failed verification: sha256"):
        weights.resolve(rep())
