"""`repro verify` as a pytest session: one test per run × metric and run × class, plus one per group of seeds.

The checks are computed first (harness.verify.compare); pytest then collects each result.json given on its
command line as a file of tests, so the output is a normal pytest report and `--junitxml` works as in any CI.
A failing test prints one line: key, obtained, expected, |Δ|, tolerance, source. The terminal summary ends
with one verdict line per run and, when anything failed, how to update expected values.
"""
from __future__ import annotations

import csv
import math
import os
from pathlib import Path

import pytest

from harness.errors import ReproError
from harness.fileio import write_text_atomic
from harness.verify.compare import UPDATE_HINT, Check, Verdict, preflight, verify_runs
from harness.verify.expected import BASELINE_SOURCE, SUMMARY_COLUMNS, load_expected


class CheckFailed(Exception):
    def __init__(self, check: Check):
        super().__init__(check.message())
        self.check = check


def assert_check(check: Check) -> None:
    """Raise CheckFailed unless the check passed; hidden from tracebacks."""
    __tracebackhide__ = True
    if not check.passed:
        raise CheckFailed(check)


class CheckItem(pytest.Item):
    def __init__(self, *, check: Check, **kwargs):
        super().__init__(**kwargs)
        self.check = check

    def runtest(self) -> None:
        __tracebackhide__ = True
        assert_check(self.check)

    def repr_failure(self, excinfo, style=None):
        if isinstance(excinfo.value, CheckFailed):
            return excinfo.value.check.message()
        return super().repr_failure(excinfo, style)

    def reportinfo(self):
        return self.path, None, f"{self.check.reproduction} {self.check.protocol} {self.check.key}"


class RunFile(pytest.File):
    def __init__(self, *, checks: list[Check], **kwargs):
        super().__init__(**kwargs)
        self.checks = checks

    def collect(self):
        for check in self.checks:
            yield CheckItem.from_parent(self, name=check.key, check=check)


class VerifyPlugin:
    """Collects the given result.json files as RunFiles; prints the verdict lines at the end."""

    def __init__(self, verdict: Verdict):
        self.verdict = verdict
        self.by_path: dict[str, list[Check]] = {}
        for check in verdict.checks:
            first = check.run.split(";")[0]   # a statistics check belongs to the first run of its group
            self.by_path.setdefault(first, []).append(check)

    def pytest_collect_file(self, file_path: Path, parent):
        checks = self.by_path.get(str(file_path))
        if checks is not None:
            return RunFile.from_parent(parent, path=file_path, checks=checks)
        return None

    def pytest_terminal_summary(self, terminalreporter):
        terminalreporter.section("verdict")
        for line in self.verdict.lines():
            terminalreporter.write_line(line)
        if not self.verdict.passed:
            terminalreporter.write_line(UPDATE_HINT)


def write_obtained(verdict: Verdict) -> list[Path]:
    """<run_dir>/verify.csv: every check of the run (obtained, expected, Δ, tolerance, status, source)."""
    written = []
    frame = verdict.frame()
    for run in verdict.runs:
        rows = frame[frame["run"] == str(run.path)]
        target = run.path.parent / "verify.csv"
        try:
            rows.drop(columns=["run"]).to_csv(target, index=False)
            written.append(target)
        except OSError:
            continue
    return written


def regenerate_baselines(verdict: Verdict, expected_root: Path | None = None) -> Path:
    """Write the runs' summary metrics into expected/summary.csv as the new baseline; the checks then fail.

    Only reproductions marked `baseline = true` there may be regenerated: published numbers are facts about a
    paper and change only with a new source.
    """
    expected = load_expected(expected_root)
    published = sorted({r.reproduction for r in verdict.runs if not expected.is_baseline(r.reproduction)})
    if published:
        raise ReproError(f"--regen rewrites harness baselines only; {', '.join(published)} holds published values",
                         fix="edit expected/summary.csv by hand, naming the new source, if a published number changed")
    import pandas as pd

    path = expected.root / "summary.csv"
    table = pd.read_csv(path, keep_default_na=False, dtype=str)
    for check in verdict.checks:
        if check.group != "metrics" or check.metric == "status" or check.obtained is None:
            continue
        if not math.isfinite(check.obtained):
            continue
        mask = ((table["reproduction"] == check.reproduction) & (table["protocol"] == check.protocol)
                & (table["metric"] == check.metric))
        if not mask.any():    # a baseline row that was not there yet
            table = pd.concat([table, pd.DataFrame([{
                "reproduction": check.reproduction, "protocol": check.protocol, "metric": check.metric, "value": "",
                "baseline": "true", "source": BASELINE_SOURCE}])], ignore_index=True)
            mask = table.index == len(table) - 1
        table.loc[mask, "value"] = f"{check.obtained:.2f}"
        check.status = "regenerated"
        check.detail = f"baseline written to {path}"
    return write_text_atomic(path, table.to_csv(index=False, columns=SUMMARY_COLUMNS, quoting=csv.QUOTE_MINIMAL))


def run_verify(paths: list[str | Path], tier: str | None = None, junitxml: Path | None = None,
               expected_root: Path | None = None, regen: bool = False, verbose: bool = False,
               verdict: Verdict | None = None) -> int:
    """Verify runs through pytest; returns 0 (all pass), 1 (a check failed). Bad input raises ReproError (2).
    `verdict`: these runs already judged (verify_runs), so that a caller that needs the verdict too (a batch's
    summary) does not judge every run twice."""
    if verdict is None:
        verdict = verify_runs(paths, tier=tier, expected_root=expected_root)
    preflight(verdict)
    if regen:
        regenerate_baselines(verdict, expected_root)
    write_obtained(verdict)
    files = sorted({check.run.split(";")[0] for check in verdict.checks})
    common = Path(os.path.commonpath([str(Path(f).parent.parent) for f in files]))
    # Isolated from the directories it reads: a run directory is data someone sent us, so no conftest.py
    # (--noconftest), no pytest.ini/tox.ini/setup.cfg/pyproject.toml (-c /dev/null, our own rootdir), no cache
    # written beside it (-p no:cacheprovider) and no plugin loaded through entry points (autoload disabled).
    args = [*files, "-p", "no:cacheprovider", "--noconftest", "--rootdir", str(common), "-c", os.devnull,
            "--capture=no", "-q" if not verbose else "-v", "-rf", "--no-header",
            "-W", "ignore::pytest.PytestConfigWarning"]
    if junitxml:
        args += ["--junitxml", str(junitxml), "-o", "junit_suite_name=repro-verify", "-o", "junit_family=xunit2"]
    saved = {key: os.environ.get(key) for key in ("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "PYTEST_ADDOPTS", "PYTEST_PLUGINS")}
    os.environ["PYTEST_DISABLE_PLUGIN_AUTOLOAD"] = "1"
    os.environ.pop("PYTEST_ADDOPTS", None)
    os.environ.pop("PYTEST_PLUGINS", None)
    try:
        code = pytest.main(args, plugins=[VerifyPlugin(verdict)])
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    if code in (pytest.ExitCode.OK, pytest.ExitCode.TESTS_FAILED):
        return int(code)
    raise ReproError(f"pytest could not run the checks (exit {int(code)})", fix="re-run with --verbose to see why")
