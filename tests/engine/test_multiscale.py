"""The multi-scale protocol: SETR-style resize gives the authors' 12 passes; mmseg's aug_test averages softmax."""
from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
from conftest import CONFIGS, DEMO_MS, build_model, load_config


def run_test_pipeline(cfg, image_path):
    from mmcv.parallel import collate
    from mmseg.datasets.pipelines import Compose
    data = Compose(cfg.data.test.pipeline)(dict(img_info=dict(filename=str(image_path)), img_prefix=None))
    data = collate([data], samples_per_gpu=1)
    return list(data['img']), [m.data[0] for m in data['img_metas']]


@pytest.mark.parametrize('hw', [(512, 683), (683, 512), (300, 400)])
def test_l_ms_short_sides(tmp_path, hw):
    image = tmp_path / 'img.jpg'
    cv2.imwrite(str(image), np.full((*hw, 3), 127, np.uint8))
    imgs, metas = run_test_pipeline(load_config(CONFIGS['eva02_L_sz512_ms']), image)
    shorts = [(min(m[0]['img_shape'][:2]), m[0]['flip']) for m in metas]
    assert shorts == [(s, f) for s in (512, 512, 512, 640, 768, 896) for f in (False, True)]
    for img, m in zip(imgs, metas):  # aspect kept, long side uncapped, images really flipped
        h, w = m[0]['img_shape'][:2]
        assert tuple(img.shape[2:]) == (h, w) and (h > w) == (hw[0] > hw[1])
        assert max(h, w) == int(max(hw) * min(h, w) / min(hw) + 0.5)


def test_ss_short_side_is_crop(tmp_path):
    image = tmp_path / 'img.jpg'
    cv2.imwrite(str(image), np.full((300, 400, 3), 127, np.uint8))
    _, metas = run_test_pipeline(load_config(CONFIGS['eva02_L_sz640']), image)
    assert len(metas) == 1 and min(metas[0][0]['img_shape'][:2]) == 640


def test_aug_test_averages_softmax(tmp_path):
    """The segmentor's 12-pass prediction is the argmax of the mean softmax (flipped passes flipped back)."""
    cfg = load_config(DEMO_MS)
    torch.manual_seed(0)
    model = build_model(cfg).eval()
    rng = np.random.default_rng(0)
    image = tmp_path / 'img.png'
    cv2.imwrite(str(image), rng.integers(0, 255, (90, 120, 3)).astype(np.uint8))
    imgs, metas = run_test_pipeline(cfg, image)
    assert len(imgs) == 12
    with torch.no_grad():
        pred = model(return_loss=False, img=imgs, img_metas=metas, rescale=True)[0]
        probs = []
        for img, meta in zip(imgs, metas):
            p = model.slide_inference(img, meta, rescale=True).softmax(dim=1)
            probs.append(p.flip(dims=(3,)) if meta[0]['flip'] else p)
        mean_prob = torch.stack(probs).mean(0)
    assert pred.shape == (90, 120)
    np.testing.assert_array_equal(pred, mean_prob.argmax(1)[0].numpy())
