"""mmseg's metrics from a ledger without the model: the numpy arithmetic equals mmseg 0.29.1's
total_area_to_metrics on the same totals, and `repro rescore` prints and records them."""
import json
import subprocess
import sys

import numpy as np
import pytest

from harness.ledger.metrics import UnknownMetric, summary_percent, total_area_to_metrics
from harness.run.record import read_result
from harness.verify.importer import import_result

METRIC_SETS = [["mIoU"], ["mDice"], ["mFscore"], ["mIoU", "mDice", "mFscore"], "mFscore"]


def _totals_with_edge_cases(seed: int = 0):
    """Random totals plus a class never labelled nor predicted (0/0 everywhere), one predicted but never labelled
    (Acc/Recall 0/0, IoU 0), one labelled but never predicted (Precision 0/0, IoU 0)."""
    rng = np.random.default_rng(seed)
    label = rng.integers(0, 10**7, 20)
    inter = rng.binomial(label, 0.7)
    pred = inter + rng.integers(0, 10**6, 20)
    label[3] = inter[3] = pred[3] = 0
    label[5] = inter[5] = 0
    pred[7] = inter[7] = 0
    return inter, pred + label - inter, pred, label


def _mmseg_metrics(totals, metrics, **kw):
    torch = pytest.importorskip("torch")
    mmseg_metrics = pytest.importorskip("mmseg.core.evaluation.metrics")
    tensors = [torch.from_numpy(np.asarray(t, dtype=np.float64)) for t in totals]
    return mmseg_metrics.total_area_to_metrics(*tensors, metrics=metrics, **kw)


@pytest.mark.parametrize("metrics", METRIC_SETS)
@pytest.mark.parametrize("nan_to_num", [None, -1])
def test_equals_mmseg_total_area_to_metrics(metrics, nan_to_num):
    totals = _totals_with_edge_cases()
    theirs = _mmseg_metrics(totals, metrics, nan_to_num=nan_to_num)
    ours = total_area_to_metrics(*totals, metrics=metrics, nan_to_num=nan_to_num)
    assert list(ours) == list(theirs)
    for key in theirs:
        np.testing.assert_array_equal(np.asarray(ours[key], dtype=np.float64),
                                      np.asarray(theirs[key], dtype=np.float64), err_msg=key)


def test_summary_is_mmseg_evaluate_summary():
    """CustomDataset.evaluate: np.round(np.nanmean(v) * 100, 2) per metric, 'm' prefixed except aAcc."""
    totals = _totals_with_edge_cases(1)
    theirs = _mmseg_metrics(totals, ["mIoU", "mDice", "mFscore"])
    expected = {("aAcc" if k == "aAcc" else f"m{k}"): np.round(np.nanmean(v) * 100, 2) for k, v in theirs.items()}
    ours = summary_percent(total_area_to_metrics(*totals, metrics=["mIoU", "mDice", "mFscore"]))
    assert list(ours) == list(expected)
    assert {k: np.round(v, 2) for k, v in ours.items()} == expected


def test_nan_rules_without_mmseg():
    inter, union, pred, label = _totals_with_edge_cases()
    out = total_area_to_metrics(inter, union, pred, label, metrics=["mIoU", "mFscore"])
    assert np.isnan(out["IoU"][3]) and out["IoU"][5] == 0 and out["IoU"][7] == 0
    assert np.isnan(out["Acc"][5]) and np.isnan(out["Precision"][7]) and np.isnan(out["Fscore"][3])
    dice = total_area_to_metrics(inter, union, pred, label, metrics="mDice")["Dice"]
    finite = np.isfinite(out["Fscore"])               # β = 1: F1 = Dice where precision and recall exist
    np.testing.assert_allclose(out["Fscore"][finite], dice[finite], rtol=1e-12)
    assert dice[5] == 0 and dice[7] == 0 and np.isnan(dice[3])      # where F1 is NaN, Dice is 0 (mmseg: both)
    with pytest.raises(UnknownMetric):
        total_area_to_metrics(inter, union, pred, label, metrics=["mAP"])


def test_rescore_prints_and_records_mmseg_numbers(repro, make_run, ade_dist):
    ledger = ade_dist.draw(50, seed=1)
    run = make_run(ledger)
    result = repro("rescore", run, "--metrics", "mIoU,mDice,mFscore")
    assert result.exit_code == 0, result.output
    document = json.loads((run / "rescore.json").read_text())
    totals = ledger.totals()
    expected = summary_percent(total_area_to_metrics(totals["intersect"], totals["union"], totals["pred"],
                                                     totals["label"], metrics=["mIoU", "mDice", "mFscore"]))
    assert document["metrics"] == expected
    assert set(expected) == {"aAcc", "mIoU", "mAcc", "mDice", "mFscore", "mPrecision", "mRecall"}
    assert document["metrics"]["mIoU"] == pytest.approx(read_result(run)["metrics"]["mIoU"])
    assert document["ledger"]["sha256"] == read_result(run)["ledger"]["sha256"]
    assert len(document["per_class"]) == 150 and set(document["per_class"]["wall"]) == {
        "IoU", "Acc", "Dice", "Fscore", "Precision", "Recall"}
    lines = result.output.splitlines()
    assert lines[0] == f"{run}: 50 images, ledger ledger.npz (sha256 {document['ledger']['sha256'][:12]}…)"
    assert [line.split()[0] for line in lines[1:-1]] == list(expected)
    assert float(lines[2].split()[1]) == pytest.approx(expected["mIoU"], abs=5e-5)
    assert lines[-1] == f"wrote {run / 'rescore.json'} (with the per-class values)"


def test_rescore_of_an_imported_run_says_it_has_no_ledger(repro, reference, tmp_path):
    run = import_result(reference / "eva02" / "eval_eva02_L_sz512_ss.json", out_dir=tmp_path / "imported")
    result = repro("rescore", run)
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [
        f"error: {run} has no ledger to re-score: an imported result carries no per-image ledger — fix: re-score a "
        "run evaluated by `repro eval` (it writes ledger.npz)"]
    assert not (run / "rescore.json").exists()


def test_rescore_refuses_an_unknown_metric(repro, make_run, ade_dist):
    run = make_run(ade_dist.draw(10, seed=2))
    result = repro("rescore", run, "--metrics", "mIoU,mAP")
    assert result.exit_code == 2 and "unknown metric(s) mAP" in result.output
    assert not (run / "rescore.json").exists()


def test_rescore_loads_no_model_and_help_stays_light(make_run, ade_dist):
    run = make_run(ade_dist.draw(10, seed=3))
    code = ("import sys\nfrom click.testing import CliRunner\nfrom harness.cli import cli\n"
            "r = CliRunner().invoke(cli, ['--help']); assert r.exit_code == 0 and 'rescore' in r.output\n"
            "light = sorted(m for m in ('numpy', 'harness.ledger.stats', 'harness.ledger.runs') if m in sys.modules)\n"
            f"r = CliRunner().invoke(cli, ['rescore', {str(run)!r}]); assert r.exit_code == 0, r.output\n"
            "print(light, sorted(m for m in ('torch', 'mmcv', 'mmseg') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[] []"
