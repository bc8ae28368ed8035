"""Progress of an engine loop as plain lines on stdout: `[eval] 17/50 images, 3.2 img/s, ETA 0:00:10`.

One line at most every `every_s` seconds and one at the end, flushed. The repro command reading the process
(harness/console.py) draws them as a bar; console.log and Slurm output files keep them as readable lines, where
mmcv's ProgressBar would leave one line of carriage returns.
"""
from __future__ import annotations

import sys
import time
from datetime import timedelta


class ProgressLines:
    def __init__(self, phase: str, total: int, unit: str = "images", every_s: float = 2.0, file=None):
        self.phase, self.total, self.unit, self.every_s = phase, total, unit, every_s
        self.file = file or sys.stdout
        self.n = 0
        self.start = time.perf_counter()
        self.last = None

    def update(self, n: int = 1) -> None:
        self.n += n
        now = time.perf_counter()
        if self.n >= self.total or self.last is None or now - self.last >= self.every_s:
            self.last = now
            self.file.write(self.line(now - self.start) + "\n")
            self.file.flush()

    def line(self, elapsed: float) -> str:
        rate = self.n / elapsed if elapsed > 0 else 0.0
        eta = (self.total - self.n) / rate if rate > 0 else 0.0
        unit = {"images": "img", "iters": "it"}.get(self.unit, self.unit)
        return (f"[{self.phase}] {self.n}/{self.total} {self.unit}, {rate:.2f} {unit}/s, "
                f"ETA {timedelta(seconds=round(eta))}")
