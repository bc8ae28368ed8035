"""How long does `repro prepare ade20k --zip` take, against a plain `unzip` of the same archive?

Builds an ADE20K-layout zip from the synthetic generator (deflated, like the official archive), then times, in
this one run, `unzip -q` into a fresh folder and the harness's prepare (zip md5/sha1, extraction, layout and label
check, per-file sha256 manifest) into another, alternating their order a few times; prints the best and median
times and their ratios (the best runs are the least disturbed by other load).
Goal: prepare at most 1.2x unzip. The archive is cached under the temp folder between runs of the script.

    python benchmarks/prepare_speed.py [--train 2000] [--val 500] [--repeat 5] [--dir /dev/shm]
"""
from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

GOAL = 1.2


def build_archive(path: Path, train: int, val: int) -> None:
    from harness.fetch import layout, synthetic

    work = path.parent / f"{path.stem}-src"
    root = synthetic.generate(work / "ADEChallengeData2016", train, val, seed=0, force=True)
    (root / layout.MANIFEST).unlink()
    (root / "objectInfo150.txt").write_text("Idx\tRatio\tTrain\tVal\tName\n")
    tmp = path.with_name(path.name + ".tmp")
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
        for f in sorted(root.rglob("*")):
            zf.write(f, f"ADEChallengeData2016/{f.relative_to(root).as_posix()}")
    os.replace(tmp, path)
    shutil.rmtree(work)


def digests(path: Path) -> tuple[str, str]:
    md5, sha1 = hashlib.md5(), hashlib.sha1()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            md5.update(chunk)
            sha1.update(chunk)
    return md5.hexdigest(), sha1.hexdigest()


def time_unzip(archive: Path, dest: Path) -> float:
    start = time.perf_counter()
    subprocess.run(["unzip", "-q", str(archive), "-d", str(dest)], check=True)
    return time.perf_counter() - start


def time_prepare(archive: Path, root: Path, md5: str, sha1: str, counts: dict[str, int]) -> float:
    from harness.fetch import dataroot

    start = time.perf_counter()
    dataroot.prepare(root, zip_path=archive, md5=md5, sha1=sha1, counts=counts, progress=False)
    return time.perf_counter() - start


def drop(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--train", type=int, default=2000)
    parser.add_argument("--val", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--dir", type=Path, default=Path(tempfile.gettempdir()),
                        help="where the archive is built and both extract to (e.g. /dev/shm to leave the disk out)")
    args, _ = parser.parse_known_args()        # `./noxw -s bench -- ...` hands every script the same arguments
    if not shutil.which("unzip"):
        sys.exit("prepare_speed: needs `unzip` on PATH to compare against")

    base = args.dir / "repro-bench-prepare"
    base.mkdir(parents=True, exist_ok=True)
    out = base / "out"
    os.environ["REPRO_HOME"] = str(base / "home")      # lock files of the benchmark stay in its own folder
    archive = base / f"ade20k-{args.train}-{args.val}.zip"
    if not archive.exists():
        print(f"building a {args.train} + {args.val}-image ADE20K-layout archive ...", flush=True)
        build_archive(archive, args.train, args.val)
    md5, sha1 = digests(archive)
    counts = {"training": args.train, "validation": args.val}
    unzip_times, prepare_times = [], []
    time_unzip(archive, out)                           # warm-up: the archive in the page cache for both
    for i in range(args.repeat):
        order = ("unzip", "prepare") if i % 2 == 0 else ("prepare", "unzip")      # neither always goes first
        for what in order:
            drop(out)
            subprocess.run(["sync"], check=False)        # the previous run's writeback is not billed to this one
            if what == "unzip":
                unzip_times.append(time_unzip(archive, out))
            else:
                prepare_times.append(time_prepare(archive, out / "ADEChallengeData2016", md5, sha1, counts))
        print(f"  run {i + 1}: unzip {unzip_times[-1]:.2f} s, prepare {prepare_times[-1]:.2f} s", flush=True)
    drop(out)
    size = archive.stat().st_size / 1e6
    print(f"archive            {args.train} + {args.val} images, {size:.0f} MB, in {args.dir}, {os.cpu_count()} CPUs, "
          f"load average {os.getloadavg()[0]:.1f}")
    # the minimum is the run least disturbed by other load on the machine; the median is shown beside it
    best = min(prepare_times) / min(unzip_times)
    typical = statistics.median(prepare_times) / statistics.median(unzip_times)
    print(f"unzip -q           {min(unzip_times):8.2f} s best, {statistics.median(unzip_times):.2f} s median")
    print(f"repro prepare      {min(prepare_times):8.2f} s best, {statistics.median(prepare_times):.2f} s median")
    print(f"ratio to unzip     {best:8.2f}x best, {typical:.2f}x median   "
          f"(goal <= {GOAL}x: {'met' if best <= GOAL else 'NOT met'})")


if __name__ == "__main__":
    main()
