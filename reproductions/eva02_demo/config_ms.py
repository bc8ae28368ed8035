# The demo's multi-scale + flip evaluation: six ratios + flip with the SETR-style resize, as eva02_L_sz512's
# config_ms.py does at full size.
_base_ = './config.py'
test_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(
        type='MultiScaleFlipAug',
        img_scale={{_base_.img_scale}},
        img_ratios=[0.5, 0.75, 1.0, 1.25, 1.5, 1.75],
        flip=True,
        transforms=[
            dict(type='SETRResize', keep_ratio=True, crop_size={{_base_.crop_size}}, setr_multi_scale=True),
            dict(type='RandomFlip'),
            {{_base_.normalize}},
            dict(type='ImageToTensor', keys=['img']),
            dict(type='Collect', keys=['img']),
        ]),
]
data = dict(val=dict(pipeline=test_pipeline), test=dict(pipeline=test_pipeline))
