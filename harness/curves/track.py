"""On track, off track or inconclusive, at every logged iteration and every evaluation point of a run.

The checks, each against the references at the same iteration (optimizer steps):

- **lr** (exact): the run's lr of the first param group equals each reference's within relative 1e-4, or within
  the rounding of what the two logs wrote if that is coarser (a `.log.json` rounds to 5 decimals, a text log
  prints 4 significant digits; the harness's own hook writes lr unrounded). A reference that did not log lr at
  that iteration makes it inconclusive.
- **loss** (band): the total loss smoothed by a trailing mean over the last 5 logged points of each curve (mmcv's
  logged loss is already the mean over its log interval), the references' smoothed curves read at the run's
  iteration by linear interpolation between their logged points (never beyond them).
- **mIoU** (band): at each evaluation point, against the references' evaluations at the same iteration.

The band, with n ≥ 2 references: [min − k·s, max + k·s] of the references' values, k = 3, where s is the
larger of their sample standard deviation at that point and the root-mean-square of that standard deviation over
all the points the references share (their whole curves, known in advance): two references that agree at one
point by chance (a demo's mIoU of 0.1 and 0.01 after 8 steps) do not make a razor-thin band. With one
reference there is no spread to learn from: the curve is shown and the answer is `inconclusive` for loss and
mIoU; lr and the setup check stay exact.

A point's answer is `off track (first at iter N: ...)` if any check is off track (N: the run's first off-track
point), else `inconclusive (...)` if any check could not be made, else `on track`.
"""
from __future__ import annotations

import math
from statistics import stdev

from harness.curves import logs

LR_RTOL = 1e-4
SMOOTH_POINTS = 5
BAND_K = 3.0
BAND_RULE = (f"[min − {BAND_K:g}·s, max + {BAND_K:g}·s] of the references' values, s = max(their sample std at "
             f"the point, its RMS over all the points they share); one reference: inconclusive")
SMOOTHING = f"trailing mean of the last {SMOOTH_POINTS} logged losses of each curve; references interpolated " \
            f"linearly at the run's iteration"


def smoothed(points: list[logs.TrainPoint]) -> list[tuple[int, float]]:
    out, window = [], []
    for p in points:
        if p.loss is None or not math.isfinite(p.loss):
            continue
        window = (window + [p.loss])[-SMOOTH_POINTS:]
        out.append((p.iter, sum(window) / len(window)))
    return out


def _interpolate(curve: list[tuple[int, float]], it: int) -> float | None:
    for (i0, v0), (i1, v1) in zip(curve, curve[1:]):
        if i0 <= it <= i1:
            return v0 if i1 == i0 else v0 + (v1 - v0) * (it - i0) / (i1 - i0)
    if curve and curve[-1][0] == it:
        return curve[-1][1]
    return None


def _fmt(value: float) -> str:
    return f"{value:.4g}"


def check_lr(point: logs.TrainPoint, references) -> dict:
    compared = []
    for ref in references:
        twin = next((p for p in ref.log.train if p.iter == point.iter and p.lr is not None), None)
        if twin is None:
            continue
        tolerance = max(LR_RTOL * abs(twin.lr), twin.lr_resolution + point.lr_resolution)
        compared.append((ref, twin, abs(point.lr - twin.lr) <= tolerance, tolerance))
    if not compared:
        return {"answer": "inconclusive", "reason": f"no reference logged lr at iter {point.iter}",
                "value": point.lr}
    bad = [(ref, twin, tol) for ref, twin, ok, tol in compared if not ok]
    if bad:
        ref, twin, tol = bad[0]
        return {"answer": "off track", "value": point.lr, "reference": twin.lr,
                "reason": f"lr {_fmt(point.lr)} vs {_fmt(twin.lr)} in {ref.label} (tolerance {tol:.1e})"}
    return {"answer": "on track", "value": point.lr, "reference": compared[0][1].lr,
            "reason": f"lr equals {len(compared)} reference(s)"}


