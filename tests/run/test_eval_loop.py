"""Our evaluation loop (harness.engine.evaluate.evaluate_loader) gives exactly what mmseg's single_gpu_test gives: the
same per-image areas (as the ledger's int64 rows), and metrics equal to mmseg's to the last digit."""
from __future__ import annotations

import pytest

pytest.importorskip("mmseg.apis")


@pytest.mark.slow
def test_our_loop_matches_mmseg_single_gpu_test(synthetic_root):
    import numpy as np
    import torch
    from mmcv.cnn.utils import revert_sync_batchnorm
    from mmcv.parallel import MMDataParallel
    from mmseg.apis import single_gpu_test
    from mmseg.datasets import build_dataloader, build_dataset
    from mmseg.models import build_segmentor

    from harness.engine.config import build_config
    from harness.engine.evaluate import evaluate_loader, metrics_percent
    from harness.registry import get

    rep = get("eva02_demo")
    cfg = build_config({"kind": "eval", "config": str(rep.config_path("ss")), "data_root": str(synthetic_root),
                        "run_dir": None, "cfg_options": {"data.workers_per_gpu": 0}}, device="cpu")
    torch.manual_seed(0)
    model = build_segmentor(cfg.model, test_cfg=cfg.get("test_cfg"))
    model.init_weights()
    model = MMDataParallel(revert_sync_batchnorm(model))
    dataset = build_dataset(cfg.data.test, {"test_mode": True})

    def loader():
        return build_dataloader(dataset, 1, 0, dist=False, shuffle=False, persistent_workers=False)

    theirs = single_gpu_test(model, loader(), pre_eval=True)
    ours, seconds = evaluate_loader(model, loader(), {"rank": 0, "world_size": 1, "distributed": False,
                                                      "device": "cpu"})
    assert len(ours) == len(theirs) == 8 and seconds > 0
    for i, ((index, pixels, areas), b) in enumerate(zip(ours, theirs)):
        assert index == i and areas.dtype == np.int64
        assert np.array_equal(areas, torch.stack(list(b)).numpy()) and pixels == dataset.get_gt_seg_map_by_idx(i).size
    metrics, per_class = metrics_percent(ours, dataset.CLASSES)
    from mmseg.core.evaluation.metrics import pre_eval_to_metrics
    exact = pre_eval_to_metrics(theirs, ["mIoU"])                 # mmseg's float32 sums of the same areas
    assert metrics["aAcc"] == float(exact["aAcc"]) * 100
    assert metrics["mIoU"] == float(np.nanmean(np.asarray(exact["IoU"], dtype=float))) * 100
    rounded = dataset.evaluate(theirs, metric="mIoU")
    assert round(metrics["mIoU"], 2) == pytest.approx(rounded["mIoU"] * 100)
    assert round(metrics["aAcc"], 2) == pytest.approx(rounded["aAcc"] * 100)
    for name in dataset.CLASSES:
        value = rounded[f"IoU.{name}"]
        if np.isnan(value):
            assert per_class[name]["IoU"] is None
        else:
            assert round(per_class[name]["IoU"], 2) == pytest.approx(value * 100)
