"""What a hostile zip cannot do to `repro prepare`: a zip bomb (a member declaring, or inflating to, far more than
the dataset's archive limits allow) is refused before anything is written or stopped at its declared size, with
memory bounded whatever the member's size; the archive's checksum is judged before extracting; the free disk
space is checked first; an image with an intact header and a broken body is found by --verify; and one lock per
data root serialises every home that prepares it."""
from __future__ import annotations

import dataclasses
import hashlib
import os
import select
import struct
import subprocess
import sys
import time
import tracemalloc
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from harness.cli import cli
from harness.errors import ReproError
from harness.fetch import dataroot, layout, ownership, synthetic
from harness.registry import datasets

from .test_ade20k import COUNTS, hashes, make_zip

MiB = 1 << 20
BOMB = "ADEChallengeData2016/bomb.bin"      # outside images/ and annotations/: extracted like objectInfo150.txt
ZEROS = bytes(MiB)


def prepare(*args):
    return CliRunner().invoke(cli, ["prepare", "ade20k", *args])


def add_zeros(path: Path, name: str, size: int, method: int = zipfile.ZIP_DEFLATED) -> None:
    """Append a member of `size` zero bytes, streamed: 256 MiB deflate to ~250 KB in well under a second."""
    with zipfile.ZipFile(path, "a", compression=method) as zf, zf.open(name, "w") as out:
        for _ in range(size // MiB):
            out.write(ZEROS)
        out.write(bytes(size % MiB))


def forge_size(path: Path, name: str, size: int) -> None:
    """Hand-edit the uncompressed size that both headers of member `name` declare (a forged header)."""
    with zipfile.ZipFile(path) as zf:
        info = zf.getinfo(name)
    data = bytearray(path.read_bytes())
    assert data[info.header_offset:info.header_offset + 4] == b"PK\x03\x04"
    struct.pack_into("<I", data, info.header_offset + 22, size)          # local header: uncompressed size
    end = data.rfind(b"PK\x05\x06")
    entries, cd_offset = struct.unpack_from("<H", data, end + 10)[0], struct.unpack_from("<I", data, end + 16)[0]
    pos = cd_offset
    for _ in range(entries):                                            # central directory: the entry named so
        assert data[pos:pos + 4] == b"PK\x01\x02"
        name_len, extra_len, comment_len = struct.unpack_from("<HHH", data, pos + 28)
        if data[pos + 46:pos + 46 + name_len].decode() == name:
            struct.pack_into("<I", data, pos + 24, size)
        pos += 46 + name_len + extra_len + comment_len
    path.write_bytes(bytes(data))


def digests(path: Path) -> dict:
    data = path.read_bytes()
    return {"md5": hashlib.md5(data).hexdigest(), "sha1": hashlib.sha1(data).hexdigest()}


def written() -> int:
    """Bytes this process has passed to write() so far (/proc/self/io wchar)."""
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("wchar:"):
            return int(line.split()[1])
    raise AssertionError("no wchar in /proc/self/io")


class Measured:
    """Peak Python memory (tracemalloc: every bytes object zipfile and zlib hand back) and bytes written."""

    def __enter__(self):
        tracemalloc.start()
        self.wrote = written()
        return self

    def __exit__(self, *exc):
        self.peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        self.wrote = written() - self.wrote


needs_proc_io = pytest.mark.skipif(not Path("/proc/self/io").exists(), reason="needs Linux /proc/self/io")


def bomb_zip(tmp_path: Path, size: int, forged: int | None = None, name: str = BOMB) -> dict:
    z = make_zip(tmp_path / "bomb.zip")
    add_zeros(z["path"], name, size)
    if forged is not None:
        forge_size(z["path"], name, forged)
    return {**z, **digests(z["path"]), "size": z["path"].stat().st_size}


@needs_proc_io
def test_a_bomb_member_is_refused_before_anything_is_written(home, tmp_path):
    start = time.monotonic()
    bomb = bomb_zip(tmp_path, 256 * MiB)                  # a real bomb: 256 MiB of zeros
    assert bomb["size"] < 2 * MiB and time.monotonic() - start < 10
    root = tmp_path / "ADEChallengeData2016"
    with Measured() as m:
        result = prepare("--zip", str(bomb["path"]), "--data-root", str(root), *hashes(bomb))
    assert result.exit_code == 2
    line = result.output.strip()
    assert "\n" not in line
    assert f"member {BOMB} declares 256.0 MiB, more than the 64.0 MiB" in line and "max_member_bytes" in line
    assert "datasets/ade20k/dataset.toml" in line
    assert m.peak < 16 * MiB, f"peak Python memory {m.peak / MiB:.0f} MiB"
    assert m.wrote < MiB, f"{m.wrote} bytes written"
    assert dataroot.status(root) == "missing" and not list(tmp_path.glob(".ADEChallengeData2016.*"))


def test_a_member_compressed_beyond_the_ratio_is_refused(home, tmp_path):
    bomb = bomb_zip(tmp_path, 32 * MiB)                   # within max_member_bytes, ~1000:1
    root = tmp_path / "ADEChallengeData2016"
    result = prepare("--zip", str(bomb["path"]), "--data-root", str(root), *hashes(bomb))
    assert result.exit_code == 2
    assert f"member {BOMB} declares 32.0 MiB from" in result.output
    assert "beyond the 100:1" in result.output and "max_compression_ratio" in result.output
    assert dataroot.status(root) == "missing"


@needs_proc_io
def test_a_member_inflating_past_its_forged_header_is_stopped_there(home, tmp_path):
    """The header says 10,000 bytes; the deflate stream holds 256 MiB of zeros. Extraction stops at byte 10,001."""
    bomb = bomb_zip(tmp_path, 256 * MiB, forged=10_000)
    with zipfile.ZipFile(bomb["path"]) as zf:
        assert zf.getinfo(BOMB).file_size == 10_000
    root = tmp_path / "ADEChallengeData2016"
    with Measured() as m:
        result = prepare("--zip", str(bomb["path"]), "--data-root", str(root), *hashes(bomb))
    assert result.exit_code == 2
    assert f"member {BOMB} inflates beyond the 9.8 KiB its header declares" in result.output
    assert m.peak < 16 * MiB, f"peak Python memory {m.peak / MiB:.0f} MiB"
    assert m.wrote < 4 * MiB, f"{m.wrote} bytes written"
    assert dataroot.status(root) == "missing" and not list(tmp_path.glob(".ADEChallengeData2016.*"))


def roomy(**limits) -> datasets.Dataset:
    """ADE20K with other archive limits (as a dataset.toml could set them)."""
    ade = datasets.get("ade20k")
    return dataclasses.replace(ade, archive=dataclasses.replace(ade.archive, **limits))


@needs_proc_io
def test_a_big_member_within_the_limits_is_streamed_in_bounded_memory(home, tmp_path):
    bomb = bomb_zip(tmp_path, 96 * MiB)
    ds = roomy(max_member_bytes=1 << 30, max_compression_ratio=5000)
    root = tmp_path / "ADEChallengeData2016"
    with Measured() as m:
        manifest = dataroot.prepare(root, bomb["path"], md5=bomb["md5"], sha1=bomb["sha1"],
                                    counts={"training": 6, "validation": 3}, progress=False, dataset=ds)
    assert m.peak < 16 * MiB, f"peak Python memory {m.peak / MiB:.0f} MiB"
    assert 96 * MiB <= m.wrote < 100 * MiB
    zeros = hashlib.sha256()
    for _ in range(96):
        zeros.update(ZEROS)
    assert manifest["files"]["bomb.bin"] == [96 * MiB, zeros.hexdigest()]
    assert (root / "bomb.bin").stat().st_size == 96 * MiB
    layout.check_manifest(root, deep=False)


def test_a_member_shorter_than_its_header_is_refused(home, tmp_path):
    z = make_zip(tmp_path / "short.zip")
    with zipfile.ZipFile(z["path"], "a") as zf:
        zf.writestr(BOMB, b"x" * 100)
    forge_size(z["path"], BOMB, 5000)
    bad = {**z, **digests(z["path"])}
    result = prepare("--zip", str(bad["path"]), "--data-root", str(tmp_path / "ADEChallengeData2016"), *hashes(bad))
    assert result.exit_code == 2
    assert f"member {BOMB} holds 100 bytes, its header declares 5000" in result.output


def test_the_declared_total_must_fit_the_disk(home, tmp_path):
    """300 members forged to declare 3.75 GiB each: 1.1 TiB, more than this disk holds. Refused before writing."""
    z = make_zip(tmp_path / "huge.zip")
    names = [f"ADEChallengeData2016/huge/{i:03d}.bin" for i in range(300)]
    with zipfile.ZipFile(z["path"], "a") as zf:
        for name in names:
            zf.writestr(name, b"x")
    data = bytearray(z["path"].read_bytes())
    end = data.rfind(b"PK\x05\x06")
    entries, pos = struct.unpack_from("<H", data, end + 10)[0], struct.unpack_from("<I", data, end + 16)[0]
    with zipfile.ZipFile(z["path"]) as zf:
        offsets = [zf.getinfo(n).header_offset for n in names]
    for offset in offsets:
        struct.pack_into("<I", data, offset + 22, 0xF000_0000)
    for _ in range(entries):
        name_len, extra_len, comment_len = struct.unpack_from("<HHH", data, pos + 28)
        if data[pos + 46:pos + 46 + name_len].decode() in names:
            struct.pack_into("<I", data, pos + 24, 0xF000_0000)
        pos += 46 + name_len + extra_len + comment_len
    z["path"].write_bytes(bytes(data))
    assert os.statvfs(tmp_path).f_bavail * os.statvfs(tmp_path).f_frsize < 300 * 0xF000_0000
    ds = roomy(max_member_bytes=1 << 40, max_compression_ratio=1e12, max_total_bytes=1 << 50)
    root = tmp_path / "ADEChallengeData2016"
    with pytest.raises(ReproError) as err:
        dataroot.prepare(root, z["path"], **digests(z["path"]), counts={"training": 6, "validation": 3},
                         progress=False, dataset=ds)
    assert f"{z['path']} unpacks to 1.1 TiB but {tmp_path} has" in str(err.value)
    assert "nothing was extracted" in str(err.value)
    assert dataroot.status(root) == "missing" and not list(tmp_path.glob(".ADEChallengeData2016.*"))


def test_the_limits_are_the_datasets(home, tmp_path):
    ade = datasets.get("ade20k")
    assert (ade.limits.max_member_bytes, ade.limits.max_compression_ratio, ade.limits.max_total_bytes) == \
        (64 * MiB, 100, 4_000_000_000)
    assert ade.limits.max_total_bytes > 4 * ade.archive.size, "headroom over the published archive size"


@needs_proc_io
def test_the_checksum_is_judged_before_extracting(home, tmp_path):
    """A zip that is not the published one (the default checksums) is refused before any member is written."""
    z = make_zip(tmp_path / "ADEChallengeData2016.zip")
    with zipfile.ZipFile(z["path"], "a") as zf:
        zf.writestr("ADEChallengeData2016/filler.bin", os.urandom(24 * MiB))
    root = tmp_path / "ADEChallengeData2016"
    with Measured() as m:
        result = prepare("--zip", str(z["path"]), "--data-root", str(root), "--counts", COUNTS)
    assert m.wrote < MiB, f"{m.wrote} bytes written before the checksum was judged"
    assert result.exit_code == 2
    assert f"{z['path']} has md5" in result.output and f"expected {datasets.get('ade20k').archive.md5}" in \
        result.output and "nothing was extracted" in result.output
    # a bomb with a wrong checksum is refused as that, before its size is even looked at
    (tmp_path / "b").mkdir()
    bomb = bomb_zip(tmp_path / "b", 256 * MiB)
    result = prepare("--zip", str(bomb["path"]), "--data-root", str(root), "--md5", "0" * 32, "--counts", COUNTS)
    assert result.exit_code == 2 and f"{bomb['path']} has md5 {bomb['md5']}, expected {'0' * 32}" in result.output
    assert dataroot.status(root) == "missing"


def _truncated_body(root: Path) -> None:
    p = root / "images/training/ADE_train_00000003.jpg"
    data = p.read_bytes()
    p.write_bytes(data[: len(data) * 2 // 3])                 # header and frame intact, the scan cut short


def test_verify_decodes_every_image(home, tmp_path):
    z = make_zip(tmp_path / "ADEChallengeData2016.zip", _truncated_body)
    root = tmp_path / "ADEChallengeData2016"
    result = prepare("--zip", str(z["path"]), "--data-root", str(root), *hashes(z))
    assert result.exit_code == 0, "the default check reads headers only: " + result.output
    assert dataroot.status(root) == "ready"
    result = prepare("--verify", "--data-root", str(root))
    assert result.exit_code == 2
    line = result.output.strip()
    assert "\n" not in line
    assert "images/training/ADE_train_00000003.jpg: unreadable image (image file is truncated" in line
    assert "get an intact archive" in line
    # an intact dataset passes, every image decoded
    good = make_zip(tmp_path / "good.zip")
    other = tmp_path / "good" / "ADEChallengeData2016"
    assert prepare("--zip", str(good["path"]), "--data-root", str(other), *hashes(good)).exit_code == 0
    result = prepare("--verify", "--data-root", str(other))
    assert result.exit_code == 0 and "every image decoded" in result.output


def test_verify_decodes_over_worker_processes(home, tmp_path):
    root = synthetic.generate(tmp_path / "ADEChallengeData2016", 150, 10, seed=4)       # 160 pairs: 3 tasks
    _truncated_body(root)
    pairs, _ = layout.check_names(layout.list_files(root), {"training": 150, "validation": 10}, "fix", root)
    facts = layout.pair_facts(root, pairs, 0, decode=True, progress=False, processes=3)
    assert facts["images/training/ADE_train_00000003.jpg"][0] == "unreadable"
    assert sum(f[0] == "unreadable" for f in facts.values()) == 1
    assert layout.pair_facts(root, pairs, 0, progress=False, processes=3) == \
        {**facts, "images/training/ADE_train_00000003.jpg": layout.image_facts(
            root / "images/training/ADE_train_00000003.jpg")}


def _env(home: Path) -> dict:
    return {**os.environ, "REPRO_HOME": str(home), "PYTHONUNBUFFERED": "1"}


def _line(stream, timeout: float) -> str:
    ready, _, _ = select.select([stream], [], [], timeout)
    return stream.readline() if ready else ""


def test_the_lock_lives_with_the_data_root(tmp_path):
    """Two users (two REPRO_HOMEs) preparing one shared data root: the second waits for the first."""
    z = make_zip(tmp_path / "ADEChallengeData2016.zip")
    root = tmp_path / "shared" / "ADEChallengeData2016"
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys\nfrom pathlib import Path\nfrom harness.fetch import ownership\n"
                               f"with ownership.root_lock(Path({str(root)!r})):\n"
                               "    print('held', flush=True)\n    sys.stdin.readline()\n"],
        env=_env(tmp_path / "home-a"), stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    other = None
    try:
        assert _line(holder.stdout, 60).strip() == "held"
        other = subprocess.Popen([sys.executable, "-m", "harness", "prepare", "ade20k", "--zip", str(z["path"]),
                                  "--data-root", str(root), "--force", *hashes(z)],
                                 env=_env(tmp_path / "home-b"), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                 text=True)
        waiting = _line(other.stderr, 60)
        assert f"waiting for another `repro prepare` into {root} to finish" in waiting, waiting
        time.sleep(1)
        assert other.poll() is None and not root.exists(), "the second home did not wait"
        holder.stdin.write("\n")
        holder.stdin.flush()
        assert holder.wait(60) == 0
        out, err = other.communicate(timeout=120)
        assert other.returncode == 0, err
        assert "ADE20K ready at" in out
    finally:
        for proc in (holder, other):
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait()
    assert dataroot.status(root) == "ready"
    assert not (tmp_path / "home-a" / "locks").exists() and not (tmp_path / "home-b" / "locks").exists()
    assert ownership.lock_path(root) == tmp_path / "shared" / "ADEChallengeData2016.lock"
    assert (ownership.lock_path(root).stat().st_mode & 0o777) == 0o666, "another user can take it too"


def test_a_lock_that_cannot_be_taken_is_one_line(home, tmp_path):
    z = make_zip(tmp_path / "ADEChallengeData2016.zip")
    (tmp_path / "afile").write_text("not a folder")
    root = tmp_path / "afile" / "ADEChallengeData2016"
    result = prepare("--zip", str(z["path"]), "--data-root", str(root), *hashes(z))
    assert result.exit_code == 2
    assert f"cannot take the prepare lock {root}.lock" in result.output and "Traceback" not in result.output
