"""The fast evaluation path (harness/engine/evaluate_fast.py) against the golden mini outputs and against mmseg's
own inference and metrics on the same model and input: batched windows, stitching, resize, softmax, flip-back,
mean over augmentations, argmax and the device histograms."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import GOLDEN
from test_golden import golden_config, run_pipeline

pytest.importorskip("mmseg.apis")

ATOL = 1e-4


@pytest.fixture(scope="module")
def golden_model():
    from mmcv.cnn.utils import revert_sync_batchnorm
    from mmseg.models import build_segmentor

    import harness.engine.modules  # noqa: F401
    from harness.engine.checkpoint import load_seg_checkpoint
    cfg = golden_config()
    model = revert_sync_batchnorm(build_segmentor(cfg.model))
    load_seg_checkpoint(model, GOLDEN / "weights.pth")
    return cfg, model.eval()


def _sample(steps):
    from harness.engine.evaluate_fast import Sample
    imgs, metas = run_pipeline(steps)
    return Sample(0, [img[0] for img in imgs], [m[0] for m in metas])


def _fast_logits(model, sample, batch_size):
    """Per view: the stitched logits at ori_shape (what slide_inference(rescale=True) returns)."""
    from harness.engine.evaluate_fast import aug_passes, rescaled_logits, run_window_batches
    passes = run_window_batches(model, aug_passes([sample], model.test_cfg, "cpu"), batch_size, "fp32")
    return [(p, rescaled_logits(p, model.align_corners)) for p in passes]


def test_window_grid_is_slide_inference_grid():
    from harness.engine.evaluate_fast import window_grid
    cfg = {"mode": "slide", "crop_size": (512, 512), "stride": (341, 341)}
    assert window_grid(512, 683, cfg) == [(0, 512, 0, 512), (0, 512, 171, 683)]
    assert window_grid(512, 512, cfg) == [(0, 512, 0, 512)]
    assert len(window_grid(896, 3675, cfg)) == 3 * 11
    assert window_grid(300, 700, cfg) == [(0, 300, 0, 512), (0, 300, 188, 700)]    # short side below the crop
    assert window_grid(300, 700, {"mode": "whole"}) == [(0, 300, 0, 700)]


def test_golden_slide_logits_through_batched_windows(golden_model, golden_expected):
    """Both windows of the golden image in one batch: logits at ori_shape within 1e-4 of the authors' golden file."""
    cfg, model = golden_model
    sample = _sample(cfg.ss)
    with torch.no_grad():
        views = _fast_logits(model, sample, batch_size=8)
    (view, logits), = views
    assert len(view.windows) == 2 and list(logits.shape) == golden_expected["ss_logits_shape"].tolist()
    diff = float((logits[:, :, ::4, ::4] - torch.from_numpy(golden_expected["ss_logits_sub4"])).abs().max())
    assert diff <= ATOL, f"max |fast - golden| {diff:.3g}"


def test_golden_multi_scale_flip_prediction(golden_model, golden_expected):
    """Six scales x flip, windows of all 12 views batched across views: the argmax matches the golden ms map
    and mmseg's aug_test on the same model."""
    from harness.engine.evaluate_fast import predictions
    cfg, model = golden_model
    sample = _sample(cfg.ms)
    imgs, metas = run_pipeline(cfg.ms)
    with torch.no_grad():
        (_, fast), = list(predictions(model, [sample], batch_size=5))
        stock = model(return_loss=False, img=imgs, img_metas=metas, rescale=True)[0]
    fast = fast.numpy()
    assert (fast == stock).mean() >= 0.9999, f"fast vs mmseg aug_test: {(fast == stock).mean():.5f}"
    assert (fast == golden_expected["ms_pred"]).mean() >= 0.999


def test_batch_size_does_not_change_the_logits(golden_model):
    cfg, model = golden_model
    sample = _sample(cfg.ms)
    with torch.no_grad():
        one = [x for _, x in _fast_logits(model, sample, batch_size=1)]
        many = [x for _, x in _fast_logits(model, sample, batch_size=7)]
    assert len(one) == len(many) == 12
    assert max(float((a - b).abs().max()) for a, b in zip(one, many)) <= ATOL


def test_a_batch_never_holds_two_images_windows(golden_model, monkeypatch):
    """Three copies of the golden ss sample (2 windows of one shape each) through batches of up to 7 windows: every
    forward holds windows of one image, so an image's logits do not depend on the images before it (a resumed or
    re-sharded evaluation gives the same pixels); each image still gets all its windows."""
    from harness.engine.evaluate_fast import Sample, aug_passes, run_window_batches
    cfg, model = golden_model
    one = _sample(cfg.ss)
    samples = [Sample(i, one.imgs, [dict(m, ori_filename=f"img{i}") for m in one.metas]) for i in range(3)]
    seen, encode_decode = [], model.encode_decode

    def recording(crops, metas):
        seen.append([m["ori_filename"] for m in metas])
        return encode_decode(crops, metas)
    monkeypatch.setattr(model, "encode_decode", recording)
    with torch.no_grad():
        views = list(run_window_batches(model, aug_passes(samples, model.test_cfg, "cpu"), 7, "fp32"))
    assert len(views) == 3 and all(len(set(names)) == 1 for names in seen), seen
    assert max(map(len, seen)) > 1                                    # windows of one image are still batched
    per_image = {name: sum(len(b) for b in seen if b[0] == name) for name in ("img0", "img1", "img2")}
    assert len(set(per_image.values())) == 1


@pytest.mark.parametrize("reduce_zero_label", [True, False])
def test_device_histograms_equal_mmseg_intersect_and_union(reduce_zero_label):
    from mmseg.core.evaluation.metrics import intersect_and_union

    from harness.engine.evaluate_fast import area_histograms, pre_eval_format
    rng = np.random.default_rng(0)
    label = rng.integers(0, 152, (97, 131)).astype(np.uint8)
    label[:5] = 255
    label[5:9] = 0
    pred = rng.integers(0, 150, (97, 131))
    pred[20:40] = label[20:40].astype(np.int64) % 150       # some agreement, so intersections are not empty
    theirs = intersect_and_union(pred.copy(), label.copy(), 150, 255, label_map={},
                                 reduce_zero_label=reduce_zero_label)
    counts = area_histograms(torch.from_numpy(pred), torch.from_numpy(label), 150, 255, reduce_zero_label)
    ours = pre_eval_format(counts)
    for a, b in zip(ours, theirs):
        assert a.dtype == b.dtype and torch.equal(a, b)
    assert float(ours[0].sum()) > 0
