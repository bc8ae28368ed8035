"""How fast does `repro --help` answer, against a bare interpreter start and against importing torch?

Prints the median wall time of each over a few runs and the ratios, measured in this one run.
Goal: `repro --help` costs a small multiple of a bare `python -c pass`, far below an engine import.
"""
from __future__ import annotations

import statistics
import subprocess
import sys
import time


def median_seconds(argv: list[str], runs: int = 5) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(argv, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    bare = median_seconds([sys.executable, "-c", "pass"])
    help_ = median_seconds([sys.executable, "-m", "harness", "--help"])
    torch = median_seconds([sys.executable, "-c", "import torch"], runs=3)
    print(f"python -c pass      {bare * 1000:8.1f} ms")
    print(f"repro --help        {help_ * 1000:8.1f} ms   ratio to bare python {help_ / bare:5.1f}x")
    print(f"python -c 'import torch' {torch * 1000:8.1f} ms   repro --help is {torch / help_:5.1f}x faster")


if __name__ == "__main__":
    main()
