"""The authors' B-512 log as the built-in reference of `repro train eva02_B_sz512`: a dry run on CPU runs the lr
schedule through mmcv's real LrUpdaterHook on the B-512 model's real param groups (layer decay included; model
built on torch's meta device, no forward pass) for the 250 iterations the authors logged, and judges it; the
setup check refuses 2 processes × 4."""
import re

import pytest
from click.testing import CliRunner

from harness.cli import cli

LAUNCH = ["--launcher", "torchrun", "--gpus", "4", "--device", "cuda"]   # the published 4 GPUs × 8, AMP, SyncBN


def repro(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


def test_dry_run_lr_of_the_first_250_iterations_is_on_track(tmp_path):
    result = repro("train", "eva02_B_sz512", *LAUNCH, "--work-dir", tmp_path / "w", "--dry-run")
    assert result.exit_code == 2, result.output          # no pretrained weights, no data here: the plan, then that
    assert result.stderr.startswith("error: dry run: the real run would be refused: ")
    assert "setup differs" not in result.stderr
    notes = [ln for ln in result.output.splitlines() if ln.startswith("# note: ")]
    assert not [n for n in notes if "setup differs" in n]
    lr = [n for n in notes if "early verdict of the lr schedule" in n]
    assert lr == ["# note: early verdict of the lr schedule (dry run, mmcv's LrUpdaterHook on the model's param "
                  "groups, 5 logged iterations): on track (lr at 5 points)"]


def test_dry_run_with_the_lr_doubled_is_off_track_at_the_first_logged_iteration_naming_lr(tmp_path):
    result = repro("train", "eva02_B_sz512", *LAUNCH, "--work-dir", tmp_path / "w", "--dry-run",
                   "--cfg-options", "optimizer.lr=0.00012")
    assert result.exit_code == 2, result.output          # the setup difference is the first refusal
    assert result.stderr.startswith("error: dry run: the real run would be refused: setup differs from the "
                                    "reference: lr: 0.00012 here")
    assert "early verdict of the lr schedule (dry run, mmcv's LrUpdaterHook on the model's param groups, 5 logged " \
           "iterations): off track (first at iter 50: lr: lr 4.736e-07 vs 2.368e-07 in built-in " \
           "20230318_173313.log.json, seed 0 (tolerance 5.0e-11))" in result.output
    assert re.search(r"# note: setup differs from the reference: lr: 0\.00012 here, 6e-05 in built-in", result.output)


def test_two_processes_of_four_instead_of_four_of_eight_is_named_and_refused(tmp_path):
    result = repro("train", "eva02_B_sz512", "--launcher", "torchrun", "--gpus", "2", "--samples-per-gpu", "4",
                   "--device", "cuda", "--allow-batch-mismatch", "--work-dir", tmp_path / "w")
    assert result.exit_code == 2
    assert result.output.strip() == (
        "error: setup differs from the reference: total_batch: 8 (2 × 4) here, 32 (4 × 8) in built-in "
        "20230318_173313.log.json, seed 0 — fix: match it, or pass --allow-setup-difference total_batch to train "
        "anyway (recorded)")
    assert not (tmp_path / "w").exists()


def dry_run(reproduction, **given) -> dict:
    """The plan a dry run returns; here (no pretrained weights, no data) it comes with the refusal."""
    from harness.run.api import DryRunRefused, train
    try:
        return train(reproduction, dry_run=True, **given)
    except DryRunRefused as exc:
        return exc.plan


def test_allowed_difference_is_recorded_in_the_dry_run_job(tmp_path):
    from harness.run.options import LaunchOptions
    out = dry_run("eva02_B_sz512", launch=LaunchOptions("torchrun", gpus=2), samples_per_gpu=4, device="cuda",
                  allow_batch_mismatch=True, allow_setup_difference=["total_batch"], echo=lambda *_: None,
                  work_dir=tmp_path / "w")
    setup = out["job"]["curves"]["setup"]
    assert setup["allowed"] == ["total_batch"] and [d["name"] for d in setup["differences"]] == ["total_batch"]
    assert "refused" not in setup
    assert out["job"]["curves"]["references"][0]["sha256"] == (
        "1090c0071937ff1e543edfc4d88947fd4e79f78c50ba54a1df30657f470c653d")


@pytest.mark.parametrize("spec", ["none"])
def test_no_reference_no_hook(tmp_path, spec):
    from harness.run.options import LaunchOptions
    out = dry_run("eva02_B_sz512", launch=LaunchOptions("torchrun", gpus=4), device="cuda", reference=[spec],
                  echo=lambda *_: None, work_dir=tmp_path / "w")
    assert out["job"]["curves"] is None
