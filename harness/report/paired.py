"""The report's ledger sections: a run page's bootstrap intervals, and compare.html's paired comparison of each run
against the first (Δ with paired intervals, per-class Δ IoU, the images that moved most, with thumbnails of both
runs' predictions when both kept them with --show-dir). The numbers come from harness/ledger/runs.py."""
from __future__ import annotations

from pathlib import Path

from harness.ledger import runs as ledger_runs
from harness.ledger.stats import SUMMARY
from harness.registry import datasets

MEANING = ("95 % bootstrap interval over the choice of val images (the images resampled with replacement, the "
           "model fixed): how much the number would move on another val set drawn like this one, not how much it "
           "moves between training seeds. The tier bands decide PASS/FAIL; the interval informs.")

_pairs_cache: dict[tuple, list] = {}


def interval_section(page) -> dict:
    """A run page's intervals: {"rows": [{metric, value, lo, hi}], level, resamples, seed} or {"why": reason}."""
    record = page.record
    intervals = ledger_runs.run_intervals(page.run_dir, record)
    if intervals is None:
        return {"why": ledger_runs.no_ledger_reason(record), "meaning": MEANING}
    metrics = record.get("metrics") or {}
    rows = [{"metric": name, "value": metrics.get(name), "lo": (intervals.get(name) or [None, None])[0],
             "hi": (intervals.get(name) or [None, None])[1],
             "text": ledger_runs.format_interval(metrics.get(name), intervals.get(name))} for name in SUMMARY]
    return {"rows": rows, "level": intervals.get("level"), "resamples": intervals.get("resamples"),
            "seed": intervals.get("seed"), "meaning": MEANING}


def _name(page) -> str:
    return f"{page.title} · {page.run_dir.name}"


def _classes(record: dict) -> list[str]:
    try:
        return [c.strip() for c in datasets.of_record(record).classes]
    except Exception:  # noqa: BLE001 - an unknown dataset: the pair names classes by index
        return []


def _key(pages) -> tuple:
    parts = []
    for page in pages:
        path = ledger_runs.ledger_path(page.run_dir, page.record)
        stat = path.stat() if path is not None and path.is_file() else None
        parts.append((str(page.path), str(path), stat and stat.st_mtime_ns, stat and stat.st_size))
    return tuple(parts)


def compare_pairs(pages) -> list:
    """harness.ledger.runs.Pair of each page after the first against the first (computed once per set of pages)."""
    key = _key(pages)
    if key not in _pairs_cache:
        base = pages[0]
        _pairs_cache[key] = [ledger_runs.pair_runs(base.run_dir, base.record, page.run_dir, page.record,
                                                   (_name(base), _name(page)), _classes(base.record))
                             for page in pages[1:]]
    return _pairs_cache[key]


def _show_file(record: dict, image: str) -> Path | None:
    folder = (record.get("artifacts") or {}).get("show_dir")
    if not folder:
        return None
    path = Path(folder) / Path(image).with_suffix(".png").name
    return path if path.is_file() else None


def _thumbnails(base_record: dict, other_record: dict, image: str) -> list[tuple[str, str]] | None:
    """first run's prediction | this run's | where they differ (red), as data URIs; None unless both kept it."""
    files = [_show_file(base_record, image), _show_file(other_record, image)]
    if not all(files):
        return None
    import numpy as np
    from PIL import Image

    from harness.report.files import Skipped, open_image
    from harness.report.gallery import _thumb, _uri
    try:      # pictures of the size and kind the gallery takes (harness/report/files.py), else no thumbnails
        a = open_image(files[0], "first run's prediction")
    except Skipped:
        return None
    try:
        b = open_image(files[1], "this run's prediction")
    except Skipped:
        a.close()
        return None
    with a, b:
        panels = [("first run", _uri(_thumb(a, "NEAREST"), "PNG")), ("this run", _uri(_thumb(b, "NEAREST"), "PNG"))]
        pa, pb = np.asarray(a), np.asarray(b)
        if pa.shape == pb.shape:
            diff = np.full(pa.shape + (3,), 225, dtype=np.uint8)
            diff[pa != pb] = (198, 40, 40)
            panels.append(("changed pixels", _uri(_thumb(Image.fromarray(diff, mode="RGB"), "NEAREST"), "PNG")))
    return panels


def compare_section(pages) -> dict:
    """compare.html's paired part: one entry per run after the first."""
    if len(pages) < 2:
        return {"pairs": []}
    base = pages[0]
    out = []
    for page, pair in zip(pages[1:], compare_pairs(pages)):
        entry = {"base": pair.base, "other": pair.other, "why_not": pair.why_not}
        if pair.paired is not None:
            p = pair.paired
            entry.update(
                images=p.images, resamples=p.resamples, seed=p.seed, level=p.level,
                summary=[{"metric": m, "delta": p.delta[m].value, "lo": p.delta[m].lo, "hi": p.delta[m].hi,
                          "text": ledger_runs.format_delta(p.delta[m].value, p.delta[m].lo, p.delta[m].hi),
                          "excludes_zero": p.delta[m].excludes_zero} for m in SUMMARY],
                classes=sorted(pair.class_rows(), key=lambda r: (r["delta"] is None, -abs(r["delta"] or 0),
                                                                 r["index"])),
                moved=[{**m, "thumbs": _thumbnails(base.record, page.record, m["image"])} for m in pair.moved])
            entry["with_thumbs"] = any(m["thumbs"] for m in entry["moved"])
        out.append(entry)
    return {"pairs": out}
