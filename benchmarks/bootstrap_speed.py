"""How long do the bootstrap intervals take for a full ADE20K val ledger (2,000 images x 150 classes) on one core?

Sets OMP/OPENBLAS/MKL_NUM_THREADS=1 before numpy loads, builds a synthetic ledger of that shape (each image holding
a few classes, as ADE20K's do), and prints the median wall time of `bootstrap` (aAcc/mIoU/mAcc, 1,000 and 2,000
resamples) and of `paired_bootstrap` (two runs, 1,000 resamples) over a few runs. Goal: under 5 s for 1,000
resamples on one CPU core.

    python benchmarks/bootstrap_speed.py [--images 2000] [--classes 150] [--runs 3]
"""
from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

from harness.ledger.stats import bootstrap, paired_bootstrap  # noqa: E402
from harness.ledger.store import Ledger  # noqa: E402

GOAL_S = 5.0


def synthetic_ledger(images: int, classes: int, seed: int = 0, shift: float = 0.0) -> Ledger:
    """~8 classes per 512x512 image, 80 % of each class's pixels predicted right (+shift), some false positives."""
    rng = np.random.default_rng(seed)
    present = rng.random((images, classes)) < 8 / classes
    label = present * rng.integers(100, 40_000, size=(images, classes))
    inter = rng.binomial(label, np.clip(0.8 + shift, 0, 1))
    false_pos = rng.poisson(present * 2_000 + 50 * (rng.random((images, classes)) < 0.02))
    pred = inter + false_pos
    return Ledger(names=np.array([f"img_{i:05d}.jpg" for i in range(images)]), index=np.arange(images),
                  pixels=np.full(images, 512 * 512), intersect=inter, union=pred + label - inter, pred=pred,
                  label=label)


def median_seconds(fn, runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--classes", type=int, default=150)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    base = synthetic_ledger(args.images, args.classes)
    other = synthetic_ledger(args.images, args.classes, seed=1, shift=0.01)
    print(f"ledger {args.images} images x {args.classes} classes, 1 thread (numpy {np.__version__})")
    for resamples in (1000, 2000):
        seconds = median_seconds(lambda: bootstrap(base, resamples=resamples), args.runs)
        print(f"bootstrap        {resamples:5d} resamples  {seconds:6.2f} s   {seconds / GOAL_S:5.2f} of the {GOAL_S:.0f} s goal")
    seconds = median_seconds(lambda: paired_bootstrap(base, other, resamples=1000), args.runs)
    print(f"paired bootstrap  1000 resamples  {seconds:6.2f} s   {seconds / GOAL_S:5.2f} of the {GOAL_S:.0f} s goal")
    boot = bootstrap(base)
    print("intervals: " + ", ".join(f"{k} {v.value:.2f} [{v.lo:.2f}, {v.hi:.2f}]" for k, v in boot.metrics.items()))


if __name__ == "__main__":
    main()
