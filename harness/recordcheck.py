"""The one validator of a run record's shape (docs/result_record.md), called by the one reader
(harness.run.record.read_result, through its `_check_values`).

A result.json may come from someone else, so every command that reads one (`verify`, `report`, `compare`, `batch`,
`import` for what it writes) refuses the same bad record with the same line, exit 2, before any of them uses a
field. The rules are about types, not about judging the numbers (out-of-range and NaN values are the verdict's):

- the metrics (`metrics` values, every per-class value) are JSON numbers or null: never a string (`"59.77"`), a
  boolean, a list or an object; an integer too large for a float is refused too;
- `per_class` is `{class name: {"IoU": number|null, "Acc": number|null}}`;
- the identity fields (`reproduction`, `protocol`, `kind`, `status`) are strings without control characters;
- the objects the readers open (`checkpoint`, `dataset`, `launch`, `timing`, ...) are objects or null, and the
  fields they read from them (paths, hashes, seeds, curves) have the types the writers give them.

Example::

    >>> check_result({"schema": "repro.result/1", "reproduction": "x", "protocol": "ss", "kind": "eval",
    ...               "status": "succeeded", "metrics": {"mIoU": "59.77"}}, "run/result.json")
    Traceback (most recent call last):
    harness.recordcheck.RecordError: run/result.json: metrics.mIoU is the string '59.77', not a JSON number
"""
from __future__ import annotations

import math
import re
import unicodedata

from harness.errors import ReproError, printable

FIX = ("write it as docs/result_record.md says (numbers as JSON numbers); re-run the command that wrote it, or "
       "`repro import` the engine's own output")
IDENTITY = ("reproduction", "protocol", "kind", "status")
OBJECTS = ("metrics", "per_class", "checkpoint", "dataset", "launch", "environment", "timing", "artifacts",
           "overrides", "eval_json", "imported_from", "curves")
TEXTS = ("failure", "note", "imported_kind")
CHECKPOINT_TEXTS = ("path", "sha256", "source", "provenance", "released_sha256", "train_run", "sha256_origin")
READ_ARTIFACTS = ("gallery", "log", "log_json", "eval_json", "config", "console", "job", "show_dir")
CURVE_NUMBERS = ("iter", "step", "lr", "loss", "decode.loss_ce", "aux.loss_ce", "aAcc", "mIoU", "mAcc")


class RecordError(ReproError):
    """A result.json that does not have the documented shape."""

    def __init__(self, source: str, message: str):
        super().__init__(f"{source}: {message}", fix=FIX)


def _shown(value) -> str:
    text = repr(value)
    return printable(text if len(text) <= 40 else text[:37] + "…")


def _what(value) -> str:
    if isinstance(value, bool):
        return f"the boolean {str(value).lower()}"
    if isinstance(value, str):
        return f"the string {_shown(value)}"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    if value is None:
        return "null"
    return _shown(value)


def check_number(value, field: str, source: str, null: bool = True) -> None:
    """A JSON number (int or float, NaN/inf included: the verdict judges those), or null where allowed."""
    if value is None and null:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise RecordError(source, f"{field} is {_what(value)}, not a JSON number")
    if isinstance(value, int):
        try:
            float(value)
        except OverflowError:
            raise RecordError(source, f"{field} is an integer of {len(str(abs(value)))} digits, beyond any "
                                      f"metric") from None


def _text(value, field: str, source: str, null: bool = True) -> None:
    if value is None and null:
        return
    if not isinstance(value, str):
        raise RecordError(source, f"{field} is {_what(value)}, not a string")


def _identity(value, field: str, source: str) -> None:
    _text(value, field, source, null=False)
    if not value.strip():
        raise RecordError(source, f"{field} is empty")
    if any(unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp") for ch in value):
        raise RecordError(source, f"{field} {_shown(value)} holds control characters")


def _object(value, field: str, source: str) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise RecordError(source, f"{field} is {_what(value)}, not an object")
    return value


def _key(name: str) -> str:
    """A metric name as it is (`mIoU`), anything stranger as its repr."""
    return name if re.fullmatch(r"[A-Za-z][A-Za-z0-9_.-]{0,39}", name) else _shown(name)


def check_per_class(per_class: dict, source: str) -> None:
    for name, values in per_class.items():
        field = f"per_class[{_shown(name)}]"
        if not isinstance(values, dict):
            raise RecordError(source, f"{field} is {_what(values)}, not an object {{\"IoU\": …, \"Acc\": …}}")
        for metric, value in values.items():
            check_number(value, f"{field}.{_key(metric)}", source)


def _curves(curves: dict, source: str) -> None:
    for part in ("train", "val"):
        rows = curves.get(part)
        if rows is None:
            continue
        if not isinstance(rows, list):
            raise RecordError(source, f"curves.{part} is {_what(rows)}, not a list")
        for i, row in enumerate(rows):
            if not isinstance(row, dict):
                raise RecordError(source, f"curves.{part}[{i}] is {_what(row)}, not an object")
            for key in CURVE_NUMBERS:
                if key in row:
                    check_number(row[key], f"curves.{part}[{i}].{key}", source, null=key == "step")


def check_result(data: dict, source: str) -> None:
    """Refuse (RecordError: one line naming the field, exit 2) a record whose fields lack the documented types."""
    source = str(source)
    if not isinstance(data, dict):
        raise RecordError(source, f"the record is {_what(data)}, not a JSON object")
    for field in IDENTITY:
        if field not in data:
            raise RecordError(source, f"{field} is missing")
        _identity(data[field], field, source)
    for field in OBJECTS:
        _object(data.get(field), field, source)
    for field in TEXTS:
        _text(data.get(field), field, source)
    if data.get("seed") is not None and (isinstance(data["seed"], bool) or not isinstance(data["seed"], int)):
        raise RecordError(source, f"seed is {_what(data['seed'])}, not an integer")
    for name, value in (data.get("metrics") or {}).items():
        check_number(value, f"metrics.{_key(name)}", source)
    check_per_class(data.get("per_class") or {}, source)
    checkpoint = data.get("checkpoint") or {}
    for key in CHECKPOINT_TEXTS:
        _text(checkpoint.get(key), f"checkpoint.{key}", source)
    for key in ("path", "sha256"):
        _text((data.get("eval_json") or {}).get(key), f"eval_json.{key}", source)
    for key in READ_ARTIFACTS:
        _text((data.get("artifacts") or {}).get(key), f"artifacts.{key}", source)
    overrides = data.get("overrides") or {}
    _object(overrides.get("cfg_options"), "overrides.cfg_options", source)
    for key in ("precision", "engine"):
        if overrides.get(key) is not None and not isinstance(overrides[key], (str, int, float)):
            raise RecordError(source, f"overrides.{key} is {_what(overrides[key])}, not a string")
    for key in ("images_per_s", "peak_memory_mib", "wall_s"):
        check_number((data.get("timing") or {}).get(key), f"timing.{key}", source)
    _curves(data.get("curves") or {}, source)


def finite(value) -> bool:
    """A JSON number that is finite (what a metric must be to be compared)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
