"""Write expected/per_class.csv from the authors' eval JSONs (tests/data/eva02/eval_*.json).

The JSONs hold fractions with float32 artefacts (0.8266000366210937); mmseg printed them as percent rounded to
2 decimals (np.round(v * 100, 2)), which is what the published tables show, so that is what we store. The
summary values of each file are checked against expected/summary.csv (the README numbers) on the way.

    python tools/make_expected_per_class.py [--reference DIR]
"""
from __future__ import annotations

import argparse
import csv
import json
import math
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
FILES = {  # reference file -> (reproduction, protocol, source id in expected/sources.csv)
    "eval_eva02_B_sz512_ss.json": ("eva02_B_sz512", "ss", "eva02-eval-B512-ss"),
    "eval_eva02_L_sz512_ss.json": ("eva02_L_sz512", "ss", "eva02-eval-L512-ss"),
    "eval_eva02_L_sz512_ms.json": ("eva02_L_sz512", "ms", "eva02-eval-L512-ms"),
    "eval_eva02_L_sz640_ss.json": ("eva02_L_sz640", "ss", "eva02-eval-L640-ss"),
}


def to_percent(fraction: float) -> float:
    """0.8266000366210937 -> 82.66; refuse values that were not 4-decimal fractions to begin with."""
    value = round(fraction * 100, 2)
    if not math.isfinite(value) or abs(value - fraction * 100) > 1e-4:
        raise ValueError(f"{fraction!r} is not a 4-decimal fraction with float32 noise")
    return value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reference", type=Path, default=ROOT / "tests/data/eva02")
    args = parser.parse_args()
    import sys
    sys.path.insert(0, str(ROOT))
    from harness.registry import datasets
    from harness.verify.expected import TABLES_DATASET
    CLASSES = datasets.get(TABLES_DATASET).classes

    summary = pd.read_csv(ROOT / "expected/summary.csv", keep_default_na=False)
    rows = []
    for name, (reproduction, protocol, source) in FILES.items():
        metric = json.loads((args.reference / name).read_text())["metric"]
        for key in ("aAcc", "mIoU", "mAcc"):
            published = summary.query("reproduction == @reproduction and protocol == @protocol and metric == @key")
            if float(published["value"].iloc[0]) != to_percent(metric[key]):
                raise SystemExit(f"{name}: {key} {to_percent(metric[key])} differs from expected/summary.csv")
        for cls in CLASSES:
            for kind in ("IoU", "Acc"):
                rows.append({"reproduction": reproduction, "protocol": protocol, "class": cls, "metric": kind,
                             "value": to_percent(metric[f"{kind}.{cls}"]), "source": source})
    out = ROOT / "expected/per_class.csv"
    # quote strings so that 'bed ' keeps its trailing space through any CSV reader
    pd.DataFrame(rows).to_csv(out, index=False, quoting=csv.QUOTE_NONNUMERIC)
    print(f"wrote {len(rows)} rows to {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
