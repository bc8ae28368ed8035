"""The comparison: run records × expected tables -> one Check per run × metric and run × class (+ statistics).

This is the verdict as data. `repro verify` turns each Check into a pytest test; `repro report` renders them.
A Check's status is one of:

- ``pass`` / ``fail``: |obtained - expected| within / beyond the tolerance of the tier;
- ``missing``: an expected row has no obtained value in the record;
- ``not-finite``: the obtained value is NaN or inf (null in result.json);
- ``no-expected``: the expected value is empty (a harness baseline not measured yet), which fails too.

Bad input (unreadable record, no metrics, unknown reproduction or class names) raises ReproError instead.

Example::

    >>> verdict = verify_runs(["runs/eva02_L_sz512/ss/20260101T000000Z"], tier="released")
    >>> verdict.passed, verdict.lines()[0]
    (True, 'eva02_L_sz512 ss: mIoU 59.77 vs 59.77 published, within ±0.10 — PASS (303 checks)')
"""
from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from harness.choices import TIERS
from harness.console import printable
from harness.errors import ReproError
from harness.ledger.runs import format_interval, run_intervals
from harness.registry import datasets
from harness.run.folder import RESULT_FILE
from harness.run.record import read_result
from harness.verify.consistency import check_consistency
from harness.verify.expected import Expected, load_expected, registry_baselines
from harness.verify.logs import to_float
from harness.verify.provenance import choose_tier, describe_overrides

FAILING = ("fail", "missing", "not-finite", "no-expected", "regenerated")
UPDATE_HINT = ("To update expected values: published rows change only with a new source (edit expected/summary.csv "
               "or rerun tools/make_expected_per_class.py); a harness baseline is rewritten with "
               "`repro verify RUN --regen`.")


@dataclass
class Run:
    """One result.json, read and checked for bad input."""
    path: Path
    record: dict
    tier: str
    why: str = ""              # why this tier: "released weights, published protocol", or what differs

    @property
    def reproduction(self) -> str:
        return self.record["reproduction"]

    @property
    def protocol(self) -> str:
        return self.record["protocol"]

    @property
    def name(self) -> str:
        return f"{self.reproduction} {self.protocol}"

    @property
    def display_path(self) -> str:
        try:
            return os.path.relpath(self.path)
        except ValueError:
            return str(self.path)


@dataclass
class Check:
    run: str                   # result.json path as given
    reproduction: str
    protocol: str
    tier: str
    group: str                 # "metrics", "per_class" or "statistics"
    metric: str                # aAcc/mIoU/mAcc or IoU/Acc
    cls: str | None            # class name for per_class checks
    obtained: float | None
    expected: float | None
    tolerance: float | None
    status: str
    source: str = ""
    rationale: str = ""
    baseline: bool = False
    detail: str = ""           # statistics: the test's description

    @property
    def key(self) -> str:
        if self.group == "per_class":
            return f"{self.metric}[{self.cls.strip()}]"
        if self.group == "statistics":
            return f"{self.metric}[statistics]"
        return self.metric

    @property
    def delta(self) -> float | None:
        if self.obtained is None or self.expected is None:
            return None
        if not (math.isfinite(self.obtained) and math.isfinite(self.expected)):
            return None
        return self.obtained - self.expected

    @property
    def passed(self) -> bool:
        return self.status == "pass"

    @property
    def label(self) -> str:
        return "baseline" if self.baseline else "published"

    def message(self) -> str:
        """One line naming the key, obtained, expected, |Δ|, tolerance and source (control characters of the
        record's fields made visible: harness.console.printable)."""
        return printable(self._message())

    def _message(self) -> str:
        head = f"{self.reproduction} {self.protocol} {self.key}"
        source = f" — source: {self.source}" if self.source else ""
        if self.group == "statistics":
            return f"{head}: {self.detail} [{self.tier}]{source}"
        if self.metric == "status":
            return f"{head}: {self.detail} [{self.tier}]"
        if self.status == "missing":
            return (f"{head}: missing from the run record (expected {_f(self.expected)} {self.label})"
                    f" [{self.tier}]{source}")
        if self.status == "not-finite":
            return f"{head}: obtained {self.obtained} is not a finite number (expected {_f(self.expected)}){source}"
        if self.status == "regenerated":
            return (f"{head}: obtained {_f(self.obtained)} written as the new baseline ({self.detail}); "
                    f"re-run `repro verify` to check against it")
        if self.status == "no-expected":
            return (f"{head}: obtained {_f(self.obtained)}, no expected value yet (harness baseline not measured)"
                    f"{source}")
        if self.tolerance is None:
            return (f"{head}: obtained {_f(self.obtained)}, expected {_f(self.expected)} ({self.label}), judged over "
                    f"the runs together ({self.metric}[statistics]) [{self.tier}]{source}")
        relation = "<=" if self.passed else ">"
        return (f"{head}: obtained {_f(self.obtained)}, expected {_f(self.expected)} ({self.label}), "
                f"|Δ| {_delta(self.delta, self.tolerance)} {relation} tolerance {self.tolerance:.2f} [{self.tier}]{source}")

    def as_dict(self) -> dict:
        data = asdict(self)
        data.update(key=self.key, delta=self.delta, message=self.message())
        return data


