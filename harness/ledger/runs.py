"""What a run folder's ledger gives without the model: its bootstrap intervals, and its paired comparison with
other runs over the same images (harness/ledger/stats.py does the arithmetic).

A run's ledger is the file its result.json names (`"ledger": {"file": "ledger.npz", "sha256": ..., "images": N}`;
a sha256 that differs from the file's is refused), else a `ledger.npz` beside result.json (a record finalised
before it names one). An imported result has neither: every function here then says so (None, or a reason)
instead of failing.

Example::

    >>> intervals_for_run("runs/eva02_L_sz512/ss/20260101T120000Z")
    {'aAcc': [86.1, 86.6], 'mIoU': [59.1, 60.4], 'mAcc': [71.3, 72.4], 'level': 0.95, 'resamples': 2000, 'seed': 0}
    >>> format_interval(59.77, [59.1, 60.4])
    '59.77 [59.1, 60.4]'
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from harness.errors import ReproError
from harness.fileio import file_sha256
from harness.ledger import stats
from harness.ledger.store import LEDGER_FILE, Ledger, LedgerInvalid, read_ledger
from harness.run.folder import RESULT_FILE
from harness.run.record import read_result
from harness.registry import datasets

MOVED_SHOWN = 10              # images listed as moved most, per pair
CLASSES_SHOWN = 5             # classes named on the console, per pair

_cache: dict[tuple, dict] = {}


def _run_dir(path: Path | str) -> Path:
    path = Path(path)
    return path.parent if path.name == RESULT_FILE or path.is_file() else path


def _record(run_dir: Path) -> dict | None:
    return read_result(run_dir) if (run_dir / RESULT_FILE).is_file() else None


def ledger_path(run_dir: Path | str, record: dict | None = None) -> Path | None:
    """The run's ledger file, or None when it has none (an imported result, a run made before ledgers)."""
    run_dir = _run_dir(run_dir)
    entry = (record or {}).get("ledger")
    if isinstance(entry, dict) and entry.get("file"):
        return run_dir / entry["file"]
    fallback = run_dir / LEDGER_FILE
    return fallback if fallback.is_file() else None


def no_ledger_reason(record: dict | None) -> str:
    """Why a run has no ledger, in words for the console and the page."""
    kind = (record or {}).get("kind")
    if kind == "import":
        return "an imported result carries no per-image ledger"
    return "its run folder holds no per-image ledger (a run made before ledgers, or an unfinished one)"


def load_run_ledger(run_dir: Path | str, record: dict | None = None) -> Ledger | None:
    """The run's ledger, its sha256 checked against the record's; None without one; LedgerInvalid when broken."""
    run_dir = _run_dir(run_dir)
    record = record if record is not None else _record(run_dir)
    path = ledger_path(run_dir, record)
    if path is None:
        return None
    if not path.is_file():
        raise LedgerInvalid(f"{run_dir / RESULT_FILE} names the ledger {path.name}, which is missing",
                            fix="restore the run folder's ledger, or re-run the evaluation")
    expected = ((record or {}).get("ledger") or {}).get("sha256")
    if expected and file_sha256(path) != expected:
        raise LedgerInvalid(f"{path}: sha256 differs from the one {RESULT_FILE} records",
                            fix="the ledger was changed after the run; restore it or re-run the evaluation")
    return read_ledger(path)


def intervals_for_ledger(ledger: Ledger, resamples: int = stats.DEFAULT_RESAMPLES, seed: int = stats.DEFAULT_SEED,
                         level: float = stats.DEFAULT_LEVEL) -> dict:
    return stats.bootstrap(ledger, resamples=resamples, seed=seed, level=level).as_record()


def intervals_for_run(run_dir: Path | str, resamples: int = stats.DEFAULT_RESAMPLES, seed: int = stats.DEFAULT_SEED,
                      level: float = stats.DEFAULT_LEVEL) -> dict | None:
    """{"aAcc": [lo, hi], "mIoU": [...], "mAcc": [...], "level", "resamples", "seed"} in percent, from the run's
    ledger; None when it has none. Works before result.json exists (finalize: after ledger.npz is merged)."""
    run_dir = _run_dir(run_dir)
    record = _record(run_dir)
    path = ledger_path(run_dir, record)
    if path is None:
        return None
    key = (str(path.resolve()), *_stat(path), resamples, seed, level)
    if key not in _cache:
        _cache[key] = intervals_for_ledger(load_run_ledger(run_dir, record), resamples, seed, level)
    return dict(_cache[key])


def _stat(path: Path) -> tuple:
    try:
        st = path.stat()
    except OSError:
        return (None, None)
    return (st.st_mtime_ns, st.st_size)


def _valid_intervals(value) -> bool:
    if not isinstance(value, dict):
        return False
    pairs = [value.get(name) for name in stats.SUMMARY]
    return all(isinstance(p, list) and len(p) == 2 for p in pairs)


