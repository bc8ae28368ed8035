"""A record must agree with itself before it is compared with anything (issue #13).

mmseg computes mIoU and mAcc as the mean of the per-class IoU and Acc (NaN classes left out) and writes them,
rounded to 2 decimals of a percent, into its eval JSON. So in an honest record:

- mIoU / mAcc equal the mean of the record's own 150 per-class values, within two roundings to 2 decimals
  (0.01: an imported record carries mmseg's rounded values; the authors' four files differ by at most 0.005);
- aAcc / mIoU / mAcc equal the eval JSON the record names, within its rounding (0.005), and that file still has
  the sha256 recorded when the run ended.

- the per-image ledger it names (`"ledger": {"file", "sha256", "images"}`, harness/ledger/store.py) still has that
  sha256, holds that many images, and its int64 sums give exactly its summary and per-class values (the same
  computation the engine made; a record whose numbers no ledger sums to is refused). Imported records, and
  records older than the ledger, have none: that is said (`ledger_note`), never refused.

A record that breaks any of these was edited after the fact (or by hand): `repro verify` refuses it (exit 2) and
names the mismatch, instead of judging numbers that no evaluation produced.
"""
from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

from harness.errors import ReproError
from harness.registry import datasets

SUMMARY_VS_CLASSES = 0.01      # mean of rounded per-class values vs the rounded mean: two 2-decimal roundings
SUMMARY_VS_EVAL_JSON = 0.005   # full-precision record vs mmseg's 2-decimal eval JSON
EPS = 1e-6                      # float32 artefacts of the eval JSON (0.8266000366210937)
LEDGER_EPS = 1e-9               # the record's numbers are the ledger's, computed the same way: equal, not close
FIX = "re-run the evaluation or re-import the engine's own output; a record edited by hand is not a result"


def _number(value) -> float | None:
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


def check_summary_against_classes(record: dict, where: Path) -> None:
    metrics, per_class = record.get("metrics") or {}, record.get("per_class") or {}
    classes = datasets.of_record(record).classes
    if not isinstance(per_class, dict) or set(per_class) != set(classes):
        return          # no full per-class table to compare with (missing classes are reported as checks)
    for metric, key in (("mIoU", "IoU"), ("mAcc", "Acc")):
        summary = _number(metrics.get(metric))
        values = [_number(v.get(key)) for v in per_class.values() if isinstance(v, dict)]
        values = [v for v in values if v is not None]
        if summary is None or not values:
            continue
        mean = sum(values) / len(values)
        if abs(mean - summary) > SUMMARY_VS_CLASSES + EPS:
            raise ReproError(f"{where}: {metric} {summary:.2f} is not the mean of its {len(values)} per-class {key} "
                             f"values ({mean:.2f}, |Δ| {abs(mean - summary):.2f} > {SUMMARY_VS_CLASSES}): the record "
                             f"is inconsistent", fix=FIX)


def check_against_eval_json(record: dict, where: Path) -> None:
    named = record.get("eval_json") or {}
    name = named.get("path") or (record.get("artifacts") or {}).get("eval_json")
    if not name:
        return
    file = where.parent / name
    if not file.is_file():
        if named.get("sha256"):
            raise ReproError(f"{where}: names the eval JSON {name} (sha256 recorded), which is not in its run "
                             f"directory", fix="verify the run directory as the run left it")
        return          # an older record without a hash, moved without its files: nothing to compare with
    data = file.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if named.get("sha256") and digest != named["sha256"]:
        raise ReproError(f"{where}: its eval JSON {name} changed after the run (sha256 {digest[:12]}…, recorded "
                         f"{named['sha256'][:12]}…)", fix=FIX)
    try:
        metric = json.loads(data)["metric"]
    except (ValueError, KeyError, TypeError) as exc:
        raise ReproError(f"{where}: its eval JSON {name} holds no mmseg metrics ({exc})", fix=FIX) from exc
    for key, value in (record.get("metrics") or {}).items():
        ours, theirs = _number(value), _number(metric.get(key))
        if ours is None or theirs is None:
            continue
        if abs(ours - theirs * 100) > SUMMARY_VS_EVAL_JSON + EPS:
            raise ReproError(f"{where}: {key} {ours:.2f} disagrees with {theirs * 100:.2f} in its eval JSON {name} "
                             f"(|Δ| {abs(ours - theirs * 100):.2f} > {SUMMARY_VS_EVAL_JSON}): the record is "
                             f"inconsistent", fix=FIX)


def ledger_note(record: dict) -> str:
    """What the record says about its per-image ledger, in words (for verdicts and reports)."""
    named = record.get("ledger")
    if isinstance(named, dict) and named.get("file"):
        sessions = record.get("sessions")
        return (f"{named['file']} ({named.get('images')} images"
                + (f", {sessions} sessions" if isinstance(sessions, int) and sessions > 1 else "") + ")")
    if record.get("kind") == "import":
        return "none: an imported record (the source file holds no per-image areas)"
    return "none: a record written before the harness kept one"


def check_against_ledger(record: dict, where: Path) -> None:
    """The ledger the record names: its sha256, its image count, and the metrics its int64 sums give."""
    from harness.fileio import file_sha256
    from harness.ledger.store import metrics_percent, read_ledger

    named = record.get("ledger")
    if not isinstance(named, dict) or not named.get("file"):
        return          # imported, or older than the ledger: nothing to check (ledger_note says so)
    name = named["file"]
    file = where.parent / name
    if not file.is_file():
        raise ReproError(f"{where}: names the ledger {name} (sha256 recorded), which is not in its run directory",
                         fix="verify the run directory as the run left it")
    digest = file_sha256(file)
    if digest != named.get("sha256"):
        raise ReproError(f"{where}: its ledger {name} changed after the run (sha256 {digest[:12]}…, recorded "
                         f"{str(named.get('sha256'))[:12]}…)", fix=FIX)
    ledger = read_ledger(file)
    if named.get("images") is not None and ledger.num_images != named["images"]:
        raise ReproError(f"{where}: its ledger {name} holds {ledger.num_images} images, the record says "
                         f"{named['images']}", fix=FIX)
    classes = datasets.of_record(record).classes
    if ledger.num_classes != len(classes):
        raise ReproError(f"{where}: its ledger {name} has {ledger.num_classes} classes, its dataset "
                         f"{len(classes)}", fix=FIX)
    metrics, per_class = metrics_percent(ledger, classes)
    pairs = [(key, value, (record.get("metrics") or {}).get(key)) for key, value in metrics.items()]
    recorded = record.get("per_class") or {}
    pairs += [(f"{key} of '{cls}'", value, (recorded.get(cls) or {}).get(key))
              for cls, values in per_class.items() for key, value in values.items()]
    for key, summed, stated in pairs:
        stated = _number(stated)
        if (summed is None) != (stated is None) or (summed is not None and abs(summed - stated) > LEDGER_EPS):
            shown = "none" if stated is None else f"{stated:.6f}"
            sums = "none (no pixels)" if summed is None else f"{summed:.6f}"
            raise ReproError(f"{where}: {key} {shown} is not what its ledger {name} sums to ({sums}): the record "
                             f"is inconsistent", fix=FIX)


def check_consistency(record: dict, where: Path) -> None:
    """Refuse (ReproError, exit 2) a record whose summary disagrees with its per-class values, its eval JSON or
    its ledger."""
    check_summary_against_classes(record, where)
    check_against_eval_json(record, where)
    check_against_ledger(record, where)
