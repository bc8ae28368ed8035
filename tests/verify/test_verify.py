"""`repro verify` on records written here: tiers, statistics over seeds, baselines, bad input."""
import json
import math
import re

import pytest

from harness.verify.compare import verify_runs


def test_verdict_as_data_has_one_row_per_metric_and_class(make_record):
    run = make_record(metrics={"aAcc": 86.67, "mIoU": 59.74, "mAcc": 72.05})
    verdict = verify_runs([run], tier="released")
    frame = verdict.frame()
    assert len(frame) == 3 + 300
    row = frame.set_index("key").loc["mIoU"]
    assert (row["obtained"], row["expected"], row["tolerance"], row["status"]) == (59.74, 59.77, 0.10, "pass")
    assert row["delta"] == pytest.approx(-0.03)
    assert verdict.lines() == ["eva02_L_sz512 ss: mIoU 59.74 vs 59.77 published, within ±0.10 — PASS (303 checks); "
                               "tier released (released weights, published protocol); overrides: none"]


def test_tolerance_edge_and_per_class_band(make_record, with_means):
    source = make_record().joinpath("result.json")
    per_class = json.loads(source.read_text())["per_class"]
    per_class["wall"]["IoU"] = 82.66 - 1.2          # per-class tolerance at released is 1.0
    metrics = {"aAcc": 86.67 + 0.05, "mIoU": 59.77 + 0.11, "mAcc": 72.05}
    run = make_record(metrics=metrics, per_class=with_means(per_class, metrics, keep=["wall"]))
    verdict = verify_runs([run], tier="released")
    failed = {c.key: c for c in verdict.failures()}
    assert set(failed) == {"mIoU", "IoU[wall]"}      # aAcc exactly at its tolerance passes
    assert failed["IoU[wall]"].message().startswith(
        "eva02_L_sz512 ss IoU[wall]: obtained 81.46, expected 82.66 (published), |Δ| 1.20 > tolerance 1.00 [released]")


def test_missing_and_nan_per_class_values_are_failures_of_their_own(make_record):
    source = json.loads(make_record().joinpath("result.json").read_text())["per_class"]
    del source["sky"]
    source["tree"]["IoU"] = None                       # NaN is written as null
    run = make_record(per_class=source)
    verdict = verify_runs([run], tier="released")
    status = {c.key: c.status for c in verdict.failures()}
    assert status == {"IoU[sky]": "missing", "Acc[sky]": "missing", "IoU[tree]": "not-finite"}


def test_retrain_single_run_is_judged_against_the_band(make_record, repro):
    inside = make_record(kind="train", metrics={"aAcc": 86.4, "mIoU": 58.9, "mAcc": 71.0})
    outside = make_record(kind="train", protocol="ms", metrics={"aAcc": 86.9, "mIoU": 59.1, "mAcc": 72.5})
    result = repro("verify", inside, outside)          # tier auto: retrain for training runs
    assert result.exit_code == 1
    # the bands are per reproduction and protocol (expected/tolerances.toml [retrain.reproductions])
    assert ("eva02_L_sz512 ss: mIoU 58.90 vs 59.77 published, within ±1.40 — PASS (3 checks); tier retrain "
            "(a training run, not the released weights); overrides: none") in result.output
    assert ("eva02_L_sz512 ms mIoU: obtained 59.10, expected 60.42 (published), |Δ| 1.32 > tolerance 1.20 "
            "[retrain]") in result.output


def test_retrain_seeds_are_judged_statistically(make_record, repro):
    good = [make_record(kind="train", metrics={"aAcc": a, "mIoU": v, "mAcc": 71.9})
            for a, v in ((86.55, 59.2), (86.7, 59.9), (86.6, 59.5))]
    result = repro("verify", *good, "--tier", "retrain", "-v")
    assert result.exit_code == 0, result.output
    assert "mIoU[statistics] PASSED" in result.output
    assert "eva02_L_sz512 ss, mIoU over 3 runs: mean 59.53 ± 0.35 (n=3) vs 59.77 published" in result.output

    # each run is within the ±1.0 band of a single run, but together they are significantly low
    low = [make_record(kind="train", metrics={"aAcc": a, "mIoU": v, "mAcc": 71.9})
           for a, v in ((86.55, 58.8), (86.7, 58.9), (86.6, 58.85))]
    result = repro("verify", *low, "--tier", "retrain")
    assert result.exit_code == 1
    assert "1 failed, 11 passed" in result.output     # 3 runs x 3 metrics + aAcc/mIoU/mAcc over the runs
    assert "vs 59.77 published: significantly below (one-sided t = " in result.output


def test_demo_baseline_missing_then_regenerated(make_record, expected_copy, repro):
    summary = expected_copy / "summary.csv"      # start from a demo baseline that was never measured
    summary.write_text("\n".join(re.sub(r"^(eva02_demo,\w+,\w+),[^,]*,", r"\1,,", line)
                                 for line in summary.read_text().splitlines()) + "\n")
    metrics = {"aAcc": 41.234, "mIoU": 12.5, "mAcc": 20.0}
    run = make_record(reproduction="eva02_demo", metrics=metrics, per_class={})
    first = repro("verify", run, "--expected", expected_copy)
    assert first.exit_code == 1
    assert ("eva02_demo ss mIoU: obtained 12.50, no expected value yet (harness baseline not measured) — source: "
            "expected/summary.csv (this harness: `repro demo` measured by the lead)") in first.output

    regen = repro("verify", run, "--expected", expected_copy, "--regen")
    assert regen.exit_code == 1                        # written, and failing once, as pytest-regressions does
    assert "written as the new baseline" in regen.output
    assert "eva02_demo,ss,aAcc,41.23,true,demo-baseline" in (expected_copy / "summary.csv").read_text()

    again = repro("verify", run, "--expected", expected_copy)
    assert again.exit_code == 0, again.output
    # a baseline reproduction is judged at tier `baseline` unless --tier says otherwise
    assert "eva02_demo ss: mIoU 12.50 vs 12.50 baseline, within ±5.00 — PASS (3 checks)" in again.output
    strict = repro("verify", run, "--expected", expected_copy, "--tier", "released")
    assert "eva02_demo ss: mIoU 12.50 vs 12.50 baseline, within ±0.10 — PASS (3 checks)" in strict.output


