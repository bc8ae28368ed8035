"""`--dry-run` prints the plan either way, and exits 2 with the refusal when the real run would be refused (missing
weights, missing data, a total batch unlike the published one), 0 when it would start: a CI step can use it as the
preflight of the real run."""
from __future__ import annotations

import zipfile

import pytest

pytest.importorskip("mmcv")

DEMO = "eva02_demo"


def _plan_and_refusal(result) -> tuple[str, str]:
    assert result.stdout.startswith("# dry run: "), result.output        # the plan, printed either way
    assert "# resolved config:" in result.stdout
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    return result.stdout, (lines[0] if len(lines) == 1 else "\n".join(lines))


def _checkpoint(tmp_path):
    path = tmp_path / "model.pth"
    with zipfile.ZipFile(path, "w") as zf:                 # a torch checkpoint's shape: a zip with data.pkl
        zf.writestr("archive/data.pkl", b"")
    return path


def test_missing_weights_refuse_the_dry_run(repro, synthetic_root):
    result = repro("eval", "eva02_L_sz512", "--data-root", synthetic_root, "--device", "cpu", "--dry-run")
    assert result.exit_code == 2
    out, error = _plan_and_refusal(result)
    assert error.startswith("error: dry run: the real run would be refused: ") and "eva02_L_sz512" in error, error
    assert "weights" in error and "(and 1 more, see the notes above)" not in error.split(" — fix:")[1:]
    assert "# note: " in out and "\n" not in error


def test_missing_data_refuses_the_dry_run(repro, tmp_path):
    result = repro("eval", DEMO, "--checkpoint", _checkpoint(tmp_path), "--data-root", tmp_path / "nowhere",
                   "--device", "cpu", "--dry-run")
    assert result.exit_code == 2
    _, error = _plan_and_refusal(result)
    assert error.startswith(f"error: dry run: the real run would be refused: dataset ade20k-synthetic not found "
                            f"at {tmp_path / 'nowhere'}"), error
    assert "fix: run `repro prepare ade20k --synthetic 64" in error


def test_a_total_batch_unlike_the_published_one_refuses_the_dry_run(repro, synthetic_root):
    common = ("train", DEMO, "--samples-per-gpu", "2", "--data-root", synthetic_root, "--device", "cpu", "--dry-run")
    refused = repro(*common)                                   # 1 process x 2 images, published: 1 x 4
    assert refused.exit_code == 2
    _, error = _plan_and_refusal(refused)
    assert "would be refused: total batch 2 (world size 1 × samples per GPU 2 × accumulate 1) differs from the " \
           "published 4" in error and "--accumulate 2" in error, error
    for fix in (["--accumulate", "2"], ["--allow-batch-mismatch"]):
        started = repro(*common, *fix)
        assert started.exit_code == 0, started.output
        assert started.stdout.startswith("# dry run: train eva02_demo") and started.stderr == ""


def test_a_run_that_would_start_exits_0(repro, synthetic_root, tmp_path):
    result = repro("eval", DEMO, "--checkpoint", _checkpoint(tmp_path), "--data-root", synthetic_root,
                   "--device", "cpu", "--dry-run", "--work-dir", tmp_path / "W")
    assert result.exit_code == 0, result.output
    assert "# note:" not in result.stdout and not (tmp_path / "W").exists()     # nothing claimed or written


def test_a_batch_dry_run_prints_every_run_and_exits_2_when_one_would_be_refused(repro, synthetic_root, tmp_path):
    result = repro("batch", f"{DEMO}:ss", "eva02_L_sz512:ss", "--data-root", synthetic_root, "--device", "cpu",
                   "--checkpoint", f"{DEMO}={_checkpoint(tmp_path)}", "--dry-run")
    assert result.exit_code == 2, result.output
    assert "# run 0: eva02_demo (ss)" in result.stdout and "# run 1: eva02_L_sz512 (ss)" in result.stdout
    assert result.stderr.startswith("error: dry run: 1 of 2 runs would be refused; run 1: "), result.stderr
