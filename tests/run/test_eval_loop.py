"""Our evaluation loop (harness.engine.evaluate.evaluate_loader) gives exactly what mmseg's single_gpu_test gives."""
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
    for a, b in zip(ours, theirs):
        for x, y in zip(a, b):
            assert torch.equal(x, y)
    metrics, per_class = metrics_percent(ours, dataset.CLASSES)
    rounded = dataset.evaluate(theirs, metric="mIoU")
    assert round(metrics["mIoU"], 2) == pytest.approx(rounded["mIoU"] * 100)
    assert round(metrics["aAcc"], 2) == pytest.approx(rounded["aAcc"] * 100)
    for name in dataset.CLASSES:
        value = rounded[f"IoU.{name}"]
        if np.isnan(value):
            assert per_class[name]["IoU"] is None
        else:
            assert round(per_class[name]["IoU"], 2) == pytest.approx(value * 100)
