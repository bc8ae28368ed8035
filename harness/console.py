"""What a person sees while repro works: step headers, one progress bar per long phase, a few result lines.

On a terminal the bars are tqdm's, redrawn in place. When stdout is not a terminal (a pipe, a CI log, a Slurm
output file) a bar prints a plain line instead: when it has advanced another tenth and REPRO_PROGRESS_INTERVAL
seconds (default 30) have passed since its last line, at least every ten intervals, and when it ends. So a log holds
about a dozen lines per phase however slow the machine, and nothing glued together with carriage returns.

The engine processes write everything (mmseg's text log, per-class tables, warnings, tracebacks) to the run
directory's console.log, besides mmseg's own train.log / eval.log / *.log.json. `EngineOutput` reads the same
stream and shows only its progress: our `[eval] N/M images, ...` lines, mmcv's `Iter [N/M] ... loss: ...` log lines
and mmcv's `[>>>  ] N/M` validation bars become bars. `--verbose` (or REPRO_VERBOSE=1) streams it all instead.
"""
from __future__ import annotations

import os
import re
import sys
import time
from collections.abc import Iterable, Iterator

from harness.errors import printable as printable  # re-exported: console.printable is the name callers use

DEFAULT_INTERVAL_S = 30.0
PLAIN_FORMAT = "{desc}: {n_fmt}/{total_fmt} {unit} ({percentage:.0f}%) [{elapsed}<{remaining}, {rate_fmt}{postfix}]"

_verbose: bool | None = None     # None: REPRO_VERBOSE decides


def set_verbose(value: bool) -> None:
    """`--verbose`: stream the engine's whole output to the terminal (it is in console.log either way). Without the
    flag, REPRO_VERBOSE still decides."""
    global _verbose
    _verbose = True if value else None


def verbose() -> bool:
    if _verbose is not None:
        return _verbose
    return os.environ.get("REPRO_VERBOSE", "").strip().lower() in ("1", "true", "yes")


def is_terminal(stream=None) -> bool:
    stream = stream or sys.stdout
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def interval_s() -> float:
    try:
        return max(0.0, float(os.environ.get("REPRO_PROGRESS_INTERVAL", DEFAULT_INTERVAL_S)))
    except ValueError:
        return DEFAULT_INTERVAL_S


class PlainBar:
    """A progress bar for output that is not a terminal: whole lines in tqdm's words (tqdm.format_meter), one per
    tenth of the way (at most one per `interval` seconds), one after ten quiet intervals, and one at the end
    (unless leave=False: a sub-phase that only reports if slow)."""

    def __init__(self, total: float | None, desc: str, unit: str = "it", unit_scale: bool = False,
                 initial: float = 0, leave: bool = True, file=None, interval: float | None = None,
                 unit_divisor: int = 1000):
        self.total, self.desc, self.unit, self.unit_scale = total, desc, unit, unit_scale
        self.n = self.initial = initial
        self.leave, self.file = leave, file or sys.stdout
        self.interval = interval_s() if interval is None else interval
        self.unit_divisor = unit_divisor
        self.postfix = ""
        self.start = self.last_line = time.monotonic()
        self.last_tenth = self._tenth()
        self.closed = False

    def _tenth(self) -> int:
        return int(10 * self.n / self.total) if self.total else 0

    def __enter__(self) -> PlainBar:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def text(self) -> str:
        from tqdm import tqdm
        total = self.total if self.total and self.total >= self.n else None
        fmt = PLAIN_FORMAT if total else "{desc}: {n_fmt} {unit} [{elapsed}, {rate_fmt}{postfix}]"
        return tqdm.format_meter(self.n, total, time.monotonic() - self.start, prefix=self.desc, unit=self.unit,
                                 unit_scale=self.unit_scale, unit_divisor=self.unit_divisor, bar_format=fmt,
                                 postfix=self.postfix or None, initial=self.initial)

    def _line(self) -> None:
        self.file.write(f"  {self.text()}\n")
        self.file.flush()
        self.last_line, self.last_tenth = time.monotonic(), self._tenth()

    def update(self, n: float = 1) -> None:
        self.n += n
        if self.total and self.n >= self.total:
            return                                       # the end has its own line (close)
        quiet = time.monotonic() - self.last_line
        if (quiet >= self.interval and (self._tenth() > self.last_tenth or not self.total)) \
                or quiet >= 10 * self.interval:
            self._line()

    def set_postfix_str(self, text: str = "", refresh: bool = True) -> None:
        self.postfix = text

    def refresh(self) -> None:
        pass

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            if self.leave:
                self._line()


def bar(total: float | None, desc: str, unit: str = "it", unit_scale: bool = False, initial: float = 0,
        leave: bool = True, unit_divisor: int = 1000, file=None):
    """One progress bar: tqdm on a terminal, a PlainBar elsewhere. Use update(n), set_postfix_str(), close()."""
    file = file or sys.stdout
    if not is_terminal(file):
        return PlainBar(total, desc, unit, unit_scale, initial, leave, file, unit_divisor=unit_divisor)
    from tqdm import tqdm
    return tqdm(total=total, desc=f"  {desc}", unit=unit, unit_scale=unit_scale, initial=initial, leave=leave,
                unit_divisor=unit_divisor, file=file, dynamic_ncols=True)