class Band:
    """The band rule of the module docstring for one check (loss or mIoU), keeping its per-point spreads."""

    def __init__(self, what: str, shared: list[list[float]]):
        """shared: the references' values at each point they all share (for the pooled spread)."""
        self.what = what
        spreads = [stdev(values) for values in shared if len(values) >= 2]
        self.pooled = math.sqrt(sum(x * x for x in spreads) / len(spreads)) if spreads else 0.0

    def judge(self, value: float, refs: list[tuple[object, float]], it: int) -> dict:
        values = [v for _, v in refs]
        out = {"value": value, "references": values}
        if not values:
            return out | {"answer": "inconclusive", "reason": f"no reference has {self.what} at iter {it}"}
        if len(values) == 1:
            return out | {"answer": "inconclusive",
                          "reason": f"one reference ({_fmt(values[0])} at iter {it}): no spread to set a band"}
        s = max(stdev(values), self.pooled)
        low, high = min(values) - BAND_K * s, max(values) + BAND_K * s
        out |= {"band": [low, high]}
        if low <= value <= high:
            return out | {"answer": "on track", "reason": f"{self.what} {_fmt(value)} in [{_fmt(low)}, {_fmt(high)}]"}
        side = "below" if value < low else "above"
        return out | {"answer": "off track",
                      "reason": f"{self.what} {_fmt(value)} {side} the band [{_fmt(low)}, {_fmt(high)}] of "
                                f"{len(values)} references"}


def judge(run: logs.TrainingLog, references: list, max_iters: int | None = None) -> dict:
    """Every point of the run, judged; the verdict so far; the cost (harness/curves/cost.py)."""
    from harness.curves import cost

    ref_loss = [(ref, smoothed(ref.log.train)) for ref in references]
    shared_loss = [[v for _, curve in ref_loss if (v := _interpolate(curve, it)) is not None]
                   for it, _ in (ref_loss[0][1] if ref_loss else [])]
    ref_evals = [{v.iter: v.metrics["mIoU"] for v in ref.log.val if "mIoU" in v.metrics} for ref in references]
    shared_miou = [[e[it] for e in ref_evals if it in e] for it in sorted({i for e in ref_evals for i in e})]
    loss_band = Band("smoothed loss", [v for v in shared_loss if len(v) == len(references)])
    miou_band = Band("mIoU", [v for v in shared_miou if len(v) == len(references)])
    run_loss = dict(smoothed(run.train))
    evals = {v.iter: v for v in run.val}
    iterations = sorted({p.iter for p in run.train} | set(evals))
    train_at = {p.iter: p for p in run.train}
    points, first_off = [], None
    for it in iterations:
        checks = {}
        point = train_at.get(it)
        if point is not None and point.lr is not None:
            checks["lr"] = check_lr(point, references)
        if it in run_loss:
            refs = [(ref, v) for ref, curve in ref_loss if (v := _interpolate(curve, it)) is not None]
            checks["loss"] = loss_band.judge(run_loss[it], refs, it)
        if it in evals and "mIoU" in evals[it].metrics:
            refs = [(ref, v.metrics["mIoU"]) for ref in references for v in ref.log.val
                    if v.iter == it and "mIoU" in v.metrics]
            checks["mIoU"] = miou_band.judge(evals[it].metrics["mIoU"], refs, it)
        entry = {"iter": it, "kind": "eval" if it in evals else "log", "checks": checks}
        off = [f"{name}: {c['reason']}" for name, c in checks.items() if c["answer"] == "off track"]
        unsure = [f"{name}: {c['reason']}" for name, c in checks.items() if c["answer"] == "inconclusive"]
        if off:
            if first_off is None:
                first_off = {"iter": it, "reason": "; ".join(off), "kind": entry["kind"]}
            entry["answer"] = f"off track (first at iter {first_off['iter']}: {first_off['reason']})"
        elif unsure or not checks:
            entry["answer"] = f"inconclusive ({'; '.join(unsure) or 'nothing to compare'})"
        else:
            entry["answer"] = "on track"
        points.append(entry)
    return {"points": points, "first_off_track": first_off, "verdict": verdict(points, first_off),
            "band_rule": BAND_RULE, "smoothing": SMOOTHING, "lr_tolerance": f"relative {LR_RTOL:g}, or the logs' "
            f"rounding if coarser", "references": [r.record() for r in references],
            "cost": cost.estimate(run, max_iters)}


def verdict(points: list[dict], first_off: dict | None) -> str:
    if not points:
        return "inconclusive (no logged point yet)"
    if first_off is not None:
        return f"off track (first at iter {first_off['iter']}: {first_off['reason']})"
    unsure = sorted({name for p in points for name, c in p["checks"].items() if c["answer"] == "inconclusive"})
    checked = sorted({name for p in points for name, c in p["checks"].items() if c["answer"] == "on track"})
    if unsure:
        return (f"on track for {', '.join(checked)}; " if checked else "") + \
            f"inconclusive for {', '.join(unsure)} (see the points' reasons)"
    return f"on track ({', '.join(checked)} at {len(points)} points)"


def off_track_eval(report: dict) -> dict | None:
    """The first evaluation point whose answer is off track (what --stop-when-off-track stops at)."""
    return next((p for p in report["points"] if p["kind"] == "eval" and p["answer"].startswith("off track")), None)
