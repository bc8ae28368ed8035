"""`repro watch`: read a run folder's logs (train.log.json, train.log or a Slurm job's slurm-*.out), judge them
against the references, print the points and write RUN/watch.json (atomically)."""
from __future__ import annotations

import json
import time
from pathlib import Path

from harness.curves import cost, logs, references, track
from harness.errors import ReproError
from harness.fileio import write_json_atomic

WATCH_FILE = "watch.json"


def _job(run_dir: Path) -> dict:
    try:
        return json.loads((run_dir / "job.json").read_text())
    except (OSError, ValueError):
        return {}


def _references(run_dir: Path, specs: list[str], job: dict) -> list:
    if specs:
        from harness import registry
        rep = registry.get(job["reproduction"]) if job.get("reproduction") else None
        if rep is None:
            raise ReproError(f"{run_dir} has no job.json naming its reproduction",
                             fix="pass the folder of a `repro train` run")
        return references.gather(specs, rep)
    recorded = (job.get("curves") or {}).get("references")
    if recorded:
        return references.from_records(recorded)
    if job.get("reproduction"):
        from harness import registry
        return references.builtin(registry.get(job["reproduction"]))
    return []


def judge_run(run_dir: Path | str, specs: list[str] | None = None) -> dict:
    run_dir = Path(run_dir).expanduser().resolve()
    job = _job(run_dir)
    refs = _references(run_dir, list(specs or ()), job)
    run = logs.read_run(run_dir)
    report = track.judge(run, refs, job.get("max_iters"))
    report["run"] = str(run_dir)
    report["setup"] = (job.get("curves") or {}).get("setup")
    previous = _previous(run_dir)
    if previous.get("stopped"):
        report["stopped"] = previous["stopped"]
    write_json_atomic(run_dir / WATCH_FILE, report)
    from harness.curves.plot import band_chart
    from harness.fileio import write_bytes_atomic
    png = band_chart(report)
    if png is not None:
        write_bytes_atomic(run_dir / "watch.png", png)
    return report


def _previous(run_dir: Path) -> dict:
    try:
        return json.loads((run_dir / WATCH_FILE).read_text())
    except (OSError, ValueError):
        return {}


def lines(report: dict, all_points: bool = False) -> list[str]:
    out = [f"references: {len(report['references'])}" + "".join(
        f"\n  {r['origin']} {r['path']} (sha256 {str(r['sha256'])[:12]}…, seed {r['seed']})"
        for r in report["references"])]
    if not report["references"]:
        out.append("no reference: every point is inconclusive (pass --reference FILE|URL|RUN)")
    setup = report.get("setup") or {}
    for d in setup.get("differences", []):
        out.append(f"setup difference{' (allowed)' if d['name'] in setup.get('allowed', []) else ''}: {d['line']}")
    out.append(f"bands: {report['band_rule']}; loss smoothing: {report['smoothing']}")
    points = report["points"]
    shown = points if all_points else [p for i, p in enumerate(points) if p["kind"] == "eval" or i == len(points) - 1
                                       or p["answer"].startswith("off track") and (i == 0 or not points[i - 1]
                                                                                   ["answer"].startswith("off track"))]
    for p in shown:
        values = ", ".join(f"{name} {c['value']:.4g}" for name, c in p["checks"].items() if c.get("value") is not None)
        out.append(f"iter {p['iter']:>6} {p['kind']:<4} {values}: {p['answer']}")
    if report.get("stopped"):
        out.append(report["stopped"]["note"])
    out.append(cost.line(report["cost"]))
    out.append(f"written: {report['run']}/watch.json" + (" and watch.png (curves over the band)"
                                                         if (Path(report["run"]) / "watch.png").exists() else ""))
    out.append(f"verdict: {report['verdict']}")
    return out


def watch(run_dir, specs: list[str], follow: bool = False, interval: float = 60.0, all_points: bool = False):
    """Yield the lines to print; with follow, again every INTERVAL seconds until RUN/result.json exists."""
    run_dir = Path(run_dir)
    seen = 0
    while True:
        finished = (run_dir / "result.json").exists()
        try:
            report = judge_run(run_dir, specs)
        except ReproError:
            if not follow:
                raise
            report = None
        if report is not None and (not follow or len(report["points"]) != seen or finished):
            seen = len(report["points"])
            yield from lines(report, all_points)
        if not follow or finished:
            return
        time.sleep(interval)