def run_intervals(run_dir: Path | str, record: dict) -> dict | None:
    """The intervals a record carries (`intervals`), else computed from its ledger, else None (no ledger).
    A ledger that cannot be read gives None here: `repro verify` is where it is refused."""
    carried = record.get("intervals")
    if _valid_intervals(carried):
        return carried
    try:
        return intervals_for_run(run_dir)
    except (ReproError, ValueError):
        return None


def format_interval(value, interval) -> str:
    """'59.77 [59.1, 60.4]' (the value at 2 decimals, the interval at 1); the value alone without an interval."""
    if not isinstance(value, (int, float)) or not math.isfinite(value):
        return "—"
    text = f"{value:.2f}"
    if isinstance(interval, (list, tuple)) and len(interval) == 2 and all(
            isinstance(v, (int, float)) and math.isfinite(v) for v in interval):
        text += f" [{interval[0]:.1f}, {interval[1]:.1f}]"
    return text


def signed(value, decimals: int = 2) -> str:
    """+0.12 / -0.30 / 0.00 (never -0.00); '—' for a missing value."""
    if not isinstance(value, (int, float)) or not math.isfinite(value):
        return "—"
    text = f"{value:+.{decimals}f}"
    return text[1:] if float(text) == 0 else text


def format_delta(value, lo, hi) -> str:
    """'+0.40 [+0.11, +0.69]': a difference and its interval, with a third or fourth decimal when 2 would round a
    bound that is not 0 to 0.00 (an interval that excludes 0 must not read as touching it)."""
    decimals = 2
    while decimals < 4 and any(isinstance(v, (int, float)) and math.isfinite(v) and v != 0
                               and round(v, decimals) == 0 for v in (value, lo, hi)):
        decimals += 1
    return f"{signed(value, decimals)} [{signed(lo, decimals)}, {signed(hi, decimals)}]"


def interval_text(record: dict, metric: str, intervals: dict | None) -> str:
    """A record's metric with its interval when there is one: 'mIoU 59.77 [59.1, 60.4]' reads from this."""
    value = (record.get("metrics") or {}).get(metric)
    return format_interval(value, (intervals or {}).get(metric))


# ------------------------------------------------------------------------------------------------ paired comparison

@dataclass
class Pair:
    """One run against the first: the paired part when both have ledgers over the same images, else why not."""
    base: str                          # display names
    other: str
    why_not: str | None = None
    paired: stats.PairedBootstrap | None = None
    classes: list[str] = field(default_factory=list)
    moved: list[dict] = field(default_factory=list)      # image, index, Δ acc, Δ mIoU, both runs' values

    def top_classes(self, k: int = CLASSES_SHOWN) -> list[dict]:
        """Classes by |Δ IoU|, largest first (those with an interval excluding 0 before the others)."""
        if self.paired is None:
            return []
        rows = self.class_rows()
        rows = [r for r in rows if r["delta"] is not None and r["delta"] != 0]
        rows.sort(key=lambda r: (not r["excludes_zero"], -abs(r["delta"]), r["index"]))
        return rows[:k]

    def class_rows(self) -> list[dict]:
        p = self.paired
        rows = []
        for i, name in enumerate(self.classes):
            d, lo, hi = (float(a[i]) for a in (p.class_delta, p.class_lo, p.class_hi))
            ok = all(math.isfinite(v) for v in (d, lo, hi))
            rows.append({"index": i, "class": name, "delta": d if ok else None, "lo": lo if ok else None,
                         "hi": hi if ok else None, "excludes_zero": bool(ok and (lo > 0 or hi < 0))})
        return rows


def _align(base: Ledger, other: Ledger) -> Ledger | None:
    """`other` in `base`'s image order, or None when the two list different images."""
    if base.num_images != other.num_images or set(base.names.tolist()) != set(other.names.tolist()):
        return None
    if np.array_equal(base.names, other.names):
        return other
    where = {name: i for i, name in enumerate(other.names.tolist())}
    if len(where) != other.num_images:
        return None
    order = np.array([where[name] for name in base.names.tolist()])
    return Ledger(names=other.names[order], index=other.index[order], pixels=other.pixels[order],
                  intersect=other.intersect[order], union=other.union[order], pred=other.pred[order],
                  label=other.label[order])


def _images_differ(base: Ledger, other: Ledger) -> str:
    a, b = set(base.names.tolist()), set(other.names.tolist())
    only_a, only_b = sorted(a - b), sorted(b - a)
    parts = [f"{base.num_images} vs {other.num_images} images"]
    if only_a:
        parts.append(f"{len(only_a)} only in the first (e.g. {only_a[0]})")
    if only_b:
        parts.append(f"{len(only_b)} only in this one (e.g. {only_b[0]})")
    return "the ledgers list different val images: " + ", ".join(parts)


def _manifest(record: dict) -> str | None:
    return (record.get("dataset") or {}).get("manifest_sha256") or None


