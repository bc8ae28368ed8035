"""Preflight failures: one line with the fix, a non-zero exit, and no run directory at all."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from harness.errors import ReproError
from harness.run.preflight import check_batch, check_checkpoint_file
from harness.registry import get


def error_lines(result) -> list[str]:
    return [ln for ln in result.stderr.splitlines() if ln.strip()]


def runs_root() -> Path:
    return Path(os.environ["REPRO_RUNS"])


def assert_one_line_failure(result, *words):
    assert result.exit_code != 0, result.output
    lines = error_lines(result)
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    for word in words:
        assert word in lines[0], lines[0]
    assert not any(runs_root().rglob("result.json")) and not any(runs_root().rglob("job.json"))


def test_unknown_reproduction(repro):
    result = repro("eval", "eva02_L_sz521")
    assert_one_line_failure(result, "Unknown reproduction 'eva02_L_sz521'", "Did you mean: eva02_L_sz512")


def test_missing_weights(repro, synthetic_root):
    result = repro("eval", "eva02_L_sz512", "--data-root", synthetic_root)
    assert_one_line_failure(result, "eva02_L_sz512", "repro download eva02_L_sz512")


def test_missing_dataset(repro, tmp_path):
    import torch
    ckpt = tmp_path / "model.pth"
    torch.save({"state_dict": {}}, ckpt)
    result = repro("eval", "eva02_demo", "--checkpoint", ckpt, "--data-root", tmp_path / "nowhere")
    nowhere = (tmp_path / "nowhere").resolve()
    # the whole command to run is in one pair of backquotes, with the --data-root that was given
    assert_one_line_failure(result, "not found", f"run `repro prepare ade20k --synthetic 64 --data-root {nowhere}`")


@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_corrupt_checkpoint(repro, synthetic_root, tmp_path, damage):
    import torch
    ckpt = tmp_path / "model.pth"
    if damage == "garbage":
        ckpt.write_bytes(os.urandom(4096))
    else:
        torch.save({"state_dict": {"w": torch.zeros(1000)}}, ckpt)
        ckpt.write_bytes(ckpt.read_bytes()[:-200])
    result = repro("eval", "eva02_demo", "--checkpoint", ckpt, "--data-root", synthetic_root)
    assert_one_line_failure(result, "corrupt", str(ckpt))


def test_checkpoint_check_accepts_a_torch_file(tmp_path):
    import torch
    torch.save({"a": torch.ones(2)}, tmp_path / "ok.pth")
    check_checkpoint_file(tmp_path / "ok.pth")


def test_batch_mismatch_is_refused_with_the_fix():
    rep = get("eva02_L_sz512")  # published: 8 GPUs x 2 = 16
    with pytest.raises(ReproError) as info:
        check_batch(rep, world_size=4, samples_per_gpu=2, accumulate=1, allow_mismatch=False)
    assert "total batch 8" in info.value.message and "published 16" in info.value.message
    assert "--accumulate 2" in info.value.fix
    assert check_batch(rep, 4, 2, 2, False)["total_batch"] == 16


def test_batch_mismatch_allowed_is_recorded_and_warned(caplog):
    rep = get("eva02_B_sz512")  # 4 x 8 = 32
    record = check_batch(rep, world_size=1, samples_per_gpu=2, accumulate=1, allow_mismatch=True)
    assert record == {"published_total_batch": 32, "total_batch": 2, "allow_batch_mismatch": True,
                      "warning": record["warning"]}
    assert "differs from the published 32" in caplog.text


def test_train_refuses_a_batch_mismatch_before_anything_runs(repro, synthetic_root):
    result = repro("train", "eva02_L_sz512", "--launcher", "torchrun", "--gpus", "4", "--data-root", synthetic_root)
    assert_one_line_failure(result, "differs from the published 16", "--accumulate 2", "--allow-batch-mismatch")


def test_checkpoint_may_be_a_train_run_directory(tmp_path):
    import torch

    from harness.run.preflight import Notes, resolve_checkpoint
    from harness.run.record import write_result
    run = tmp_path / "train"
    run.mkdir()
    torch.save({"state_dict": {}}, run / "best_mIoU_iter_8.pth")
    write_result(run, {"reproduction": "eva02_demo", "protocol": "ss", "kind": "train", "status": "succeeded",
                       "artifacts": {"best_checkpoint": "best_mIoU_iter_8.pth", "final_checkpoint": "iter_8.pth"}})
    ckpt = resolve_checkpoint(get("eva02_demo"), run, Notes())
    assert ckpt["path"] == str(run / "best_mIoU_iter_8.pth") and len(ckpt["sha256"]) == 64
    assert ckpt["source"] == f"train run {run} (best_mIoU_iter_8.pth)"
    with pytest.raises(ReproError, match="no result record"):
        resolve_checkpoint(get("eva02_demo"), tmp_path, Notes())
