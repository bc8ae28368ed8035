"""The ledger file: every val image's four area histograms, in dataset order, as one `ledger.npz`.

Format (numpy's `.npz`, a zip of `.npy` arrays: `np.load("ledger.npz")` opens it in one line, no extra
dependency, and chunks append as separate files while a run is under way):

| array | dtype, shape | holds |
| --- | --- | --- |
| `names` | str, (N,) | the image's file name (as the dataset lists it) |
| `index` | int64, (N,) | its position in the dataset (the sampler's index), ascending |
| `pixels` | int64, (N,) | its ground-truth map's pixel count (H × W, ignored pixels included) |
| `intersect`, `union`, `pred`, `label` | int64, (N, C) | mmseg's intersect_and_union areas per class, with the dataset's reduce_zero_label / ignore_index |

While an evaluation runs, each process appends chunks `ledger.parts/rank<R>-<seq>.npz` (same arrays, written
atomically, every `REPRO_LEDGER_EVERY_IMAGES` images or `REPRO_LEDGER_EVERY_S` seconds, whichever comes first:
`ChunkWriter`); the finished run merges them into `ledger.npz`, sorted by `index` (`merge_parts`). A resumed
evaluation skips the images its chunks already hold (`read_parts`). The summary metrics are computed from the
ledger's int64 sums (`metrics_percent`), so they do not depend on how the images were split into sessions or
processes.
"""
from __future__ import annotations

import io
import os
import shutil
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from harness.errors import ReproError
from harness.fileio import file_sha256, write_bytes_atomic

LEDGER_FILE = "ledger.npz"
PARTS_DIR = "ledger.parts"
AREAS = ("intersect", "union", "pred", "label")
ARRAYS = ("names", "index", "pixels", *AREAS)
CHUNK_GLOB = "rank*-*.npz"
EVERY_IMAGES, EVERY_S = 64, 30.0      # a chunk at least this often (REPRO_LEDGER_EVERY_IMAGES / _EVERY_S)


class LedgerInvalid(ReproError):
    """A ledger file that is missing, unreadable or not of the documented shape."""


@dataclass(frozen=True)
class Ledger:
    names: np.ndarray       # (N,) str
    index: np.ndarray       # (N,) int64
    pixels: np.ndarray      # (N,) int64
    intersect: np.ndarray   # (N, C) int64
    union: np.ndarray
    pred: np.ndarray
    label: np.ndarray

    @property
    def num_images(self) -> int:
        return int(self.index.shape[0])

    @property
    def num_classes(self) -> int:
        return int(self.intersect.shape[1])

    def totals(self) -> dict[str, np.ndarray]:
        """The four areas summed over images: (C,) int64 each, what the summary metrics are computed from."""
        return {name: getattr(self, name).sum(axis=0) for name in AREAS}


def from_arrays(arrays: dict, source: str = "ledger") -> Ledger:
    """Check the documented shape and types; one line naming the array on any violation."""
    missing = [name for name in ARRAYS if name not in arrays]
    if missing:
        raise LedgerInvalid(f"{source}: lacks the array(s) {', '.join(missing)}")
    names = np.asarray(arrays["names"]).astype(str)
    n = names.shape[0]
    ints = {}
    for name in ("index", "pixels", *AREAS):
        value = np.asarray(arrays[name])
        if value.dtype.kind not in "iu":
            raise LedgerInvalid(f"{source}: array '{name}' holds {value.dtype}, not integers")
        ints[name] = value.astype(np.int64)
    for name in ("index", "pixels"):
        if ints[name].shape != (n,):
            raise LedgerInvalid(f"{source}: array '{name}' has shape {ints[name].shape}, expected ({n},)")
    c = ints["intersect"].shape[1] if ints["intersect"].ndim == 2 else -1
    for name in AREAS:
        if ints[name].ndim != 2 or ints[name].shape != (n, c):
            raise LedgerInvalid(f"{source}: array '{name}' has shape {ints[name].shape}, expected ({n}, C)")
    return Ledger(names=names, **ints)


