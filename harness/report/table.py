"""`repro compare` on the console: one line per run with its summary metrics, the expected mIoU and the verdict."""
from __future__ import annotations

from harness.console import printable
from harness.ledger.runs import format_delta, signed
from harness.verify.expected import SUMMARY_METRICS

HEADER = ("run", *SUMMARY_METRICS, "expected mIoU", "Δ mIoU", "verdict")


def _number(value) -> str:
    return "—" if not isinstance(value, (int, float)) else f"{value:.2f}"


def _row(page) -> tuple[str, ...]:
    metrics = page.record.get("metrics") or {}
    miou = next((row for row in page.summary if row["metric"] == "mIoU"), {})
    obtained, expected = metrics.get("mIoU"), miou.get("expected")
    delta = obtained - expected if all(isinstance(v, (int, float)) for v in (obtained, expected)) else None
    verdict = {"pass": "PASS", "fail": "FAIL"}.get(page.state, "not verified")
    return (f"{page.title} · {page.run_dir.name}", *(_number(metrics.get(m)) for m in SUMMARY_METRICS),
            _number(expected), "—" if delta is None else f"{delta:+.2f}", verdict)


def comparison_lines(pages) -> list[str]:
    """The runs side by side as aligned text: names left, numbers right; a run without a verdict says so."""
    rows = [HEADER, *(tuple(printable(cell) for cell in _row(page)) for page in pages)]
    widths = [max(len(row[i]) for row in rows) for i in range(len(HEADER))]
    return ["  ".join(cell.ljust(w) if i in (0, len(HEADER) - 1) else cell.rjust(w)
                      for i, (cell, w) in enumerate(zip(row, widths))).rstrip() for row in rows]


def paired_lines(pairs) -> list[str]:
    """The paired part of `repro compare` (harness.ledger.runs.Pair per run after the first): Δ with its paired
    bootstrap interval, the classes and images that moved most; or why a run is not paired."""
    if not pairs:
        return []
    lines = ["", "paired over the same val images, each run against the first (Δ = run − first, "
                 "95 % paired bootstrap over images):"]
    for pair in pairs:
        lines.append(f"{pair.other}:")
        if pair.paired is None:
            lines.append(f"  not paired: {pair.why_not}")
            continue
        p = pair.paired
        cells = [f"Δ {m} {format_delta(p.delta[m].value, p.delta[m].lo, p.delta[m].hi)}"
                 f"{' excludes 0' if p.delta[m].excludes_zero else ''}" for m in p.delta]
        lines.append(f"  {p.images} images, {p.resamples} resamples, seed {p.seed}: " + "; ".join(cells))
        classes = pair.top_classes()
        if classes:
            lines.append("  classes: " + ", ".join(
                f"{r['class']} {format_delta(r['delta'], r['lo'], r['hi'])}" for r in classes))
        if pair.moved:
            lines.append("  images moved most (Δ pixel acc., Δ image mIoU): " + ", ".join(
                f"{m['image']} {signed(m['delta_acc'])} {signed(m['delta_miou'])}" for m in pair.moved[:5]))
        else:
            lines.append("  no image moved: the ledgers hold the same counts")
    return [printable(line) for line in lines]      # run, class and image names come from files
