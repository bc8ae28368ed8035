"""A record must agree with itself: summary vs its per-class values vs the eval JSON it names (issue #13)."""
import json

import pytest

from harness.run.record import read_result, write_result


@pytest.fixture
def authors_run(eva02, tmp_path, repro):
    """The authors' L-512 ss eval file imported: a record naming its eval JSON copy and that file's sha256."""
    run = tmp_path / "run"
    assert repro("import", eva02 / "eval_eva02_L_sz512_ss.json", "-o", run).exit_code == 0
    return run


def _edit(run, **metrics):
    record = read_result(run)
    record.pop("_path")
    record["metrics"].update(metrics)
    write_result(run, record)


def test_a_summary_edited_by_hand_is_refused_and_not_reported_as_pass(authors_run, repro, tmp_path):
    _edit(authors_run, mIoU=60.5)                      # per-class values and the eval JSON left as they were
    result = repro("verify", authors_run)
    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: {authors_run / 'result.json'}: mIoU 60.50 is not the mean of its 150 "
                                    "per-class IoU values (59.77, |Δ| 0.73 > 0.01): the record is inconsistent")
    assert len(result.stderr.strip().splitlines()) == 1

    report = repro("report", authors_run, "-o", tmp_path / "reports")
    assert report.exit_code == 0
    page = next((tmp_path / "reports").glob("eva02_L_sz512_ss_*.html")).read_text()
    assert "PASS" not in page and "NOT VERIFIED" in page and "the record is inconsistent" in page


def test_a_summary_value_against_the_eval_json(authors_run, repro):
    _edit(authors_run, aAcc=87.0)                      # aAcc has no per-class counterpart: the eval JSON says 86.67
    result = repro("verify", authors_run)
    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: {authors_run / 'result.json'}: aAcc 87.00 disagrees with 86.67 in its "
                                    "eval JSON imported/eval_eva02_L_sz512_ss.json (|Δ| 0.33 > 0.005)")


def test_an_eval_json_changed_or_missing_after_the_run(authors_run, repro):
    eval_json = authors_run / "imported" / "eval_eva02_L_sz512_ss.json"
    data = json.loads(eval_json.read_text())
    data["metric"]["aAcc"] = 0.87
    eval_json.write_text(json.dumps(data))
    changed = repro("verify", authors_run)
    assert changed.exit_code == 2
    assert "its eval JSON imported/eval_eva02_L_sz512_ss.json changed after the run (sha256 " in changed.stderr

    eval_json.unlink()
    missing = repro("verify", authors_run)
    assert missing.exit_code == 2
    assert ("names the eval JSON imported/eval_eva02_L_sz512_ss.json (sha256 recorded), which is not in its run "
            "directory") in missing.stderr


def test_an_honest_record_within_mmseg_rounding_passes(authors_run, repro):
    _edit(authors_run, mIoU=59.765)                    # full precision as the engine records it: within rounding
    assert repro("verify", authors_run).exit_code == 0
