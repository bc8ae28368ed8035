# EVA-02-L 512, multi-scale + flip evaluation: the authors' upernet_eva02_large_24_512_slide_ms_eval.py.
# Same model and weights as config.py; only the test pipeline differs: six ratios + flip, SETR-style resize
# (short side never below the crop), softmax averaged over the 12 passes by mmseg's aug_test.
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
