"""The record's intervals: from a run folder's ledger, shown by verify and the report; imported runs say why not."""
import re

import pytest

from harness.ledger import runs
from harness.ledger.store import LEDGER_FILE, LedgerInvalid, write_ledger
from harness.run.record import read_result
from harness.verify.importer import import_result

from .conftest import write_run


def test_intervals_for_run_brackets_the_recorded_metrics(make_run, ade_dist):
    run = make_run(ade_dist.draw(80, seed=1))
    intervals = runs.intervals_for_run(run)
    metrics = read_result(run)["metrics"]
    assert set(intervals) == {"aAcc", "mIoU", "mAcc", "level", "resamples", "seed"}
    assert (intervals["level"], intervals["resamples"], intervals["seed"]) == (0.95, 2000, 0)
    for name in ("aAcc", "mIoU", "mAcc"):
        lo, hi = intervals[name]
        assert lo < metrics[name] < hi and 0 < hi - lo < 10
    assert runs.intervals_for_run(run / "result.json") == intervals


def test_intervals_for_run_works_before_the_record_is_written(tmp_path, make_run, ade_dist):
    """finalize calls it after the ledger is merged, before result.json exists."""
    ledger = ade_dist.draw(40, seed=2)
    write_ledger(tmp_path / "unfinished" / LEDGER_FILE, ledger)
    assert runs.intervals_for_run(tmp_path / "unfinished") == runs.intervals_for_run(make_run(ledger))


def test_a_changed_ledger_is_refused_and_the_report_shows_no_interval(make_run, ade_dist):
    ledger = ade_dist.draw(30, seed=3)
    run = make_run(ledger)
    changed = ade_dist.draw(30, seed=4)
    write_ledger(run / LEDGER_FILE, changed)
    with pytest.raises(LedgerInvalid, match="sha256 differs"):
        runs.intervals_for_run(run)
    assert runs.run_intervals(run, read_result(run)) is None


def test_a_record_carrying_intervals_is_read_not_recomputed(make_run, ade_dist):
    carried = {"aAcc": [1.0, 2.0], "mIoU": [3.0, 4.0], "mAcc": [5.0, 6.0], "level": 0.95, "resamples": 1000, "seed": 7}
    run = make_run(ade_dist.draw(20, seed=5), intervals=carried)
    assert runs.run_intervals(run, read_result(run)) == carried


def test_an_imported_run_has_no_intervals(reference, tmp_path):
    run = import_result(reference / "eva02" / "eval_eva02_L_sz512_ss.json", out_dir=tmp_path / "imported")
    assert runs.intervals_for_run(run) is None and runs.run_intervals(run, read_result(run)) is None
    assert runs.no_ledger_reason(read_result(run)) == "an imported result carries no per-image ledger"


@pytest.mark.parametrize("value, interval, text", [
    (59.7712, [59.104, 60.449], "59.77 [59.1, 60.4]"),
    (59.7712, None, "59.77"),
    (59.7712, [None, 60.0], "59.77"),
    (None, [1.0, 2.0], "—"),
    (float("nan"), [1.0, 2.0], "—"),
])
def test_format_interval(value, interval, text):
    assert runs.format_interval(value, interval) == text


def test_verify_lines_show_the_interval(repro, make_run, ade_dist):
    run = make_run(ade_dist.draw(60, seed=6))
    miou = read_result(run)["metrics"]["mIoU"]
    lo, hi = runs.intervals_for_run(run)["mIoU"]
    result = repro("verify", run)
    assert result.exit_code == 1          # synthetic numbers against the published L-512 values
    line = next(line for line in result.output.splitlines() if line.startswith("eva02_L_sz512 ss: mIoU"))
    assert line.startswith(f"eva02_L_sz512 ss: mIoU {miou:.2f} [{lo:.1f}, {hi:.1f}] vs ")


def test_the_report_shows_intervals_and_says_why_there_are_none(repro, make_run, ade_dist, reference, tmp_path):
    run = make_run(ade_dist.draw(60, seed=7))
    imported = import_result(reference / "eva02" / "eval_eva02_L_sz512_ss.json", out_dir=tmp_path / "imported")
    out = tmp_path / "reports"
    assert repro("report", run, imported, "-o", out).exit_code == 0
    pages = {p.name: p.read_text() for p in out.glob("*.html") if p.name != "index.html"}
    with_ledger = next(text for name, text in pages.items() if run.name in name)
    without = next(text for name, text in pages.items() if imported.name in name)
    intervals = runs.intervals_for_run(run)
    metrics = read_result(run)["metrics"]
    assert f"mIoU {metrics['mIoU']:.2f} [{intervals['mIoU'][0]:.1f}, {intervals['mIoU'][1]:.1f}]" in with_ledger
    assert 'id="interval-table"' in with_ledger
    assert "not how much it moves between training seeds" in with_ledger
    for name in ("aAcc", "mAcc"):
        assert f"[{intervals[name][0]:.2f}, {intervals[name][1]:.2f}]" in with_ledger
    assert "No interval: an imported result carries no per-image ledger." in without
    assert re.search(r"mIoU \d+\.\d\d vs", without)


def test_the_ledger_may_stand_beside_a_record_that_does_not_name_it(tmp_path, ade_dist):
    run = write_run(tmp_path / "old", ade_dist.draw(20, seed=8), ledger_entry=False)
    assert runs.intervals_for_run(run) is not None
