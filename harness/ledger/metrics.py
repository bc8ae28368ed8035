"""mmseg 0.29.1's metrics from summed area histograms, in numpy (no torch): `total_area_to_metrics` and the summary
`CustomDataset.evaluate` makes of it.

The arithmetic is mmseg's, operation for operation, in float64 on the exact integer totals of a ledger:

- aAcc = Σ intersect / Σ label;
- mIoU: IoU = intersect / union, Acc = intersect / label;
- mDice: Dice = 2 · intersect / (pred + label), Acc as above;
- mFscore: Precision = intersect / pred, Recall = intersect / label, Fscore = (1 + β²) · (P · R) / (β² · P + R)
  with β = 1 (mmseg's default);

a class with a zero denominator gets NaN (0/0), as in mmseg, and the summary is `nanmean` over the classes, so
such a class is left out; `nan_to_num` replaces NaN per class first, as mmseg's argument of that name does.

Example::

    >>> per_class = total_area_to_metrics(*ledger.totals().values(), metrics=["mIoU", "mDice"])
    >>> summary_percent(per_class)     # {"aAcc": 83.1, "mIoU": 59.8, "mAcc": 71.2, "mDice": 72.4}
"""
from __future__ import annotations

import math
import warnings
from collections import OrderedDict

import numpy as np

ALLOWED = ("mIoU", "mDice", "mFscore")
PER_CLASS = {"mIoU": ("IoU", "Acc"), "mDice": ("Dice", "Acc"), "mFscore": ("Fscore", "Precision", "Recall")}


class UnknownMetric(KeyError):
    """A metric name mmseg does not compute (mmseg raises KeyError too)."""


def f_score(precision, recall, beta: float = 1):
    """mmseg.core.evaluation.metrics.f_score."""
    return (1 + beta ** 2) * (precision * recall) / ((beta ** 2 * precision) + recall)


def total_area_to_metrics(total_area_intersect, total_area_union, total_area_pred_label, total_area_label,
                          metrics=("mIoU",), nan_to_num: float | None = None, beta: float = 1) -> OrderedDict:
    """mmseg.core.evaluation.metrics.total_area_to_metrics on numpy arrays: {'aAcc': scalar, 'IoU': (C,), ...}."""
    if isinstance(metrics, str):
        metrics = [metrics]
    unknown = [m for m in metrics if m not in ALLOWED]
    if unknown:
        raise UnknownMetric(f"metrics {list(metrics)} is not supported")
    inter, union, pred, label = (np.asarray(a, dtype=np.float64) for a in
                                 (total_area_intersect, total_area_union, total_area_pred_label, total_area_label))
    with np.errstate(divide="ignore", invalid="ignore"):
        ret = OrderedDict({"aAcc": np.float64(inter.sum() / label.sum())})
        for metric in metrics:
            if metric == "mIoU":
                ret["IoU"] = inter / union
                ret["Acc"] = inter / label
            elif metric == "mDice":
                ret["Dice"] = 2 * inter / (pred + label)
                ret["Acc"] = inter / label
            elif metric == "mFscore":
                precision = inter / pred
                recall = inter / label
                ret["Fscore"] = f_score(precision, recall, beta)
                ret["Precision"] = precision
                ret["Recall"] = recall
    if nan_to_num is not None:
        ret = OrderedDict({name: np.nan_to_num(value, nan=nan_to_num) for name, value in ret.items()})
    return ret


def summary_percent(per_class: dict) -> dict[str, float | None]:
    """What `CustomDataset.evaluate` prints, unrounded: aAcc, and 'm' + each per-class metric as the nanmean over
    classes, in percent (None when every class is NaN)."""
    out = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)     # nanmean of all-NaN
        for name, value in per_class.items():
            mean = float(value) if name == "aAcc" else float(np.nanmean(value))
            out[name if name == "aAcc" else f"m{name}"] = None if math.isnan(mean) else mean * 100
    return out


def rescore_totals(totals: dict[str, np.ndarray], metrics, class_names) -> dict:
    """{"metrics": summary in percent, "per_class": {class: {IoU/Acc/Dice/...: percent or None}}} of the totals."""
    per_class = total_area_to_metrics(totals["intersect"], totals["union"], totals["pred"], totals["label"],
                                      metrics=list(metrics))
    names = [str(n) for n in class_names]
    table = {name: {} for name in names}
    for metric, values in per_class.items():
        if metric == "aAcc":
            continue
        for name, value in zip(names, np.asarray(values).tolist()):
            table[name][metric] = None if math.isnan(value) else value * 100
    return {"metrics": summary_percent(per_class), "per_class": table}