@dataclass
class Verdict:
    runs: list[Run]
    checks: list[Check]
    tier_note: dict = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks)

    def for_run(self, run: Run) -> list[Check]:
        return [c for c in self.checks if c.run == str(run.path) and c.group != "statistics"]

    def statistics(self) -> list[Check]:
        return [c for c in self.checks if c.group == "statistics"]

    def failures(self) -> list[Check]:
        return [c for c in self.checks if not c.passed]

    def frame(self):
        """All checks as a pandas DataFrame (one row per check, with key, delta and message)."""
        import pandas as pd

        return pd.DataFrame([c.as_dict() for c in self.checks])

    def run_line(self, run: Run) -> str:
        """'eva02_L_sz512 ss: mIoU 59.74 vs 59.77 published, within ±0.10 — PASS (303 checks)'."""
        checks = self.for_run(run)
        head = next((c for c in checks if c.metric == "mIoU" and c.group == "metrics"), None)
        stats = [c for c in self.statistics() if c.reproduction == run.reproduction and c.protocol == run.protocol
                 and c.tier == run.tier]
        if head is None:
            text = f"{run.name}: no mIoU check"
        elif head.status in ("no-expected", "regenerated"):
            text = f"{run.name}: mIoU {with_interval(run, head.obtained)}, no baseline value yet"
        elif head.status in ("missing", "not-finite"):
            text = f"{run.name}: mIoU {head.status}"
        elif head.tolerance is None:
            text = f"{run.name}: mIoU {with_interval(run, head.obtained)} vs {_f(head.expected)} {head.label}, judged over the runs"
        else:
            where = "within" if head.passed else f"|Δ| {_delta(head.delta, head.tolerance)} outside"
            text = (f"{run.name}: mIoU {with_interval(run, head.obtained)} vs {_f(head.expected)} {head.label}, "
                    f"{where} ±{head.tolerance:.2f}")
        context = f"; tier {run.tier} ({run.why}); overrides: {describe_overrides(run.record)}"
        failed = [c.key for c in checks if not c.passed]
        status = next((c for c in checks if c.metric == "status" and c.group == "metrics"), None)
        if failed:
            shown = ", ".join(failed[:5]) + (f", … {len(failed) - 5} more" if len(failed) > 5 else "")
            why = f"{status.detail}; " if status is not None else ""
            return f"{text} — FAIL ({why}{len(failed)} of {len(checks)} checks failed: {shown}){context}"
        if any(not c.passed for c in stats):
            return f"{text} — FAIL (runs judged together: see the statistics line){context}"
        return f"{text} — PASS ({len(checks)} checks){context}"

    def lines(self) -> list[str]:
        """One verdict line per run, then one per statistics check: what the console prints (control characters
        of the record's fields made visible)."""
        out = [self.run_line(run) for run in self.runs]
        for check in self.statistics():
            out.append(f"{check.reproduction} {check.protocol}, {check.detail} — {'PASS' if check.passed else 'FAIL'}")
        return [printable(line) for line in out]


def _f(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}"


def with_interval(run: Run, value: float | None, metric: str = "mIoU") -> str:
    """The obtained value with the bootstrap 95 % interval over val images when the run has a ledger:
    '59.77 [59.1, 60.4]' (docs/ledger.md); the value alone otherwise. The interval informs; the bands decide."""
    if value is None or not math.isfinite(value):
        return _f(value)
    return format_interval(value, (run_intervals(run.path.parent, run.record) or {}).get(metric))


def _delta(delta: float | None, tolerance: float | None) -> str:
    if delta is None:
        return "—"
    text = f"{abs(delta):.2f}"
    if tolerance is not None and text == f"{tolerance:.2f}":  # don't print "0.10 > 0.10"
        text = f"{abs(delta):.4f}"
    return text


