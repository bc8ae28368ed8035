"""How fast is `repro prepare ade20k --zip`'s extraction, against a plain `unzip` and against the extraction it
replaced, on tmpfs and on disk?

Builds an ADE20K-layout zip from the synthetic generator (deflated, like the official archive), then, in each
folder given (default: /dev/shm, a tmpfs, and the temp folder, on disk), times in this one run, alternating their
order:
  unzip     `unzip -q` of the archive into a fresh folder
  before    the extraction of --before (harness/fetch/unpack.py as it was at that commit, loaded from git into a
            module of its own): members read whole into memory, written, hashed, label facts taken
  after     today's extraction: members streamed in 1 MiB blocks, hashed and checked as written
  prepare   today's whole `repro prepare` (checksum judged first, names, sizes, extraction, labels, manifest)
and prints the best and median wall and CPU times (this process's and its children's: the steadier measure on a
shared machine) and the ratios; the checksum judgement (md5 and sha1, which now come before
extracting instead of beside it) is timed on its own. The best runs are the least disturbed by other load.
Goals: after no slower than before (ratio <= 1.05 on the best runs) and prepare at most 1.2x unzip.

    python benchmarks/prepare_speed.py [--train 2000] [--val 500] [--repeat 3] [--dirs /dev/shm,/tmp]
                                       [--before 67eee06]
"""
from __future__ import annotations

import argparse
import hashlib
import importlib.util
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

GOAL_PREPARE = 1.2          # prepare / unzip
GOAL_AFTER = 1.05           # after / before: no slower than the extraction it replaced, within noise
BEFORE = "67eee06"          # main before the streaming extraction (issue 24)


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


def load_before(rev: str, into: Path):
    """harness/fetch/unpack.py at `rev`, as the module harness.fetch.unpack_before (None if git cannot give it)."""
    try:
        text = subprocess.run(["git", "-C", str(REPO), "show", f"{rev}:harness/fetch/unpack.py"], check=True,
                              capture_output=True, text=True).stdout
    except (OSError, subprocess.CalledProcessError) as exc:
        print(f"(no 'before' extraction: git show {rev}:harness/fetch/unpack.py failed: {exc})")
        return None
    path = into / "unpack_before.py"
    path.write_text(text)
    name = "harness.fetch.unpack_before"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module          # the worker processes find its functions by this name
    spec.loader.exec_module(module)
    return module


