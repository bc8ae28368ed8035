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
atomically); the finished run merges them into `ledger.npz`, sorted by `index`.
"""
from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from harness.errors import ReproError
from harness.fileio import write_bytes_atomic

LEDGER_FILE = "ledger.npz"
PARTS_DIR = "ledger.parts"
AREAS = ("intersect", "union", "pred", "label")
ARRAYS = ("names", "index", "pixels", *AREAS)


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
    buf = io.BytesIO()
    np.savez_compressed(buf, **{name: getattr(ledger, name) for name in ARRAYS})
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