def load_run(path: Path | str, tier: str | None = None, expected_root: Path | None = None) -> Run:
    """Read a run directory or result.json; refuse empty files and records without metrics (ReproError)."""
    path = Path(path)
    file = path / RESULT_FILE if path.is_dir() else path
    from harness.run.settle import settle
    settle(file.parent)        # a Slurm job that ended without its record (time limit, cancelled) gets it now
    if file.is_file() and file.stat().st_size == 0:
        raise ReproError(f"{file} is empty", fix="re-run the command that writes it, or `repro import` the source file")
    record = read_result(file)
    metrics = record.get("metrics")
    if (not isinstance(metrics, dict) or not metrics) and record.get("status") == "failed":
        raise ReproError(f"{file}: the run failed ({record.get('failure') or 'no reason recorded'}); nothing to verify",
                         fix="fix the failure and re-run; `repro report` shows the run's log and command")
    if not isinstance(metrics, dict) or not metrics:
        raise ReproError(f"{file} has no metrics to verify",
                         fix="verify a finished eval/train run, or `repro import` a file that holds metrics")
    if tier == "auto":
        tier = None
    if tier is not None and tier not in TIERS:
        raise ReproError(f"unknown tier '{tier}'", fix=f"use one of: {', '.join(TIERS)}")
    check_consistency(record, file)
    tier, why = choose_tier(record, tier, baseline=record.get("reproduction") in registry_baselines(), path=str(file),
                            expected_root=expected_root)
    return Run(file.resolve(), record, tier, why)



def _obtained_frames(run: Run):
    import pandas as pd

    record = run.record
    summary = pd.DataFrame([{"metric": k, "obtained": to_float(v)} for k, v in record["metrics"].items()],
                           columns=["metric", "obtained"])
    per_class = record.get("per_class") or {}
    if not isinstance(per_class, dict):
        raise ReproError(f"{run.path}: per_class is not an object of class -> {{IoU, Acc}}",
                         fix="write per_class as in docs/result_record.md")
    dataset = datasets.of_record(record)
    unknown = [name for name in per_class if name not in dataset.classes]
    if unknown:
        shown = ", ".join(repr(n) for n in unknown[:3]) + (f" and {len(unknown) - 3} more" if len(unknown) > 3 else "")
        raise ReproError(f"{run.path}: unknown class name(s) {shown} in per_class", fix=dataset.class_names_fix)
    rows = [{"cls": name, "metric": metric, "obtained": to_float(values.get(metric)) if isinstance(values, dict) else math.nan}
            for name, values in per_class.items() for metric in ("IoU", "Acc")]
    return summary, pd.DataFrame(rows, columns=["cls", "metric", "obtained"])


def _checks_for(run: Run, expected: Expected, skip_metrics: set[str]) -> list[Check]:
    expected.check_reproduction(run.reproduction)
    summary, per_class = _obtained_frames(run)
    exp_summary = expected.summary_rows(run.reproduction, run.protocol)
    if exp_summary.empty:
        protocols = sorted(set(expected.summary.query("reproduction == @run.reproduction")["protocol"]))
        raise ReproError(f"{run.path}: no expected values for {run.reproduction} protocol '{run.protocol}'",
                         fix=f"{run.reproduction} has expected values for: {', '.join(protocols)}")
    baseline = expected.is_baseline(run.reproduction)
    checks = []
    status_check = _status_check(run, baseline)
    if status_check:
        checks.append(status_check)
    joined = exp_summary.merge(summary, on="metric", how="left", indicator="joined")
    for row in joined.itertuples():
        tol = expected.tolerance(run.tier, "metrics", row.metric, run.reproduction, run.protocol)
        judged = row.metric not in skip_metrics
        checks.append(_check(run, "metrics", row.metric, None, row, tol if judged else None, baseline))
    tolerances = expected.tolerances[run.tier]["per_class"]
    if tolerances:
        exp_pc = expected.per_class.query("reproduction == @run.reproduction and protocol == @run.protocol")
        exp_pc = exp_pc[exp_pc["metric"].isin(list(tolerances))].rename(columns={"class": "cls"})
        joined = exp_pc.merge(per_class, on=["cls", "metric"], how="left", indicator="joined")
        for row in joined.itertuples():
            checks.append(_check(run, "per_class", row.metric, row.cls, row,
                                 tolerances[row.metric], baseline))
    return checks


def _status_check(run: Run, baseline: bool) -> Check | None:
    status = run.record.get("status")
    if status == "succeeded":
        return None
    if status == "failed":
        detail = f"the run failed: {run.record.get('failure') or 'no reason recorded'}"
    else:
        detail = f"the run did not succeed: its status is {status!r}" + (
            f" ({run.record['failure']})" if run.record.get("failure") else "")
    return Check(str(run.path), run.reproduction, run.protocol, run.tier, "metrics", "status", None, None, None,
                 None, "fail", source=f"run record: {detail}", baseline=baseline, detail=detail)


