"""Tier auto follows the evidence: released only for the released weights with the published protocol."""
import json

import pytest

from harness.verify.compare import verify_runs
from harness.verify.provenance import checkpoint_provenance, overrides


def _line(result):
    return next(line for line in result.output.splitlines() if line.startswith("eva02_L_sz512 ss: mIoU"))


def test_released_weights_with_the_published_protocol_are_judged_released(make_record, repro):
    result = repro("verify", make_record())
    assert result.exit_code == 0, result.output
    assert _line(result).endswith("— PASS (303 checks); tier released (released weights, published protocol); "
                                  "overrides: none")


def test_a_checkpoint_of_a_training_run_is_retrain(make_record, repro, tmp_path):
    train_dir = make_record(kind="train")          # a `repro train` run directory with its checkpoint beside it
    (train_dir / "best_mIoU_iter_800.pth").write_bytes(b"weights")
    checkpoint = checkpoint_provenance({"path": str(train_dir / "best_mIoU_iter_800.pth"), "sha256": "ab" * 32,
                                        "source": "local file (--checkpoint)"}, released_sha256="5e" * 32)
    assert (checkpoint["provenance"], checkpoint["train_run"]) == ("train-run", str(train_dir))
    result = repro("verify", make_record(checkpoint=checkpoint))
    assert result.exit_code == 0, result.output
    assert f"tier retrain (checkpoint from the `repro train` run {train_dir}); overrides: none" in _line(result)


def test_any_other_checkpoint_is_retrain_saying_why_and_refused_at_released(make_record, repro, tmp_path):
    mine = tmp_path / "mine.pth"
    mine.write_bytes(b"someone's weights")
    checkpoint = checkpoint_provenance({"path": str(mine), "sha256": "cd" * 32, "source": "local file (--checkpoint)"},
                                       released_sha256="5e" * 32)
    assert checkpoint["provenance"] == "other"
    run = make_record(checkpoint=checkpoint)
    auto = repro("verify", run)
    assert auto.exit_code == 0, auto.output
    assert "tier retrain (checkpoint is not the released file (sha256 cdcdcdcdcdcd…)); overrides: none" in _line(auto)
    assert "within ±1.40" in _line(auto)
    released = repro("verify", run, "--tier", "released")
    assert released.exit_code == 2
    assert released.stderr == (
        f"error: {run / 'result.json'}: --tier released judges the released weights with the published protocol, "
        "and this run differs: checkpoint is not the released file (sha256 cdcdcdcdcdcd…) — fix: verify it with "
        "--tier auto or --tier retrain\n")


def test_the_released_file_under_another_name_is_released():
    checkpoint = checkpoint_provenance({"path": "/tmp/copy.pth", "sha256": "5E" * 32, "source": "local file"},
                                       released_sha256="5e" * 32)
    assert checkpoint["provenance"] == "released"


def test_overrides_that_change_the_model_or_test_pipeline_are_not_the_published_protocol(make_record, repro):
    changed = make_record(overrides={"cfg_options": {"model.test_cfg.mode": "whole"}, "engine": "fast"})
    auto = repro("verify", changed)
    assert auto.exit_code == 0, auto.output
    assert _line(auto).endswith("tier retrain (--cfg-options model.test_cfg.mode='whole' changes the model or test "
                                "pipeline); overrides: cfg_options model.test_cfg.mode='whole', engine=fast")
    refused = repro("verify", changed, "--tier", "released")
    assert refused.exit_code == 2 and "model.test_cfg.mode='whole' changes the model or test pipeline" in refused.stderr

    bf16 = repro("verify", make_record(overrides={"precision": "bf16"}))
    assert "tier retrain (precision bf16 (published: fp32)); overrides: precision=bf16" in _line(bf16)

    # loader workers change nothing the model sees: still the published protocol, and the line says what was set
    neutral = repro("verify", make_record(overrides={"cfg_options": {"data.workers_per_gpu": 8}, "engine": "fast"}))
    assert _line(neutral).endswith("tier released (released weights, published protocol); overrides: cfg_options "
                                   "data.workers_per_gpu=8, engine=fast")


def test_overrides_of_a_job_are_fields():
    job = {"kind": "train", "cfg_options": {"optimizer.lr": 1e-4}, "precision": "fp32", "engine": "stock",
           "batch": {"total_batch": 8, "published_total_batch": 16}, "accumulate": 2, "max_iters": 800}
    assert overrides(job, published_total_batch=16, published_max_iters=80000) == {
        "cfg_options": {"optimizer.lr": 1e-4}, "total_batch": 8, "accumulate": 2, "max_iters": 800}
    assert overrides({"kind": "eval", "precision": "fp32", "engine": "stock"}) == {}


def test_the_authors_released_eval_file_is_released_and_an_altered_copy_is_not(eva02, tmp_path, repro):
    run = tmp_path / "authors"
    assert repro("import", eva02 / "eval_eva02_L_sz512_ss.json", "-o", run).exit_code == 0
    record = json.loads((run / "result.json").read_text())
    assert record["checkpoint"]["provenance"] == "released"
    assert record["eval_json"]["sha256"] == "2aee90fb9cae0eaf0b3ec5fc29c1ee95ac97d0e9b3964c566966ae6ad80af058"
    assert "tier released (released weights, published protocol)" in repro("verify", run).output

    copy = tmp_path / "copy.json"            # same numbers, different bytes: nothing says which weights it measured
    copy.write_text(json.dumps(json.loads((eva02 / "eval_eva02_L_sz512_ss.json").read_text())))
    other = tmp_path / "other"
    assert repro("import", copy, "-o", other).exit_code == 0
    assert "tier retrain (checkpoint not recorded (not recorded: imported from copy.json))" in repro(
        "verify", other).output


@pytest.mark.parametrize("tier", ["retrain", "baseline"])
def test_an_explicit_lower_tier_is_allowed_and_said(make_record, tier):
    verdict = verify_runs([make_record()], tier=tier)
    assert f"; tier {tier} (released weights, published protocol); overrides: none" in verdict.lines()[0]


def test_the_report_shows_the_tier_its_reason_and_the_overrides(make_record, repro, tmp_path):
    run = make_record(overrides={"precision": "bf16", "engine": "fast"})
    assert repro("report", run, "-o", tmp_path / "reports").exit_code == 0
    page = next((tmp_path / "reports").glob("eva02_L_sz512_ss_*.html")).read_text()
    assert "at tier <b>retrain</b> (precision bf16 (published: fp32))" in page
    assert "<tr><th>overrides</th><td>precision=bf16, engine=fast</td></tr>" in page
    assert "checkpoint provenance</th><td>released" in page