def test_regen_refuses_published_reproductions(make_record, expected_copy, repro):
    result = repro("verify", make_record(), "--expected", expected_copy, "--regen")
    assert result.exit_code == 2
    assert result.stderr.startswith("error: --regen rewrites harness baselines only; eva02_L_sz512 holds published")


# ---- bad input: exit code 2 and one clear line --------------------------------------------------------------

def test_verify_empty_file(tmp_path, repro):
    empty = tmp_path / "result.json"
    empty.write_text("")
    result = repro("verify", empty)
    assert result.exit_code == 2
    assert result.stderr == (f"error: {empty} is empty — fix: re-run the command that writes it, or `repro import` "
                             "the source file\n")


def test_verify_record_without_metrics(make_record, repro):
    run = make_record(metrics={})
    result = repro("verify", run)
    assert result.exit_code == 2
    assert result.stderr == (f"error: {run / 'result.json'} has no metrics to verify — fix: verify a finished "
                             "eval/train run, or `repro import` a file that holds metrics\n")


@pytest.mark.parametrize("value", [None, math.inf])
def test_verify_nan_metric(make_record, repro, value):
    run = make_record(metrics={"aAcc": 86.67, "mIoU": value, "mAcc": 72.05})   # NaN and inf are stored as null
    result = repro("verify", run)
    assert result.exit_code == 2
    assert result.stderr == (f"error: {run / 'result.json'}: mIoU is nan (NaN/inf or null) — fix: the evaluation "
                             "produced no usable value; re-run it or re-import the source file\n")


def test_verify_missing_summary_metric(make_record, repro):
    run = make_record(metrics={"aAcc": 86.67, "mIoU": 59.77})
    result = repro("verify", run)
    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: {run / 'result.json'}: mAcc is missing from metrics — fix:")


def test_verify_unknown_class_names(make_record, repro):
    run = make_record(per_class={"wall": {"IoU": 82.0, "Acc": 90.0}, "bed": {"IoU": 93.0, "Acc": 96.0}})
    result = repro("verify", run)
    assert result.exit_code == 2
    assert result.stderr == (f"error: {run / 'result.json'}: unknown class name(s) 'bed' in per_class — fix: use the "
                             "150 ADE20K class names of datasets/ade20k/dataset.toml verbatim ('bed ' ends in a "
                             "space)\n")


def test_verify_unknown_reproduction(make_record, repro):
    result = repro("verify", make_record(reproduction="eva02_L_sz1024"))
    assert result.exit_code == 2
    assert result.stderr.startswith("error: Unknown reproduction 'eva02_L_sz1024'. Did you mean: eva02_L_sz512")


def test_verify_negative_tolerance(make_record, expected_copy, repro):
    tolerances = expected_copy / "tolerances.toml"
    text = tolerances.read_text()
    tolerances.write_text(text.replace("[released.metrics.mIoU]\nabs = 0.10", "[released.metrics.mIoU]\nabs = -0.10"))
    result = repro("verify", make_record(), "--expected", expected_copy)
    assert result.exit_code == 2
    assert result.stderr == (f"error: {tolerances}: field 'released.metrics.mIoU.abs' must be >= 0, found -0.1 — fix: "
                             "tolerances are absolute percentage points >= 0, each with a rationale; compare with "
                             "`git diff expected/`\n")


def test_verify_malformed_tolerance_file(make_record, expected_copy, repro):
    (expected_copy / "tolerances.toml").write_text("[released\nabs = ")
    result = repro("verify", make_record(), "--expected", expected_copy)
    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: cannot read {expected_copy / 'tolerances.toml'}: ")
    assert len(result.stderr.strip().splitlines()) == 1


def test_verify_failed_run_names_the_failure(make_record, repro):
    run = make_record(metrics={}, status="failed", failure="torchrun exited 1 (CUDA out of memory)")
    result = repro("verify", run)
    assert result.exit_code == 2
    assert result.stderr.startswith(f"error: {run / 'result.json'}: the run failed (torchrun exited 1 (CUDA out of "
                                    "memory)); nothing to verify — fix:")


def test_a_missing_baseline_row_is_no_expected_value_and_regen_adds_it(make_record, expected_copy, repro):
    summary = expected_copy / "summary.csv"
    summary.write_text("".join(line for line in summary.read_text().splitlines(keepends=True)
                               if not line.startswith("eva02_demo,ms,mAcc")))
    run = make_record(reproduction="eva02_demo", protocol="ms", metrics={"aAcc": 40.0, "mIoU": 10.0, "mAcc": 15.0},
                      per_class={})
    first = repro("verify", run, "--expected", expected_copy)
    assert first.exit_code == 1
    assert (f"eva02_demo ms mAcc: obtained 15.00, no expected value yet (harness baseline not measured) — source: "
            f"{expected_copy / 'summary.csv'} has no row yet") in first.output
    assert repro("verify", run, "--expected", expected_copy, "--regen").exit_code == 1
    assert "eva02_demo,ms,mAcc,15.00,true,harness-baseline" in summary.read_text()
    assert repro("verify", run, "--expected", expected_copy).exit_code == 0