def _check(run: Run, group: str, metric: str, cls: str | None, row, tolerance, baseline: bool) -> Check:
    obtained = None if row.joined == "left_only" else row.obtained
    expected = None if math.isnan(row.value) else float(row.value)
    if obtained is None:
        status = "missing"
    elif not math.isfinite(obtained):
        status = "not-finite"
    elif expected is None:
        status = "no-expected"
    elif tolerance is None:
        status = "pass"      # judged by the statistics check of its group
    else:
        status = "pass" if abs(obtained - expected) <= tolerance.abs + 1e-9 else "fail"
    return Check(str(run.path), run.reproduction, run.protocol, run.tier, group, metric, cls, obtained, expected,
                 tolerance.abs if tolerance else None, status, source=row.source_text,
                 rationale=tolerance.rationale if tolerance else "", baseline=baseline)


def _group_statistics(runs: list[Run], expected: Expected) -> tuple[list[Check], dict]:
    """Statistics checks for retrain groups with >= min_runs runs; returns (checks, {group: metrics judged})."""
    from harness.verify.stats import judge_runs

    stats = expected.statistics
    groups: dict[tuple[str, str], list[Run]] = {}
    for run in runs:
        if run.tier == "retrain":
            groups.setdefault((run.reproduction, run.protocol), []).append(run)
    checks, judged = [], {}
    if stats is None:
        return checks, judged
    for (reproduction, protocol), members in groups.items():
        if len(members) < stats.min_runs:
            continue
        for metric, ref in stats.reference_for(reproduction, protocol).items():
            row = expected.summary.query("reproduction == @reproduction and protocol == @protocol and metric == @metric")
            if row.empty or math.isnan(row["value"].iloc[0]):
                continue
            values = [to_float(m.record["metrics"].get(metric)) for m in members]
            if any(v is None or not math.isfinite(v) for v in values):
                continue  # each run's own check reports the missing/non-finite value
            published = float(row["value"].iloc[0])
            result = judge_runs(values, published, ref["reference_std"], ref["reference_runs"],
                                alpha=stats.alpha, olympic_min_runs=stats.olympic_min_runs)
            judged.setdefault((reproduction, protocol), set()).add(metric)
            checks.append(Check(
                ";".join(str(m.path) for m in members), reproduction, protocol, "retrain", "statistics", metric, None,
                result.mean, published, None, "pass" if result.passed else "fail",
                source=str(row["source_text"].iloc[0]), rationale=ref["rationale"],
                baseline=expected.is_baseline(reproduction),
                detail=f"{metric} over {len(members)} runs: {result.describe()}"))
    return checks, judged


def verify_runs(paths, tier: str | None = None, expected_root: Path | None = None) -> Verdict:
    """Judge run directories / result.json files (or already loaded Runs) against the expected tables.

    :param paths: run directories, result.json paths or Run objects
    :param tier: "released", "retrain", "baseline" or None (per run, from its provenance: released only for the
        released weights with the published protocol, else retrain, baseline for baseline reproductions; the rule
        is harness.verify.provenance.choose_tier)
    :param expected_root: an expected/ folder (default: harness.verify.expected.expected_dir())
    :returns: a Verdict; bad input raises ReproError
    """
    expected = load_expected(expected_root)
    runs, seen = [], set()
    for item in paths:
        run = item if isinstance(item, Run) else load_run(item, tier, expected_root)
        if run.path not in seen:
            seen.add(run.path)
            runs.append(run)
    if not runs:
        raise ReproError("no runs to verify", fix="pass run directories or result.json files")
    stats_checks, judged = _group_statistics(runs, expected)
    checks = []
    for run in runs:
        checks += _checks_for(run, expected, judged.get((run.reproduction, run.protocol), set()))
    return Verdict(runs, checks + stats_checks)


def group_statistics(runs: list[Run], expected_root: Path | None = None) -> list[Check]:
    """The statistical checks over runs already loaded and judged one by one (a report's pages): the runs are not
    judged again."""
    unique = list({run.path: run for run in runs}.values())
    return _group_statistics(unique, load_expected(expected_root))[0]


def preflight(verdict: Verdict) -> None:
    """Summary metrics missing or not finite are bad input (exit 2), not a comparison to report."""
    for check in verdict.checks:
        if check.group == "metrics" and check.status in ("missing", "not-finite"):
            run = Path(check.run)
            what = "is missing from metrics" if check.status == "missing" else f"is {check.obtained} (NaN/inf or null)"
            raise ReproError(f"{run}: {check.metric} {what}",
                             fix="the evaluation produced no usable value; re-run it or re-import the source file")
