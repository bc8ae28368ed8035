"""`repro compare` on the console: one line per run with its summary metrics, the expected mIoU and the verdict."""
from __future__ import annotations

from harness.console import printable
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
