"""`repro --help` start-up against a bare `python -c pass`: the CLI must stay within 3x the interpreter's own start.

    python benchmarks/cli_startup.py [--runs 15]

Each command runs `--runs` times (after one warm-up run each); prints both medians and the ratio, and exits 1
when the ratio exceeds 3. Both run as a user's Python does, with its bytecode cache (`__pycache__/`, written by the
warm-up run): where PYTHONDONTWRITEBYTECODE is set (some sandboxes set it) it is left out of the commands'
environment, else every run would time the compiling of the CLI's sources (about 11 ms on a 2-core machine) and
none of the interpreter's own, whose standard library comes compiled; the output says so. `repro --help` must not import torch, mmcv or mmseg (harness/cli imports them inside
the commands that need them).
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

LIMIT = 3.0


ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def _median_s(argv: list[str], runs: int) -> float:
    subprocess.run(argv, capture_output=True, check=True, env=ENV)   # warm the file and bytecode caches
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(argv, capture_output=True, check=True, env=ENV)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args(argv)
    bare = _median_s([sys.executable, "-c", "pass"], args.runs)
    cli = _median_s([sys.executable, "-m", "harness", "--help"], args.runs)
    heavy = subprocess.run([sys.executable, "-c", "import sys, harness.cli; "
                            "print(' '.join(m for m in ('torch', 'mmcv', 'mmseg') if m in sys.modules))"],
                           capture_output=True, text=True, check=True).stdout.strip()
    ratio = cli / bare
    if "PYTHONDONTWRITEBYTECODE" in os.environ:
        print("PYTHONDONTWRITEBYTECODE is set here; both commands ran without it, with the bytecode cache")
    print(f"python -c pass: median {bare * 1000:.1f} ms over {args.runs} runs")
    print(f"repro --help:   median {cli * 1000:.1f} ms over {args.runs} runs")
    print(f"ratio: {ratio:.2f}x (limit {LIMIT:.0f}x); heavy modules imported by the CLI: {heavy or 'none'}")
    return 0 if ratio <= LIMIT and not heavy else 1


if __name__ == "__main__":
    sys.exit(main())
