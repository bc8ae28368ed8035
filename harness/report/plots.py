"""The report's figures, drawn by matplotlib (Agg) and returned as PNG data URIs to embed in the HTML."""
from __future__ import annotations

import base64
import functools
import io
import math

from harness.curves.plot import band_chart

WORST = 30          # classes in the per-class chart
DELTA_ROWS = 30     # classes that lose most, in the Δ IoU chart
DELTA_GAINS = 10    # and those that gain most
PASS, FAIL, GREY = "#2e7d32", "#c62828", "#9e9e9e"


# Every text drawn (titles, class names, run names, reproduction ids) is plain text: a `$` in a name someone else
# chose is not mathtext (`$\\foo{$` would stop the report), and no TeX is run on it.
PLAIN_TEXT = {"text.parse_math": False, "text.usetex": False}


def _plain_text(chart):
    """Draw CHART (and save its figure) with PLAIN_TEXT in force: the one place that sets how text is parsed."""
    @functools.wraps(chart)
    def drawn(*args, **kwargs):
        import matplotlib

        with matplotlib.rc_context(PLAIN_TEXT):
            return chart(*args, **kwargs)
    return drawn


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _data_uri(fig) -> str:
    plt = _pyplot()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=96, bbox_inches="tight")
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def present(frame):
    """The classes the evaluated data holds: a class with no ground-truth pixels has no IoU/Acc (NaN)."""
    keep = frame["IoU"].notna()
    if "Acc" in frame:
        keep &= frame["Acc"].notna()
    return frame[keep]


@_plain_text
def per_class_chart(frame, title: str) -> str | None:
    """Obtained per-class IoU as bars, expected as markers, the worst classes (by Δ, else by IoU) at the top."""
    plt = _pyplot()
    rows = present(frame).head(WORST).iloc[::-1]
    if rows.empty:
        return None
    has_expected = rows["IoU_expected"].notna().any()
    fig, ax = plt.subplots(figsize=(7.5, 0.24 * len(rows) + 1.2))
    colors = [FAIL if s == "fail" else (PASS if s == "pass" else GREY) for s in rows["status"]]
    labels = [name.strip() for name in rows["class"]]
    ax.barh(labels, rows["IoU"].fillna(0), color=colors, height=0.7, label="obtained IoU")
    if has_expected:
        ax.scatter(rows["IoU_expected"], labels, marker="|", s=160, color="black", zorder=3, label="expected IoU")
        for y, (value, want, delta) in enumerate(zip(rows["IoU"], rows["IoU_expected"], rows["IoU_delta"])):
            if not (math.isnan(value) or math.isnan(delta)):
                value = max(value, want)
                text = f"{delta:+.2f}"
                ax.text(min(value, 100) + 1, y, "0.00" if text in ("+0.00", "-0.00") else text, va="center", fontsize=7)
    ax.set_xlim(0, 108)
    ax.set_xlabel("IoU (%)")
    which = "largest drop vs expected" if has_expected else "lowest IoU"
    ax.set_title(f"{title}: {len(rows)} classes with the {which} first", fontsize=10)
    ax.legend(loc="lower right", fontsize=7)
    ax.tick_params(axis="y", labelsize=7)
    ax.grid(axis="x", alpha=0.3)
    return _data_uri(fig)


@_plain_text
def delta_chart(frame, title: str) -> str | None:
    """Δ IoU against the published per-class values, the classes that lose most first (absent classes left out);
    None without published per-class values."""
    import pandas as pd

    plt = _pyplot()
    compared = present(frame)
    compared = compared[compared["IoU_expected"].notna()].sort_values(["IoU_delta", "index"])
    if compared.empty:
        return None
    losses = compared.head(DELTA_ROWS)
    gains = compared[compared["IoU_delta"] > 0].drop(losses.index, errors="ignore").tail(DELTA_GAINS)
    rows = pd.concat([losses, gains]).iloc[::-1]
    labels = [name.strip() for name in rows["class"]]
    deltas = rows["IoU_delta"].round(2)
    fig, ax = plt.subplots(figsize=(7.5, 0.22 * len(rows) + 1.3))
    ax.barh(labels, deltas, color=[FAIL if d < 0 else PASS for d in deltas], height=0.7)
    ax.axvline(0, color="black", linewidth=0.8)
    span = max(1.0, float(deltas.abs().max()))
    for y, d in enumerate(deltas):
        ax.text(d + (0.02 * span if d >= 0 else -0.02 * span), y, f"{d:+.2f}", va="center",
                ha="left" if d >= 0 else "right", fontsize=7)
    ax.set_xlim(-span * 1.25, span * 1.25)
    ax.set_xlabel("Δ IoU (points): obtained − published")
    shown = f"the {len(losses)} largest losses" + (f" and {len(gains)} largest gains" if len(gains) else "")
    ax.set_title(f"{title}: {shown} of {len(compared)} classes present", fontsize=10)
    ax.tick_params(axis="y", labelsize=7)
    ax.grid(axis="x", alpha=0.3)
    return _data_uri(fig)


