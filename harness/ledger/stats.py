"""Bootstrap intervals over val images, from a ledger's per-image area histograms (no model, no torch).

One resample draws N images with replacement from the N val images; its metrics are mmseg's, computed from the
resample's summed histograms (aAcc = Σ intersect / Σ label; IoU = intersect / union and Acc = intersect / label
per class, NaN for a class the resample lacks, left out of the mean as mmseg's `np.nanmean` leaves it out).
The 95 % interval is the 2.5th and 97.5th percentile of B resamples (the percentile bootstrap).

Vectorised: the resamples are a (B, N) matrix of how often each image was drawn (`Generator.integers` then
one `bincount`), and the resampled totals are that matrix times the (N, C) histograms: three matrix products per
block of BLOCK resamples, which bounds memory (BLOCK × N weights). The products are exact (integers far below
2**53 in float64). The result depends on the seed and B only, not on BLOCK.

A paired bootstrap applies the same resample of images to two ledgers over the same images and takes the
percentiles of the differences: the run-to-run difference with the noise of the image choice, which the two
runs share, cancelled.

Example::

    >>> boot = bootstrap(ledger, resamples=1000, seed=0)
    >>> boot.metrics["mIoU"]          # Interval(value=59.77, lo=59.1, hi=60.4) in percent
    >>> paired = paired_bootstrap(base, other)
    >>> paired.delta["mIoU"].excludes_zero
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np

from harness.ledger.store import Ledger

SUMMARY = ("aAcc", "mIoU", "mAcc")
DEFAULT_RESAMPLES = 2000
DEFAULT_SEED = 0
DEFAULT_LEVEL = 0.95
BLOCK = 128                    # resamples per block: BLOCK x N float64 weights (2 MiB for 2,000 images)


@dataclass(frozen=True)
class Interval:
    """A point value and its bootstrap interval, in percent (as result.json's metrics)."""
    value: float
    lo: float
    hi: float

    @property
    def width(self) -> float:
        return self.hi - self.lo

    @property
    def excludes_zero(self) -> bool:
        """For a difference: the whole interval on one side of 0 (a zero-width [0, 0] does not exclude it)."""
        return bool(self.lo > 0 or self.hi < 0)


@dataclass(frozen=True)
class Bootstrap:
    metrics: dict[str, Interval]          # aAcc, mIoU, mAcc
    level: float
    resamples: int
    seed: int
    images: int

    def as_record(self) -> dict:
        """What result.json carries: {"aAcc": [lo, hi], "mIoU": ..., "mAcc": ..., "level", "resamples", "seed"}."""
        out = {name: [_finite(iv.lo), _finite(iv.hi)] for name, iv in self.metrics.items()}
        return {**out, "level": self.level, "resamples": self.resamples, "seed": self.seed}


@dataclass(frozen=True)
class PairedBootstrap:
    """other − base over the same images: Δ aAcc / mIoU / mAcc and Δ IoU per class, each with its interval."""
    delta: dict[str, Interval]
    class_delta: np.ndarray               # (C,) Δ IoU in percent (NaN where a class is absent from either run)
    class_lo: np.ndarray
    class_hi: np.ndarray
    level: float
    resamples: int
    seed: int
    images: int
    extra: dict = field(default_factory=dict)


def _finite(value: float) -> float | None:
    return float(value) if np.isfinite(value) else None


def resample_counts(rng: np.random.Generator, images: int, resamples: int) -> np.ndarray:
    """(resamples, images) float64: how many times each image is drawn in each resample (each row sums to N)."""
    drawn = rng.integers(0, images, size=(resamples, images))
    drawn += np.arange(resamples)[:, None] * images
    return np.bincount(drawn.ravel(), minlength=resamples * images).reshape(resamples, images).astype(np.float64)


def _summary(inter: np.ndarray, union: np.ndarray, label: np.ndarray) -> tuple[np.ndarray, ...]:
    """mmseg's aAcc, mIoU, mAcc (percent) of each row of summed histograms (R, C); and the (R, C) IoU."""
    with np.errstate(divide="ignore", invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)          # a resample with no class at all: NaN
        iou = inter / union
        acc = inter / label
        a_acc = inter.sum(axis=1) / label.sum(axis=1)
        return a_acc * 100, np.nanmean(iou, axis=1) * 100, np.nanmean(acc, axis=1) * 100, iou * 100


def _areas(ledger: Ledger) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return (ledger.intersect.astype(np.float64), ledger.union.astype(np.float64), ledger.label.astype(np.float64))


def _percentiles(values: np.ndarray, level: float) -> tuple[np.ndarray, np.ndarray]:
    tail = (1 - level) / 2 * 100
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)          # an all-NaN column (class absent everywhere)
        lo, hi = np.nanpercentile(values, [tail, 100 - tail], axis=0)
    return lo, hi


