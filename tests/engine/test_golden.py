"""Our EVA2 segmentor reproduces the authors' implementation on golden/mini (see its README): fp32 CPU,
features and logits within 1e-4, argmax maps agreeing on >= 99.9 % of pixels, ms augmentation shapes exact."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import GOLDEN

ATOL = 1e-4
NORM = dict(mean=[123.675, 116.28, 103.53], std=[58.395, 57.12, 57.375], to_rgb=True)


def golden_config():
    from mmcv import Config
    norm_cfg = dict(type='SyncBN', requires_grad=True)
    model = dict(
        type='EncoderDecoder', pretrained=None,
        backbone=dict(type='EVA2', img_size=128, patch_size=16, in_chans=3, embed_dim=128, depth=4, num_heads=2,
                      mlp_ratio=4 * 2 / 3, out_indices=[0, 1, 2, 3], qkv_bias=True, drop_path_rate=0.1,
                      init_values=None, use_abs_pos_emb=True, rope=True, pt_hw_seq_len=16, intp_freq=True,
                      subln=True, xattn=True, naiveswiglu=True),
        decode_head=dict(type='UPerHead', in_channels=[128] * 4, in_index=[0, 1, 2, 3], pool_scales=(1, 2, 3, 6),
                         channels=64, dropout_ratio=0.1, num_classes=150, norm_cfg=norm_cfg, align_corners=False,
                         loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=1.0)),
        auxiliary_head=dict(type='FCNHead', in_channels=128, in_index=2, channels=32, num_convs=1,
                            concat_input=False, dropout_ratio=0.1, num_classes=150, norm_cfg=norm_cfg,
                            align_corners=False,
                            loss_decode=dict(type='CrossEntropyLoss', use_sigmoid=False, loss_weight=0.4)),
        train_cfg=dict(), test_cfg=dict(mode='slide', crop_size=(128, 128), stride=(85, 85)))

    def pipeline(resize, **aug):
        return [dict(type='LoadImageFromFile'),
                dict(type='MultiScaleFlipAug', img_scale=(512, 128), **aug,
                     transforms=[resize, dict(type='RandomFlip'), dict(type='Normalize', **NORM),
                                 dict(type='ImageToTensor', keys=['img']), dict(type='Collect', keys=['img'])])]
    ss = pipeline(dict(type='Resize', keep_ratio=True), flip=False)
    ms = pipeline(dict(type='SETRResize', keep_ratio=True, crop_size=(128, 128), setr_multi_scale=True),
                  img_ratios=[0.5, 0.75, 1.0, 1.25, 1.5, 1.75], flip=True)
    return Config(dict(model=model, ss=ss, ms=ms, custom_imports=dict(imports=['harness.engine.modules'])))


@pytest.fixture(scope='module')
def golden(golden_expected):
    from mmcv.cnn.utils import revert_sync_batchnorm
    from mmseg.models import build_segmentor

    import harness.engine.modules  # noqa: F401
    from harness.engine.checkpoint import load_seg_checkpoint
    cfg = golden_config()
    model = revert_sync_batchnorm(build_segmentor(cfg.model))
    load_seg_checkpoint(model, GOLDEN / 'weights.pth')  # strict: fails on any unknown/missing key
    return cfg, model.eval(), golden_expected


def run_pipeline(steps):
    from mmcv.parallel import collate
    from mmseg.datasets.pipelines import Compose
    data = Compose(steps)(dict(img_info=dict(filename=str(GOLDEN / 'image.png')), img_prefix=None))
    data = collate([data], samples_per_gpu=1)
    return [t for t in data['img']], [m.data[0] for m in data['img_metas']]


def _close(name, ours, expected):
    ours = ours.detach().numpy() if torch.is_tensor(ours) else ours
    assert ours.shape == expected.shape, f'{name}: shape {ours.shape} vs {expected.shape}'
    diff = float(np.abs(ours - expected).max())
    assert diff <= ATOL, f'{name}: max |diff| {diff:.3g} > {ATOL}'


def _agree(name, ours, expected, at_least=0.999):
    share = float((ours == expected).mean())
    assert share >= at_least, f'{name}: argmax agrees on {share:.4%} of pixels (< {at_least:.1%})'


def test_backbone_features(golden):
    _, model, exp = golden
    with torch.no_grad():
        feats = model.backbone(torch.from_numpy(exp['crop_input']))
    for i, f in enumerate(feats):
        _close(f'feat{i}', f, exp[f'feat{i}'])


def test_crop_logits(golden):
    _, model, exp = golden
    x = torch.from_numpy(exp['crop_input'])
    meta = [dict(img_shape=(128, 128, 3), ori_shape=(128, 128, 3), pad_shape=(128, 128, 3), flip=False)]
    with torch.no_grad():
        logits = model.encode_decode(x, meta)
    _close('crop_logits', logits, exp['crop_logits'])


def test_single_scale_slide(golden):
    cfg, model, exp = golden
    imgs, metas = run_pipeline(cfg.ss)
    _close('ss_input', imgs[0], exp['ss_input'])
    with torch.no_grad():
        logits = model.slide_inference(imgs[0], metas[0], rescale=True)
        pred = model(return_loss=False, img=imgs, img_metas=metas, rescale=True)[0]
    assert list(logits.shape) == exp['ss_logits_shape'].tolist()
    _close('ss_logits_sub4', logits[:, :, ::4, ::4], exp['ss_logits_sub4'])
    _agree('ss_pred', pred, exp['ss_pred'])


def test_multi_scale_flip(golden):
    cfg, model, exp = golden
    imgs, metas = run_pipeline(cfg.ms)
    shapes = np.array([[m[0]['img_shape'][0], m[0]['img_shape'][1], int(m[0]['flip'])] for m in metas])
    np.testing.assert_array_equal(shapes, exp['ms_aug_shapes'])
    with torch.no_grad():
        pred = model(return_loss=False, img=imgs, img_metas=metas, rescale=True)[0]
    _agree('ms_pred', pred, exp['ms_pred'])