def to_bytes(ledger: Ledger) -> bytes:
    """What np.savez_compressed writes, with every member dated 1980-01-01: the same ledger is the same bytes
    (and sha256), whenever it was written."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name in ARRAYS:
            member = io.BytesIO()
            np.lib.format.write_array(member, np.asarray(getattr(ledger, name)), allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, member.getvalue())
    return buf.getvalue()


def write_ledger(path: Path, ledger: Ledger) -> Path:
    """Write atomically (a kill leaves the old file or the whole new one, never a torn one)."""
    return write_bytes_atomic(path, to_bytes(ledger))


def read_ledger(path: Path) -> Ledger:
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {name: data[name] for name in data.files}
    except FileNotFoundError:
        raise LedgerInvalid(f"{path}: no such ledger file") from None
    except (OSError, ValueError) as exc:
        raise LedgerInvalid(f"{path}: not a readable .npz ledger ({exc})") from None
    return from_arrays(arrays, source=str(path))


def concat(parts: list[Ledger]) -> Ledger:
    """Several chunks as one ledger, sorted by dataset index; an index present twice is refused."""
    if not parts:
        raise LedgerInvalid("no ledger chunks to merge")
    merged = {name: np.concatenate([getattr(p, name) for p in parts]) for name in ARRAYS}
    order = np.argsort(merged["index"], kind="stable")
    merged = {name: value[order] for name, value in merged.items()}
    if merged["index"].size and np.any(np.diff(merged["index"]) == 0):
        raise LedgerInvalid("ledger chunks hold the same image twice")
    return from_arrays(merged)


# ------------------------------------------------------------------------------------------------ building

def from_rows(index, names, pixels, areas) -> Ledger:
    """A ledger from per-image rows: `areas` (N, 4, C) in AREAS order (or a list of (4, C) arrays)."""
    areas = np.asarray(areas, dtype=np.int64).reshape(len(index), len(AREAS), -1)
    return from_arrays({"names": np.asarray(list(names), dtype=str), "index": np.asarray(index, dtype=np.int64),
                        "pixels": np.asarray(pixels, dtype=np.int64),
                        **{name: areas[:, k] for k, name in enumerate(AREAS)}})


def rows(ledger: Ledger) -> list[tuple]:
    """Per image, (intersect, union, pred, label) as mmseg's pre_eval gives them (the report's gallery reads it)."""
    return list(zip(ledger.intersect, ledger.union, ledger.pred, ledger.label))


def check_complete(ledger: Ledger, size: int, source: str = "ledger") -> None:
    """Every image 0..size-1 exactly once (concat already refused duplicates)."""
    if ledger.num_images != size or (size and (ledger.index[0] != 0 or ledger.index[-1] != size - 1)):
        have = set(ledger.index.tolist())
        missing = [i for i in range(size) if i not in have][:5]
        raise LedgerInvalid(f"{source}: holds {ledger.num_images} of the {size} images"
                            + (f" (missing e.g. {missing})" if missing else " (indices outside the dataset)"))


# ------------------------------------------------------------------------------------------------ chunks

def _env_number(name: str, default, cast):
    value = os.environ.get(name)
    if not value:
        return default
    try:
        return cast(value)
    except ValueError:
        raise ReproError(f"{name}={value!r} is not a number", fix=f"unset it or give a number, e.g. {default}") from None


class ChunkWriter:
    """One process's chunks: `add` rows as images finish; a chunk `ledger.parts/rank<R>-<seq>.npz` is written
    atomically once `every_images` rows wait or `every_s` seconds passed since the last one; `flush` writes what
    waits (on SIGTERM, at the end). Sequence numbers continue after this rank's chunks of earlier sessions."""

    def __init__(self, parts_dir: Path, rank: int, every_images: int | None = None, every_s: float | None = None):
        self.parts_dir = Path(parts_dir)
        self.rank = rank
        self.every_images = every_images or _env_number("REPRO_LEDGER_EVERY_IMAGES", EVERY_IMAGES, int)
        self.every_s = every_s or _env_number("REPRO_LEDGER_EVERY_S", EVERY_S, float)
        taken = [int(p.stem.split("-")[1]) for p in self.parts_dir.glob(f"rank{rank}-*.npz")
                 if p.stem.split("-")[1].isdigit()]
        self.seq = max(taken, default=-1) + 1
        self.pending: list[tuple] = []
        self.last = time.monotonic()
        self.written = 0

    def add(self, index: int, name: str, pixels: int, areas) -> None:
        self.pending.append((int(index), str(name), int(pixels), np.asarray(areas, dtype=np.int64)))
        if self.due():
            self.flush()

    def due(self, waiting: int = 0) -> bool:
        """Rows wait (here, or `waiting` more on their way) and a chunk is due: enough of them, or enough time
        since the last chunk."""
        n = len(self.pending) + waiting
        return n > 0 and (n >= self.every_images or time.monotonic() - self.last >= self.every_s)

    def flush(self) -> Path | None:
        self.last = time.monotonic()
        if not self.pending:
            return None
        index, names, pixels, areas = zip(*self.pending)
        path = self.parts_dir / f"rank{self.rank}-{self.seq:06d}.npz"
        write_ledger(path, from_rows(index, names, pixels, np.stack(areas)))
        self.seq += 1
        self.written += len(self.pending)
        self.pending.clear()
        return path


