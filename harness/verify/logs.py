"""Reading mmseg 0.29.1 / mmcv 1.x logs: `*.log.json` (TextLoggerHook), the text log, and its printed tables.

Formats (ade20k_mmseg.md §2 and §5):

- log.json: one JSON object a line. The first is runner.meta (env_info, seed, exp_name, ...). Train lines have
  mode "train", iter, lr (rounded to 5 decimals, so 0.0 during warm-up), loss, decode.loss_ce, ...; val lines have
  mode "val" with aAcc/mIoU/mAcc/IoU.<cls>/Acc.<cls> as fractions and an `iter` that is the val-set length, so
  their step is the preceding train line's iter.
- text log: `Iter [50/60000]\tlr: 2.368e-07, eta: ..., loss: 5.7584` (lr with 4 significant digits),
  `Iter(val) [2000]\taAcc: 0.8541, mIoU: ...`, and the PrettyTables printed by `evaluate` ("per class results:"
  then "Summary:"), values in percent.
"""
from __future__ import annotations

import io
import json
import math
import re
from pathlib import Path

TRAIN_LINE = re.compile(r"Iter \[(\d+)/(\d+)\]\t(.*)$")
VAL_LINE = re.compile(r"Iter\(val\) \[(\d+)\]\t(.*)$")


def _number(text: str):
    try:
        return float(text)
    except ValueError:
        return text.strip()


def read_log_json(path: Path) -> tuple[dict, list[dict], list[dict]]:
    """(meta, train rows, val rows) of an mmcv `*.log.json`; val rows get `step` from the preceding train line."""
    meta, train, val = {}, [], []
    last_iter = None
    for number, line in enumerate(Path(path).read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
        except json.JSONDecodeError as exc:
            from harness.errors import ReproError
            raise ReproError(f"{path}: line {number} is not JSON ({exc.msg})", fix="pass an mmcv *.log.json unchanged") from exc
        mode = entry.get("mode")
        if mode == "train":
            last_iter = entry.get("iter")
            train.append(entry)
        elif mode == "val":
            val.append({**entry, "step": last_iter})
        elif not train and not val:
            meta.update(entry)
    return meta, train, val


def _pairs(text: str) -> dict:
    out = {}
    for part in text.split(", "):
        key, sep, value = part.partition(": ")
        if sep:
            out[key.strip()] = _number(value)
    return out


def read_text_log(path: Path) -> dict:
    """Train/val lines, the environment block and the last printed per-class and summary tables of a text log."""
    lines = Path(path).read_text(errors="replace").splitlines()
    train, val, env = [], [], {}
    last_iter = None
    for line in lines:
        match = TRAIN_LINE.search(line)
        if match:
            last_iter = int(match.group(1))
            train.append({"iter": last_iter, "max_iters": int(match.group(2)), **_pairs(match.group(3))})
            continue
        match = VAL_LINE.search(line)
        if match:
            val.append({"iter": int(match.group(1)), "step": last_iter, **_pairs(match.group(2))})
    if any("Environment info:" in line for line in lines):
        start = next(i for i, line in enumerate(lines) if "Environment info:" in line)
        env = parse_env_info("\n".join(lines[start + 2:start + 80]).split("-" * 20)[0])
    per_class, summary = _last_tables(lines)
    return {"train": train, "val": val, "environment": env, "per_class": per_class, "summary": summary}


def parse_env_info(text: str) -> dict:
    """'Key: value' lines of mmcv's collect_env block (PyTorch, MMCV, GPU 0,1: ...) as a dict."""
    env = {}
    for line in text.splitlines():
        if line.startswith((" ", "\t", "-")) or ": " not in line:
            continue
        key, _, value = line.partition(": ")
        env[key.strip()] = value.strip()
    return env


def _table(lines: list[str]):
    """A PrettyTable (default borders) as a DataFrame of strings; pandas splits the cells on '|'."""
    import pandas as pd

    body = [line.strip() for line in lines if line.strip().startswith("|")]
    if not body:
        return None
    frame = pd.read_csv(io.StringIO("\n".join(body)), sep="|", dtype=str, keep_default_na=False)
    frame = frame.drop(columns=[c for c in frame.columns if c.startswith("Unnamed")])
    frame.columns = [c.strip() for c in frame.columns]
    return frame.apply(lambda col: col.str.strip())


def _block_after(lines: list[str], start: int) -> list[str]:
    """The table lines (+---, |...|) that follow line `start`, up to the first line that is neither."""
    block, seen = [], False
    for line in lines[start + 1:]:
        stripped = line.strip()
        if stripped.startswith(("+", "|")):
            block.append(stripped)
            seen = True
        elif seen or stripped:
            break
    return block


def _last_tables(lines: list[str]):
    per_class = summary = None
    starts = [i for i, line in enumerate(lines) if line.rstrip().endswith("per class results:")]
    if starts:
        per_class = _table(_block_after(lines, starts[-1]))
    starts = [i for i, line in enumerate(lines) if line.rstrip().endswith("Summary:")]
    if starts:
        summary = _table(_block_after(lines, starts[-1]))
    return per_class, summary


def to_float(text) -> float:
    """'82.66' -> 82.66, 'nan' -> nan; anything else -> nan."""
    try:
        return float(text)
    except (TypeError, ValueError):
        return math.nan


def curves(train_json: list[dict] | None, train_text: list[dict] | None, val: list[dict] | None) -> dict:
    """{"train": [{iter, lr, loss, ...}], "val": [{step, aAcc, mIoU, mAcc}]}, one train row per logged iteration.

    Rows come from log.json when there is one; the text log's lr (4 significant digits) replaces log.json's
    (5 decimals, 0.0 during warm-up) where both have the iteration.
    """
    text_by_iter = {row["iter"]: row for row in train_text or []}
    keys = ("iter", "lr", "loss", "decode.loss_ce", "aux.loss_ce", "decode.acc_seg", "aux.acc_seg", "time",
            "data_time", "memory")
    rows = []
    for row in (train_json if train_json else train_text) or []:
        out = {k: row[k] for k in keys if k in row and isinstance(row[k], (int, float))}
        text_row = text_by_iter.get(row.get("iter"))
        if text_row and isinstance(text_row.get("lr"), float):
            out["lr"] = text_row["lr"]
            out["lr_source"] = "text log"
        elif "lr" in out:
            out["lr_source"] = "log.json"
        rows.append(out)
    val_rows = []
    for row in val or []:
        entry = {"step": row.get("step")}
        for metric in ("aAcc", "mIoU", "mAcc"):
            value = row.get(metric)
            if isinstance(value, (int, float)):
                entry[metric] = value * 100  # val lines hold fractions
        val_rows.append(entry)
    return {"train": rows, "val": val_rows}