def cpu_seconds() -> float:
    """User + system CPU of this process and of its waited-for children (pool workers, unzip)."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def timed(fn) -> tuple[float, float]:
    """(wall seconds, CPU seconds) of fn(): on a shared machine the CPU time is the steadier measure of work."""
    start, cpu = time.perf_counter(), cpu_seconds()
    fn()
    return time.perf_counter() - start, cpu_seconds() - cpu


def drop(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)


def bench_dir(base: Path, args, before) -> dict[str, list[float]]:
    from harness.fetch import dataroot, layout, unpack

    base.mkdir(parents=True, exist_ok=True)
    os.environ["REPRO_HOME"] = str(base / "home")      # nothing of the benchmark leaves its folder
    archive = base / f"ade20k-{args.train}-{args.val}.zip"
    if not archive.exists():
        print(f"building a {args.train} + {args.val}-image ADE20K-layout archive in {base} ...", flush=True)
        build_archive(archive, args.train, args.val)
    md5, sha1 = digests(archive)
    counts = {"training": args.train, "validation": args.val}
    members = dataroot.list_members(archive, "ADEChallengeData2016")
    pairs, _ = layout.check_names([rel for _, rel in members], counts, "fix", archive)
    out = base / "out"

    def extract(module):
        def run():
            out.mkdir(parents=True)
            module.unpack(archive, members, out, progress=False, pairs=pairs, dataset="ade20k")
        return run

    kinds = {
        "unzip": lambda: subprocess.run(["unzip", "-q", str(archive), "-d", str(out)], check=True),
        "after": extract(unpack),
        "prepare": lambda: dataroot.prepare(out / "ADEChallengeData2016", zip_path=archive, md5=md5, sha1=sha1,
                                            counts=counts, progress=False),
    }
    if before is not None:
        kinds["before"] = extract(before)
    times: dict[str, list[float]] = {kind: [] for kind in kinds}
    times["checksum"] = []
    cpu: dict[str, list[float]] = {kind: [] for kind in times}
    drop(out)
    kinds["unzip"]()                                   # warm-up: the archive in the page cache for all
    order = list(kinds)
    for i in range(args.repeat):
        for kind in order[i % len(order):] + order[:i % len(order)]:     # none always goes first
            drop(out)
            subprocess.run(["sync"], check=False)        # the previous run's writeback is not billed to this one
            wall, used = timed(kinds[kind])
            times[kind].append(wall)
            cpu[kind].append(used)
        wall, used = timed(lambda: unpack.judge(archive, md5, sha1))
        times["checksum"].append(wall)
        cpu["checksum"].append(used)
        print("  run " + str(i + 1) + ": " + ", ".join(f"{k} {v[-1]:.2f} s" for k, v in times.items()), flush=True)
    drop(out)
    size = archive.stat().st_size / 1e6
    print(f"{base}: archive {args.train} + {args.val} images, {len(members)} members, {size:.0f} MB; "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}")
    for kind, values in times.items():
        print(f"  {kind:9s} {min(values):7.2f} s best, {statistics.median(values):.2f} s median wall; "
              f"{min(cpu[kind]):.2f} s best, {statistics.median(cpu[kind]):.2f} s median CPU")
    return {**times, **{f"{kind} cpu": values for kind, values in cpu.items()}}


def ratio(times: dict[str, list[float]], a: str, b: str) -> tuple[float, float]:
    return (min(times[a]) / min(times[b]), statistics.median(times[a]) / statistics.median(times[b]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--train", type=int, default=2000)
    parser.add_argument("--val", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--dirs", default=f"/dev/shm,{tempfile.gettempdir()}",
                        help="comma-separated folders to build the archive in and extract to (tmpfs, disk)")
    parser.add_argument("--before", default=BEFORE, help="the commit whose extraction 'before' times")
    args, _ = parser.parse_known_args()        # `./noxw -s bench -- ...` hands every script the same arguments
    if not shutil.which("unzip"):
        sys.exit("prepare_speed: needs `unzip` on PATH to compare against")
    scratch = Path(tempfile.mkdtemp(prefix="repro-bench-before-"))
    try:
        before = load_before(args.before, scratch)
        results = {}
        for folder in [Path(d) for d in args.dirs.split(",") if d]:
            if not folder.is_dir():
                print(f"(skipping {folder}: no such folder)")
                continue
            results[folder] = bench_dir(folder / "repro-bench-prepare", args, before)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    print()
    for folder, times in results.items():
        fs = "tmpfs" if str(folder).startswith("/dev/shm") else "disk"
        print(f"{folder} ({fs}):")
        best, typical = ratio(times, "after", "unzip")
        print(f"  after / unzip     {best:5.2f}x best, {typical:.2f}x median")
        if "before" in times:
            best, typical = ratio(times, "before", "unzip")
            print(f"  before / unzip    {best:5.2f}x best, {typical:.2f}x median")
            best, typical = ratio(times, "after", "before")
            print(f"  after / before    {best:5.2f}x best, {typical:.2f}x median   "
                  f"(goal <= {GOAL_AFTER}x: {'met' if best <= GOAL_AFTER else 'NOT met'})")
            best, typical = ratio(times, "after cpu", "before cpu")
            print(f"  after / before    {best:5.2f}x best, {typical:.2f}x median in CPU time")
        best, typical = ratio(times, "prepare", "unzip")
        print(f"  prepare / unzip   {best:5.2f}x best, {typical:.2f}x median   "
              f"(goal <= {GOAL_PREPARE}x: {'met' if best <= GOAL_PREPARE else 'NOT met'}; the checksum first "
              f"costs {min(times['checksum']):.2f} s of it)")


if __name__ == "__main__":
    main()