def moved_images(base: Ledger, other: Ledger, k: int = MOVED_SHOWN) -> list[dict]:
    """The images whose own score moved most (other − base): by the larger of |Δ pixel accuracy| and |Δ image
    mIoU| (percent points), unchanged images never listed; ties by dataset order."""
    acc_a, miou_a = stats.image_scores(base)
    acc_b, miou_b = stats.image_scores(other)
    d_acc, d_miou = acc_b - acc_a, miou_b - miou_a
    move = np.fmax(np.abs(np.nan_to_num(d_acc)), np.abs(np.nan_to_num(d_miou)))
    changed = np.flatnonzero(move > 0)
    order = changed[np.lexsort((changed, -move[changed]))][:k]
    return [{"image": str(base.names[i]), "index": int(base.index[i]), "delta_acc": _num(d_acc[i]),
             "delta_miou": _num(d_miou[i]), "acc": [_num(acc_a[i]), _num(acc_b[i])],
             "miou": [_num(miou_a[i]), _num(miou_b[i])]} for i in order]


def _num(value) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None


def pair_runs(base_dir: Path, base_record: dict, other_dir: Path, other_record: dict, names: tuple[str, str],
              classes: list[str], resamples: int = stats.DEFAULT_RESAMPLES, seed: int = stats.DEFAULT_SEED) -> Pair:
    """The paired comparison of two runs, or a Pair saying why there is none (never raises for a missing or
    mismatched ledger: the rest of the comparison goes on)."""
    pair = Pair(*names, classes=list(classes))
    ledgers = []
    for run_dir, record, name in ((base_dir, base_record, names[0]), (other_dir, other_record, names[1])):
        try:
            ledger = load_run_ledger(run_dir, record)
        except ReproError as exc:
            pair.why_not = f"{name}: {exc.message}"
            return pair
        if ledger is None:
            pair.why_not = f"{name} has no ledger: {no_ledger_reason(record)}"
            return pair
        ledgers.append(ledger)
    base, other = ledgers
    manifests = _manifest(base_record), _manifest(other_record)
    if all(manifests) and manifests[0] != manifests[1]:
        pair.why_not = (f"the runs read different data (data manifest sha256 {manifests[0][:12]}… vs "
                        f"{manifests[1][:12]}…)")
        return pair
    if base.num_classes != other.num_classes:
        pair.why_not = f"the ledgers count different classes ({base.num_classes} vs {other.num_classes})"
        return pair
    aligned = _align(base, other)
    if aligned is None:
        pair.why_not = _images_differ(base, other)
        return pair
    if len(pair.classes) != base.num_classes:
        pair.classes = [f"class {i}" for i in range(base.num_classes)]
    pair.paired = stats.paired_bootstrap(base, aligned, resamples=resamples, seed=seed)
    pair.moved = moved_images(base, aligned)
    return pair


# ------------------------------------------------------------------------------------------------ re-scoring

RESCORE_FILE = "rescore.json"
RESCORE_SCHEMA = "repro.rescore/1"


def rescore_run(run_dir: Path | str, metrics: list[str]) -> tuple[Path, dict]:
    """mmseg's metrics (mIoU, mDice, mFscore) from the run's ledger, no model: written to <run>/rescore.json
    atomically (replacing an earlier one); returns (that path, the document). No ledger: ReproError."""
    from harness.clock import iso_now
    from harness.fileio import write_json_atomic
    from harness.ledger.metrics import ALLOWED, rescore_totals

    run_dir = _run_dir(run_dir)
    record = read_result(run_dir)
    unknown = [m for m in metrics if m not in ALLOWED]
    if unknown or not metrics:
        raise ReproError(f"unknown metric(s) {', '.join(unknown) or '(none given)'}",
                         fix=f"name some of {', '.join(ALLOWED)}, comma-separated (mmseg's metrics)")
    ledger = load_run_ledger(run_dir, record)
    if ledger is None:
        raise ReproError(f"{run_dir} has no ledger to re-score: {no_ledger_reason(record)}",
                         fix="re-score a run evaluated by `repro eval` (it writes ledger.npz)")
    try:
        classes = list(datasets.of_record(record).classes)
    except ReproError:
        classes = []
    if len(classes) != ledger.num_classes:
        classes = [f"class {i}" for i in range(ledger.num_classes)]
    scores = rescore_totals(ledger.totals(), metrics, classes)
    path = ledger_path(run_dir, record)
    document = {"schema": RESCORE_SCHEMA, "created": iso_now(), "requested": list(metrics),
                "ledger": {"file": path.name, "sha256": file_sha256(path), "images": ledger.num_images},
                "note": "mmseg 0.29.1's total_area_to_metrics on the ledger's summed histograms (beta 1 for Fscore), "
                        "in percent; a class with a zero denominator is null and left out of the means",
                **scores}
    target = run_dir / RESCORE_FILE
    write_json_atomic(target, document)
    return target, document
