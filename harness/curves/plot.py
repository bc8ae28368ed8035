"""The early verdict as a figure: the run's smoothed loss and mIoU over the references' values and band, the first
off-track point marked. PNG bytes (matplotlib, Agg); `repro watch` writes it beside watch.json as watch.png, and a
report can embed it."""
from __future__ import annotations

import io

RUN, REF, BAND, OFF = "#1565c0", "#757575", "#c8e6c9", "#c62828"


def band_chart(report: dict) -> bytes | None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [name for name in ("loss", "mIoU") if any(name in p["checks"] for p in report["points"])]
    if not panels:
        return None
    fig, axes = plt.subplots(1, len(panels), figsize=(5.5 * len(panels), 3.6), squeeze=False)
    first = report.get("first_off_track")
    for ax, name in zip(axes[0], panels):
        pts = [(p["iter"], p["checks"][name]) for p in report["points"] if name in p["checks"]]
        banded = [(it, c["band"]) for it, c in pts if c.get("band")]
        if banded:
            ax.fill_between([it for it, _ in banded], [b[0] for _, b in banded], [b[1] for _, b in banded],
                            color=BAND, label="references' band")
        for it, c in pts:
            ax.scatter([it] * len(c.get("references", [])), c.get("references", []), s=8, color=REF)
        ax.plot([it for it, _ in pts], [c["value"] for _, c in pts], color=RUN, marker="o", ms=3,
                label="this run" + (" (smoothed)" if name == "loss" else ""))
        if first is not None:
            ax.axvline(first["iter"], color=OFF, ls="--", lw=1, label=f"first off track (iter {first['iter']})")
        ax.set_xlabel("iteration (optimizer steps)")
        ax.set_ylabel("smoothed loss" if name == "loss" else "mIoU (%)")
        ax.legend(fontsize=7)
    fig.suptitle(f"early verdict: {report['verdict'][:110]}", fontsize=8)
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=96, bbox_inches="tight")
    plt.close(fig)
    return buffer.getvalue()