def _check(resamples: int, level: float) -> None:
    if resamples < 1:
        raise ValueError("the bootstrap needs at least one resample")
    if not 0 < level < 1:
        raise ValueError(f"level {level} is not between 0 and 1")


def point_summary(ledger: Ledger) -> dict[str, float]:
    """aAcc / mIoU / mAcc of the whole ledger in percent (the resample that draws every image once)."""
    totals = (a.sum(axis=0, keepdims=True) for a in _areas(ledger))
    return {name: float(v[0]) for name, v in zip(SUMMARY, _summary(*totals)[:3])}


def bootstrap(ledger: Ledger, resamples: int = DEFAULT_RESAMPLES, seed: int = DEFAULT_SEED,
              level: float = DEFAULT_LEVEL, block: int = BLOCK) -> Bootstrap:
    """Percentile bootstrap intervals of aAcc / mIoU / mAcc over the ledger's images (see the module docstring)."""
    _check(resamples, level)
    n = ledger.num_images
    if n == 0:
        raise ValueError("the ledger holds no images")
    areas = _areas(ledger)
    rng = np.random.default_rng(seed)
    values = np.empty((resamples, 3))
    for start in range(0, resamples, block):
        b = min(block, resamples - start)
        weights = resample_counts(rng, n, b)
        values[start:start + b] = np.stack(_summary(*(weights @ a for a in areas))[:3], axis=1)
    lo, hi = _percentiles(values, level)
    point = point_summary(ledger)
    metrics = {name: Interval(point[name], float(lo[i]), float(hi[i])) for i, name in enumerate(SUMMARY)}
    return Bootstrap(metrics, level, resamples, seed, n)


def paired_bootstrap(base: Ledger, other: Ledger, resamples: int = DEFAULT_RESAMPLES, seed: int = DEFAULT_SEED,
                     level: float = DEFAULT_LEVEL, block: int = BLOCK) -> PairedBootstrap:
    """other − base with the same resample of images applied to both; the ledgers must list the same images in the
    same order with the same classes (harness.ledger.runs aligns and checks them)."""
    _check(resamples, level)
    if base.num_images != other.num_images or base.num_classes != other.num_classes:
        raise ValueError(f"paired ledgers differ in shape: {base.intersect.shape} vs {other.intersect.shape}")
    if not np.array_equal(base.names, other.names):
        raise ValueError("paired ledgers list different images (align them by name first)")
    n, c = base.num_images, base.num_classes
    a_areas, b_areas = _areas(base), _areas(other)
    rng = np.random.default_rng(seed)
    deltas = np.empty((resamples, 3))
    class_deltas = np.empty((resamples, c))
    for start in range(0, resamples, block):
        b = min(block, resamples - start)
        weights = resample_counts(rng, n, b)
        *sa, iou_a = _summary(*(weights @ a for a in a_areas))
        *sb, iou_b = _summary(*(weights @ a for a in b_areas))
        deltas[start:start + b] = np.stack(sb, axis=1) - np.stack(sa, axis=1)
        class_deltas[start:start + b] = iou_b - iou_a
    lo, hi = _percentiles(deltas, level)
    class_lo, class_hi = _percentiles(class_deltas, level)
    pa, pb = point_summary(base), point_summary(other)
    delta = {name: Interval(pb[name] - pa[name], float(lo[i]), float(hi[i])) for i, name in enumerate(SUMMARY)}
    class_iou = [_summary(*(a.sum(axis=0, keepdims=True) for a in areas))[3][0] for areas in (a_areas, b_areas)]
    return PairedBootstrap(delta, class_iou[1] - class_iou[0], class_lo, class_hi, level, resamples, seed, n)


def image_scores(ledger: Ledger) -> tuple[np.ndarray, np.ndarray]:
    """Per image, in percent: pixel accuracy (Σ intersect / Σ label) and the image's own mIoU over the classes in its
    ground truth or prediction (union > 0), as the report's gallery scores images; NaN without such pixels."""
    inter = ledger.intersect.astype(np.float64)
    union = ledger.union.astype(np.float64)
    label = ledger.label.astype(np.float64)
    with np.errstate(divide="ignore", invalid="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        acc = inter.sum(axis=1) / label.sum(axis=1) * 100
        miou = np.nanmean(np.where(union > 0, inter / union, np.nan), axis=1) * 100
    return acc, miou
