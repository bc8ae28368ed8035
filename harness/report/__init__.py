"""`repro report`: self-contained HTML from run records (+ their verdict), one page per run, an index and a comparison.

Pages are rendered with jinja2 (templates/), figures with matplotlib (Agg) embedded as PNG data URIs; CSS and the
small table-sorting script are inline, so a page opens offline from any folder. Tables are joined with pandas.

Example::

    >>> from harness.report import write_reports
    >>> write_reports(["runs/eva02_L_sz512/ss/20260101T120000Z"], Path("reports"))
    PosixPath('reports/index.html')
"""
from __future__ import annotations

import html
import json
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from harness.errors import ReproError
from harness.report import gallery, paired, plots
from harness.report.files import Skipped, run_file
from harness.run.folder import RESULT_FILE
from harness.run.record import read_result
from harness.run.settle import settle
from harness.verify import logs
from harness.verify.compare import Verdict, group_statistics, load_run, verify_runs
from harness.verify.expected import SUMMARY_METRICS, load_expected
from harness.verify.provenance import describe_overrides

if TYPE_CHECKING:
    import pandas as pd

TEMPLATES = Path(__file__).parent / "templates"


@dataclass
class RunPage:
    path: Path                      # result.json
    record: dict
    verdict: Verdict | None = None
    error: str | None = None        # why there is no verdict
    file: str = ""                  # page file name
    summary: list[dict] = field(default_factory=list)
    per_class: pd.DataFrame | None = None
    curves: dict | None = None
    notes: list[str] = field(default_factory=list)     # files of the run the page leaves out, and why

    @property
    def run_dir(self) -> Path:
        return self.path.parent

    @property
    def title(self) -> str:
        return f"{self.record.get('reproduction')} {self.record.get('protocol')}"

    @property
    def state(self) -> str:
        if self.verdict is None:
            return "none"
        return "pass" if self.verdict.passed else "fail"

    @property
    def lines(self) -> list[str]:
        if self.verdict is None:
            return [f"{self.title}: not verified — {self.error}"]
        return self.verdict.lines()


def _environment():
    from jinja2 import Environment, FileSystemLoader, select_autoescape

    env = Environment(loader=FileSystemLoader(str(TEMPLATES)), autoescape=select_autoescape(["html", "j2"]),
                      trim_blocks=True, lstrip_blocks=True)
    env.filters["num"] = lambda v, d=2: "—" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.{d}f}"
    env.filters["delta"] = _signed
    env.filters["sortv"] = lambda v: "" if v is None or (isinstance(v, float) and math.isnan(v)) else repr(float(v))
    env.filters["tojson_pretty"] = lambda v: json.dumps(v, indent=2, default=str)
    return env


