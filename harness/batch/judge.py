"""One verdict and one comparison page over a batch: `repro verify BATCH`, `repro report --compare BATCH`.

Runs with a record are verified and reported as usual; runs without one (or failed with no metrics) are FAIL
lines in the verdict, failing test cases in its JUnit XML, and pages saying why in the report.
"""
from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from harness.batch.members import Member, expand
from harness.errors import printable
from harness.fileio import write_bytes_atomic


def verify_batch(paths, tier: str | None = None, junitxml: Path | None = None, expected_root: Path | None = None,
                 verbose: bool = False, say=print) -> int:
    """0 when every run of every batch (and every plain run) has a record that passes; 1 otherwise."""
    from harness.verify.compare import verify_runs
    from harness.verify.plugin import run_verify

    plain, members = expand(paths)
    judged = plain + [m.result_path for m in members if m.verifiable]
    missing = [m for m in members if not m.verifiable]
    code, verdict = 1, None
    if judged:
        verdict = verify_runs(judged, tier=tier, expected_root=expected_root)      # each run judged once
        code = run_verify(judged, tier=tier, junitxml=junitxml, expected_root=expected_root, verbose=verbose,
                          verdict=verdict)
    if junitxml is not None:
        add_junit_failures(Path(junitxml), missing)
    passed = sum(1 for run in verdict.runs if all(c.passed for c in verdict.for_run(run))) if verdict else 0
    say("=" * 20 + " batch verdict " + "=" * 20)
    for member in missing:
        say(member.line())
    ok = code == 0 and not missing
    say(f"batch: {len(judged) + len(missing)} runs — {passed} PASS, {len(judged) - passed} FAIL on their checks, "
        f"{len(missing)} without a verdict (failed, never finished or never started): {'PASS' if ok else 'FAIL'}")
    return 0 if ok else 1


def report_items(paths) -> list:
    """What harness.report.write_reports reads: run paths, and (result path, stand-in record) for runs without one."""
    plain, members = expand(paths)
    items: list = list(plain)
    for member in members:
        items.append(member.result_path if member.record is not None else (member.result_path, member.stand_in()))
    return items


def add_junit_failures(path: Path, missing: list[Member]) -> None:
    """One failing test case per run without a verdict, added to pytest's JUnit XML (or a new file)."""
    if not missing and path.exists():
        return
    if path.exists():
        root = ET.parse(path).getroot()
    else:
        root = ET.Element("testsuites")
    suite = root if root.tag == "testsuite" else root.find("testsuite")
    if suite is None:
        suite = ET.SubElement(root, "testsuite", name="repro-verify", tests="0", failures="0", errors="0",
                              skipped="0")
    for member in missing:
        # names and reasons come from files; XML 1.0 cannot hold control characters, so they are shown as escapes
        case = ET.SubElement(suite, "testcase", classname=printable(f"batch.{member.batch.name}"),
                             name=printable(f"{member.reproduction} {member.protocol} task {member.task}"))
        failure = ET.SubElement(case, "failure", message=printable(f"{member.state}: {member.reason or ''}"))
        failure.text = member.line()
    for key in ("tests", "failures"):
        suite.set(key, str(int(suite.get(key, "0")) + len(missing)))
    write_bytes_atomic(path, ET.tostring(root, encoding="utf-8", xml_declaration=True))