@_plain_text
def training_curves(curves: dict, title: str) -> str:
    """Loss, learning rate and validation mIoU over iterations."""
    plt = _pyplot()
    train, val = curves.get("train") or [], curves.get("val") or []
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.2))
    iters = [r["iter"] for r in train if "iter" in r]
    for key, style in (("loss", "-"), ("decode.loss_ce", "--"), ("aux.loss_ce", ":")):
        points = [(r["iter"], r[key]) for r in train if key in r and "iter" in r]
        if points:
            axes[0].plot(*zip(*points), style, label=key, marker="." if len(points) < 30 else None)
    axes[0].set_title("loss")
    axes[0].legend(fontsize=7)
    points = [(r["iter"], r["lr"]) for r in train if "lr" in r and "iter" in r]
    if points:
        axes[1].plot(*zip(*points), marker="." if len(points) < 30 else None)
        axes[1].ticklabel_format(axis="y", style="sci", scilimits=(-3, 3))
    axes[1].set_title("learning rate")
    points = [(r["step"], r["mIoU"]) for r in val if r.get("step") is not None and "mIoU" in r]
    if points:
        axes[2].plot(*zip(*points), marker="o")
    else:
        axes[2].text(0.5, 0.5, "no evaluation logged", ha="center", va="center", transform=axes[2].transAxes)
    axes[2].set_title("val mIoU (%)")
    for ax in axes:
        ax.set_xlabel("iteration")
        ax.grid(alpha=0.3)
        if iters:
            ax.set_xlim(0, max(iters) * 1.05)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    return _data_uri(fig)


@_plain_text
def compare_chart(pages, expected) -> str | None:
    """mIoU of each run with the expected value and its tolerance band."""
    plt = _pyplot()
    values = [((p.record.get("metrics") or {}).get("mIoU"), p) for p in pages]
    values = [(v, p) for v, p in values if isinstance(v, (int, float))]
    if not values:
        return None
    fig, ax = plt.subplots(figsize=(7.5, 0.45 * len(values) + 1.4))
    labels = [f"{p.title} · {p.run_dir.name}" for _, p in values]
    colors = [PASS if p.state == "pass" else FAIL if p.state == "fail" else GREY for _, p in values]
    ax.scatter([v for v, _ in values], labels, color=colors, s=60, zorder=3)
    for y, (_, page) in enumerate(values):
        if page.verdict is None:
            continue
        head = next((c for c in page.verdict.checks if c.metric == "mIoU" and c.group == "metrics"), None)
        if head and head.expected is not None:
            tol = head.tolerance or 0
            ax.plot([head.expected - tol, head.expected + tol], [y, y], color="black", alpha=0.3, linewidth=8)
            ax.plot([head.expected], [y], marker="|", color="black", markersize=14)
    ax.set_xlabel("mIoU (%) — grey band: expected ± tolerance")
    ax.grid(axis="x", alpha=0.3)
    ax.tick_params(axis="y", labelsize=8)
    return _data_uri(fig)


@_plain_text
def compare_curves(pages) -> str | None:
    """Loss of every run that has curves, on one plot."""
    plt = _pyplot()
    with_curves = [p for p in pages if p.curves and p.curves.get("train")]
    if not with_curves:
        return None
    fig, ax = plt.subplots(figsize=(7.5, 3.2))
    for page in with_curves:
        points = [(r["iter"], r["loss"]) for r in page.curves["train"] if "loss" in r]
        if points:
            ax.plot(*zip(*points), label=f"{page.title} · {page.run_dir.name}")
    ax.set_xlabel("iteration")
    ax.set_ylabel("loss")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    return _data_uri(fig)


@_plain_text
def early_verdict_chart(watch: dict) -> str | None:
    """The early verdict's chart (harness/curves/plot.py: the run's loss and mIoU over the references' band, the first
    off-track point marked) as a data URI; None when it has no loss or mIoU points."""
    png = band_chart(watch)
    return None if png is None else "data:image/png;base64," + base64.b64encode(png).decode("ascii")