def _signed(value) -> str:
    """+0.12 / -0.30; '—' for missing; never '-0.00'."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "—"
    text = f"{value:+.2f}"
    return "0.00" if text in ("+0.00", "-0.00") else text


def _result_path(path: Path) -> Path:
    path = Path(path)
    return (path / RESULT_FILE if path.is_dir() else path).resolve()


def _page_name(record: dict, path: Path, taken: set[str]) -> str:
    base = re.sub(r"[^A-Za-z0-9_.-]+", "_", f"{record.get('reproduction')}_{record.get('protocol')}_{path.parent.name}")
    name, n = f"{base}.html", 1
    while name in taken:
        n += 1
        name = f"{base}-{n}.html"
    taken.add(name)
    return name


def read_curves(record: dict, run_dir: Path, notes: list[str] | None = None) -> dict | None:
    """Training curves: the record's own `curves` (imports), else its log.json (+ text log for the exact lr); a log
    named outside the run folder is skipped with a note (harness/report/files.py)."""
    if record.get("curves") and record["curves"].get("train"):
        return record["curves"]
    notes = notes if notes is not None else []
    artifacts = record.get("artifacts") or {}

    def inside(key: str) -> Path | None:
        if not artifacts.get(key) or not (run_dir / artifacts[key]).exists():
            return None
        try:
            return run_file(run_dir, artifacts[key], key)
        except Skipped as skipped:
            notes.append(str(skipped))
            return None

    log_json = inside("log_json")
    if log_json is None:
        return None
    try:
        _, train, val = logs.read_log_json(log_json)
    except ReproError as exc:
        notes.append(f"log_json skipped: {exc.message}")
        return None
    text = inside("log")
    train_text = logs.read_text_log(text)["train"] if text is not None else None
    found = logs.curves(train, train_text, val)
    return found if found["train"] else None      # an eval run's log.json holds one val line: no curves


def per_class_frame(record: dict, expected, tier_checks: list) -> pd.DataFrame:
    """class × (IoU/Acc expected, obtained, Δ, status), expected joined onto obtained; worst IoU Δ first."""
    import pandas as pd

    from harness.registry import datasets

    classes = datasets.of_record(record).classes
    obtained = pd.DataFrame([{"class": name, "IoU": (v or {}).get("IoU"), "Acc": (v or {}).get("Acc")}
                             for name, v in (record.get("per_class") or {}).items()], columns=["class", "IoU", "Acc"])
    if obtained.empty:
        return obtained
    exp = expected.per_class.query("reproduction == @record['reproduction'] and protocol == @record['protocol']")
    exp = exp.pivot(index="class", columns="metric", values="value").reset_index() if len(exp) else \
        pd.DataFrame(columns=["class", "IoU", "Acc"])
    frame = obtained.merge(exp, on="class", how="left", suffixes=("", "_expected"))
    for metric in ("IoU", "Acc"):
        frame[metric] = pd.to_numeric(frame[metric], errors="coerce")
        frame[f"{metric}_expected"] = pd.to_numeric(frame.get(f"{metric}_expected"), errors="coerce")
        frame[f"{metric}_delta"] = frame[metric] - frame[f"{metric}_expected"]
    status = {(c.cls, c.metric): c.status for c in tier_checks if c.group == "per_class"}
    frame["status"] = [
        "fail" if any(status.get((name, m), "pass") != "pass" for m in ("IoU", "Acc"))
        else ("pass" if (name, "IoU") in status else "not judged") for name in frame["class"]]
    frame["index"] = frame["class"].map({name: i for i, name in enumerate(classes)})
    # worst first: largest drop vs expected at the 2 decimals the tables carry (float noise must not order them),
    # then lowest IoU
    frame["_order"] = frame["IoU_delta"].round(2) if frame["IoU_expected"].notna().any() else 0.0
    frame = frame.sort_values(["_order", "IoU", "index"], na_position="last").drop(columns="_order")
    return frame.reset_index(drop=True)


def _summary_rows(page: RunPage, expected) -> list[dict]:
    if page.verdict is None:
        table = expected.summary
        rows = table[(table["reproduction"] == page.record.get("reproduction"))
                     & (table["protocol"] == page.record.get("protocol"))].set_index("metric")
        out = []
        for m in SUMMARY_METRICS:
            value = rows["value"].get(m) if m in rows.index else None
            out.append({"metric": m, "obtained": (page.record.get("metrics") or {}).get(m),
                        "expected": None if value is None or math.isnan(value) else float(value), "delta": None,
                        "tolerance": None, "status": "not verified",
                        "source": rows["source_text"].get(m, "") if m in rows.index else "", "rationale": ""})
        return out
    rows = []
    for check in page.verdict.checks:
        if check.group == "per_class":
            continue
        rows.append({"metric": check.key, "obtained": check.obtained, "expected": check.expected,
                     "delta": check.delta, "tolerance": check.tolerance, "status": check.status,
                     "source": check.source, "rationale": check.rationale or check.detail, "label": check.label,
                     "message": check.message()})
    judged = {row["metric"] for row in rows}
    for metric in SUMMARY_METRICS:       # measured but with no published value (a zoo entry's aAcc, mAcc): shown
        if metric not in judged and metric in (page.record.get("metrics") or {}):
            rows.append({"metric": metric, "obtained": page.record["metrics"][metric], "expected": None,
                         "delta": None, "tolerance": None, "status": "reported", "source": "",
                         "rationale": "no published value, so not judged", "label": "", "message": ""})
    return rows


def build_pages(paths, tier: str | None = None, expected_root: Path | None = None) -> list[RunPage]:
    """Read every run, verify what can be verified (a run that cannot is shown with the reason), join the tables.
    An item may be (result.json path, stand-in record) for a run that has no record (harness/batch/judge.py)."""
    expected = load_expected(expected_root)
    pages, taken = [], set()
    for item in paths:
        stand_in = None
        if isinstance(item, tuple):   # (result.json path, stand-in record): a batch's run without a record
            item, stand_in = item
        path = _result_path(item)
        if stand_in is None:
            settle(path.parent)    # a Slurm job that ended without its record gets it now
        record = stand_in or read_result(path)
        page = RunPage(path, record)
        page.file = _page_name(record, path, taken)
        try:
            if stand_in is not None:
                raise ReproError(f"{record.get('status')}: {record.get('failure')}")
            page.verdict = verify_runs([load_run(path, tier, expected_root)], tier=tier, expected_root=expected_root)
        except ReproError as exc:
            page.error = exc.message
        page.summary = _summary_rows(page, expected)
        checks = page.verdict.checks if page.verdict else []
        page.per_class = per_class_frame(record, expected, checks)
        page.curves = read_curves(record, page.run_dir, page.notes)
        pages.append(page)
    if not pages:
        raise ReproError("no runs to report", fix="pass run directories or result.json files")
    return pages


def _early_verdict(page: RunPage) -> dict | None:
    """The run's watch.json (the early verdict a retrain recorded, harness/curves), read inside its run folder only;
    a file that is missing, outside the folder or not the shape `repro watch` writes is a note on the page."""
    named = page.record.get("early_verdict")
    if not isinstance(named, dict):
        return None
    try:
        path = run_file(page.run_dir, named.get("file"), "early verdict")
    except Skipped as skipped:
        page.notes.append(str(skipped))
        return None
    try:
        watch = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        page.notes.append(f"early verdict {path.name} skipped: not JSON ({exc.__class__.__name__})")
        return None
    points = watch.get("points") if isinstance(watch, dict) else None
    if not isinstance(points, list) or not all(isinstance(p, dict) and isinstance(p.get("checks"), dict)
                                               and isinstance(p.get("iter"), int) for p in points) \
            or not isinstance(watch.get("verdict"), str):
        page.notes.append(f"early verdict {path.name} skipped: not the shape `repro watch` writes")
        return None
    return watch


def _render_run(env, page: RunPage, expected) -> str:
    figures = {}
    if page.per_class is not None and len(page.per_class):
        figures["per_class"] = plots.per_class_chart(page.per_class, page.title)
        figures["delta"] = plots.delta_chart(page.per_class, page.title)
    if page.curves:
        figures["curves"] = plots.training_curves(page.curves, page.title)
    early = _early_verdict(page)
    if early is not None and early.get("points"):
        try:
            figures["early"] = plots.early_verdict_chart(early)
        except (TypeError, KeyError, ValueError, IndexError) as exc:     # values of another shape than watch's
            page.notes.append(f"early verdict chart skipped: its points are not what `repro watch` writes "
                              f"({exc.__class__.__name__})")
    rows, notes = gallery.load_gallery(page.record, page.run_dir)
    rep = page.record.get("reproduction")
    published = None
    try:
        published = expected.is_baseline(rep)
    except Exception:  # noqa: BLE001 - unknown reproduction: shown through page.error
        published = None
    return env.get_template("run.html.j2").render(
        page=page, record=page.record, figures=figures, baseline=published,
        per_class=page.per_class.to_dict("records") if page.per_class is not None else [],
        launch=page.record.get("launch") or {}, environment=page.record.get("environment") or {},
        command=(page.record.get("launch") or {}).get("command"),
        repro_command=(page.record.get("launch") or {}).get("repro_command"), escape=html.escape,
        overrides=describe_overrides(page.record), gallery=rows, skipped=page.notes + notes,
        gallery_of=gallery.gallery_size(page.record, page.run_dir), intervals=paired.interval_section(page))


def _compare_context(pages: list[RunPage], tier, expected_root, expected) -> dict:
    import pandas as pd

    columns = [f"{p.title} · {p.run_dir.name}" for p in pages]
    rows = []
    for metric in SUMMARY_METRICS:
        row = {"metric": metric}
        for name, page in zip(columns, pages):
            row[name] = (page.record.get("metrics") or {}).get(metric)
        rows.append(row)
    for label, key in (("images/s (eval)", "images_per_s"), ("peak memory (MiB)", "peak_memory_mib")):
        row = {"metric": label, **{name: (page.record.get("timing") or {}).get(key) for name, page in zip(columns, pages)}}
        if any(isinstance(row[name], (int, float)) for name in columns):
            rows.append(row)
    summary = pd.DataFrame(rows)
    verifiable = [run for p in pages if p.verdict is not None for run in p.verdict.runs]  # judged in build_pages
    group_lines, group_error = [], None
    if len(verifiable) > 1:
        try:
            group_lines = [c.message() for c in group_statistics(verifiable, expected_root=expected_root)]
        except ReproError as exc:
            group_error = exc.message
    per_class = None
    frames = [p.per_class.set_index("class")["IoU"].rename(col) for col, p in zip(columns, pages)
              if p.per_class is not None and len(p.per_class)]
    if frames:
        per_class = pd.concat(frames, axis=1)
        per_class["spread"] = per_class.max(axis=1) - per_class.min(axis=1)
        per_class = per_class.sort_values("spread", ascending=False).reset_index()
    figure = plots.compare_chart(pages, expected)
    curves = plots.compare_curves(pages)
    return {"columns": columns, "summary": summary.to_dict("records"), "group_lines": group_lines,
            "group_error": group_error, "per_class": per_class.to_dict("records") if per_class is not None else [],
            "per_class_columns": list(per_class.columns) if per_class is not None else [],
            "figure": figure, "curves": curves}


def write_reports(paths, out_dir: Path, compare: bool = False, tier: str | None = None,
                  expected_root: Path | None = None, pages: list[RunPage] | None = None) -> Path:
    """Write <out_dir>/<run>.html per run, compare.html (with compare=True) and index.html; returns index.html.
    `pages` (from build_pages) spares reading and verifying the runs again."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    expected = load_expected(expected_root)
    env = _environment()
    pages = pages if pages is not None else build_pages(paths, tier=tier, expected_root=expected_root)
    for page in pages:
        (out_dir / page.file).write_text(_render_run(env, page, expected), encoding="utf-8")
    if compare:
        context = _compare_context(pages, tier, expected_root, expected)
        context.update(paired.compare_section(pages))     # the ledgers' paired part (or why there is none)
        (out_dir / "compare.html").write_text(env.get_template("compare.html.j2").render(pages=pages, **context),
                                              encoding="utf-8")
    index = out_dir / "index.html"
    index.write_text(env.get_template("index.html.j2").render(pages=pages, compare=compare), encoding="utf-8")
    return index
