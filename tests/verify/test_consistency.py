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


# ------------------------------------------------------------------------------------------------ the ledger

def _ledger_record(make_record, tmp_path):
    """A record whose numbers are what its ledger (20 images, ADE20K's 150 classes) sums to, as the engine
    writes it: ledger.npz beside result.json, named with its sha256."""
    import numpy as np

    from harness.fileio import file_sha256
    from harness.ledger.store import from_rows, metrics_percent, write_ledger
    from harness.registry import datasets

    classes = datasets.of(None).classes
    rng = np.random.default_rng(0)
    label = rng.integers(0, 400, (20, len(classes)))
    pred = rng.integers(0, 400, (20, len(classes)))
    inter = np.minimum(label, pred) // 2
    areas = np.stack([inter, pred + label - inter, pred, label], axis=1)
    ledger = from_rows(range(20), [f"ADE_val_{i:08d}.jpg" for i in range(20)], label.sum(1), areas)
    metrics, per_class = metrics_percent(ledger, classes)
    probe = make_record(metrics=metrics, per_class=per_class)
    path = write_ledger(probe / "ledger.npz", ledger)
    record = read_result(probe)
    record.pop("_path")
    record.update(ledger={"file": "ledger.npz", "sha256": file_sha256(path), "images": 20}, sessions=2)
    write_result(probe, record)
    return probe, ledger


def test_a_record_whose_ledger_sums_to_its_numbers_is_judged(make_record, tmp_path, repro):
    run, _ = _ledger_record(make_record, tmp_path)
    result = repro("verify", run)
    assert result.exit_code in (0, 1), result.output     # judged (against the published table), not refused
    from harness.verify.consistency import ledger_note
    assert ledger_note(read_result(run)) == "ledger.npz (20 images, 2 sessions)"


def test_a_ledger_with_one_changed_count_is_refused(make_record, tmp_path, repro):
    from harness.fileio import file_sha256
    from harness.ledger.store import Ledger, write_ledger
    run, ledger = _ledger_record(make_record, tmp_path)
    union = ledger.union.copy()
    union[7, 3] += 1                                     # one pixel more in one image's union of class 3
    write_ledger(run / "ledger.npz", Ledger(**{**ledger.__dict__, "union": union}))

    changed = repro("verify", run)
    assert changed.exit_code == 2
    assert changed.stderr.startswith(f"error: {run / 'result.json'}: its ledger ledger.npz changed after the run "
                                     "(sha256 ")
    record = read_result(run)                            # the sha256 edited to match: the sums still disagree
    record.pop("_path")
    record["ledger"]["sha256"] = file_sha256(run / "ledger.npz")
    write_result(run, record)
    refused = repro("verify", run)
    assert refused.exit_code == 2 and len(refused.stderr.strip().splitlines()) == 1
    assert refused.stderr.startswith(f"error: {run / 'result.json'}: mIoU ")
    assert "is not what its ledger ledger.npz sums to (" in refused.stderr

    (run / "ledger.npz").unlink()
    missing = repro("verify", run)
    assert missing.exit_code == 2 and "names the ledger ledger.npz (sha256 recorded), which is not in" in missing.stderr


def test_an_imported_record_has_no_ledger_and_says_so(authors_run, repro):
    from harness.verify.consistency import ledger_note
    assert repro("verify", authors_run).exit_code == 0
    assert ledger_note(read_result(authors_run)).startswith("none: an imported record")