def track(items: Iterable, desc: str, unit: str = "it", total: int | None = None, leave: bool = True) -> Iterator:
    """Iterate ITEMS with a bar (tqdm's `tqdm(iterable)`, with the plain fallback)."""
    if total is None and hasattr(items, "__len__"):
        total = len(items)
    progress = bar(total, desc, unit=unit, leave=leave)
    try:
        for item in items:
            yield item
            progress.update(1)
    finally:
        progress.close()


# ------------------------------------------------------------------------------------------------ engine output

# our engine's progress lines (harness/engine/progress.py): "[eval] 17/50 images, 3.2 img/s, ETA 0:00:10"
OUR_PROGRESS = re.compile(r"^\[(?P<phase>eval|train)\] (?P<n>\d+)/(?P<total>\d+) (?P<unit>\w+)")
# mmcv's TextLoggerHook: "... INFO - Iter [50/800]\tlr: 6.000e-05, eta: 0:02:10, time: ..., loss: 1.2345"
MMCV_ITER = re.compile(r"\bIter \[(?P<n>\d+)/(?P<total>\d+)\]\s+lr: (?P<lr>[-+.\deE]+)")
MMCV_LOSS = re.compile(r"(?:^|, )loss: (?P<loss>[-+.\deE]+|nan|inf)")
MMCV_VAL = re.compile(r"\bIter\(val\) \[\d+\]\s+aAcc: [-.\d]+, mIoU: (?P<miou>[-.\d]+|nan)")
# mmcv's ProgressBar, used by mmseg's validation during training: "[>>>>   ] 17/50, 3.2 task/s, elapsed: 5s, ETA: 9s"
MMCV_BAR = re.compile(r"^\[[> ]*\] (?P<n>\d+)/(?P<total>\d+), ")
PASS_THROUGH = "[repro] "        # an engine line meant for the person at the terminal


class EngineOutput:
    """An engine process's output, as read from its pipe, turned into bars (or streamed whole when verbose)."""

    def __init__(self, stream_all: bool | None = None, out=None):
        self.stream_all = verbose() if stream_all is None else stream_all
        self.out = out or sys.stdout
        self.pending = b""
        self.bars: dict[str, object] = {}
        self.val_miou: str | None = None

    def feed(self, chunk: bytes) -> None:
        if self.stream_all:
            buffer = getattr(self.out, "buffer", None)
            if buffer is not None:
                buffer.write(chunk)
            else:
                self.out.write(chunk.decode(errors="replace"))
            self.out.flush()
            return
        self.pending += chunk
        # mmcv's bar redraws with \r: each segment is one state of it
        *segments, self.pending = re.split(rb"[\r\n]", self.pending)
        for segment in segments:
            self.line(segment.decode(errors="replace").rstrip())

    def line(self, text: str) -> None:
        if not text:
            return
        if text.startswith(PASS_THROUGH):
            self._write(text[len(PASS_THROUGH):])
        elif m := OUR_PROGRESS.match(text):
            # the rate and ETA are measured again here, from when the lines arrive
            self._advance(m["phase"], int(m["n"]), int(m["total"]), m["unit"], leave=True, postfix="")
        elif m := MMCV_ITER.search(text):
            loss = MMCV_LOSS.search(text[m.end():])
            postfix = [f"loss {float(loss['loss']):.3f}" if loss else "", f"lr {float(m['lr']):.1e}"]
            if self.val_miou is not None:
                postfix.append(f"val mIoU {self.val_miou}")
            self._advance("train", int(m["n"]), int(m["total"]), "iters", leave=True,
                          postfix=", ".join(p for p in postfix if p))
        elif m := MMCV_VAL.search(text):
            self.val_miou = "nan" if m["miou"] == "nan" else f"{float(m['miou']) * 100:.2f}"
        elif m := MMCV_BAR.match(text):
            # mmseg's validation inside training: a transient bar (a terminal shows it; a log only if it is slow)
            self._advance("validation", int(m["n"]), int(m["total"]), "images", leave=False, postfix="")

    def _write(self, text: str) -> None:
        if any(not getattr(b, "closed", False) and is_terminal(self.out) for b in self.bars.values()):
            from tqdm import tqdm
            tqdm.write(text, file=self.out)
        else:
            self.out.write(text + "\n")
            self.out.flush()

    def _advance(self, phase: str, n: int, total: int, unit: str, leave: bool, postfix: str) -> None:
        current = self.bars.get(phase)
        if current is not None and (n < current.n or total != current.total):   # a new pass of that phase
            current.close()
            current = None
        if current is None:
            current = self.bars[phase] = bar(total, phase, unit=unit, leave=leave, file=self.out)
        if postfix:
            current.set_postfix_str(postfix, refresh=False)
        if n > current.n:
            current.update(n - current.n)
        if n >= total:
            current.close()
            del self.bars[phase]

    def close(self) -> None:
        """The process ended: the remaining text is one last line; unfinished bars close where they stopped."""
        if self.pending and not self.stream_all:
            self.line(self.pending.decode(errors="replace").rstrip())
        self.pending = b""
        for current in self.bars.values():
            current.close()
        self.bars.clear()


def log_line(run_dir, names: Iterable[str]) -> str:
    """`logs: <run_dir>/{console.log, train.log, ...}`: the files of a run a person may want to open."""
    from pathlib import Path
    run_dir = Path(run_dir)
    present = [name for name in names if name and (run_dir / name).exists()]
    return f"logs: {run_dir}/{{{', '.join(present)}}}" if present else f"logs: {run_dir}"