def chunk_paths(parts_dir: Path) -> list[Path]:
    return sorted(Path(parts_dir).glob(CHUNK_GLOB))


def read_parts(parts_dir: Path) -> Ledger | None:
    """All chunks of a parts folder as one ledger (sorted by index), None when there are none."""
    paths = chunk_paths(parts_dir)
    return concat([read_ledger(p) for p in paths]) if paths else None


def merge_parts(run_dir: Path, size: int | None = None) -> tuple[Ledger, str]:
    """`<run>/ledger.parts/` merged into `<run>/ledger.npz` (checked complete when `size` is given), the parts
    folder removed; returns (ledger, its file's sha256)."""
    run_dir = Path(run_dir)
    ledger = read_parts(run_dir / PARTS_DIR)
    if ledger is None:
        raise LedgerInvalid(f"{run_dir / PARTS_DIR}: no ledger chunks to merge")
    if size is not None:
        check_complete(ledger, size, str(run_dir / PARTS_DIR))
    path = write_ledger(run_dir / LEDGER_FILE, ledger)
    shutil.rmtree(run_dir / PARTS_DIR, ignore_errors=True)
    return ledger, file_sha256(path)


# ------------------------------------------------------------------------------------------------ metrics

def metrics_percent(ledger: Ledger, class_names) -> tuple[dict, dict]:
    """aAcc / mIoU / mAcc and per-class IoU / Acc in percent, from the ledger's int64 sums.

    mmseg's formulas in mmseg's float32 (total_area_to_metrics divides float32 totals), so on a split whose
    per-class totals fit float32 exactly (below 2**24 pixels) the numbers equal mmseg's to the last digit; the sums
    themselves are int64, so the result is the same however the images were split into sessions or processes.
    """
    totals = ledger.totals()
    f32 = {name: value.astype(np.float32) for name, value in totals.items()}
    with np.errstate(divide="ignore", invalid="ignore"):
        iou = (f32["intersect"] / f32["union"]).astype(float)
        acc = (f32["intersect"] / f32["label"]).astype(float)
        all_acc = np.float32(totals["intersect"].sum()) / np.float32(totals["label"].sum())
    metrics = {"aAcc": float(all_acc) * 100, "mIoU": float(np.nanmean(iou)) * 100,
               "mAcc": float(np.nanmean(acc)) * 100}
    per_class = {str(name): {"IoU": None if np.isnan(i) else float(i) * 100,
                             "Acc": None if np.isnan(a) else float(a) * 100}
                 for name, i, a in zip(class_names, iou, acc)}
    return metrics, per_class
