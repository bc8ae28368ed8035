"""`SETRResize`: the test-time resize of the authors' multi-scale protocol (their `SETR_Resize`), in mmseg PIPELINES.

With keep_ratio and setr_multi_scale, the image is rescaled so that its short side is
max(crop_size[0], min(scale)) and the aspect ratio is kept; the long side is not capped. EVA2 has fixed-size
position tables, so every slide-inference crop must be exactly crop_size: the short side may never drop below it.
With MultiScaleFlipAug(img_scale=(2048, 512), img_ratios=[0.5, 0.75, 1.0, 1.25, 1.5, 1.75], flip=True) the short
sides are {512, 512, 512, 640, 768, 896}, each with and without flip.

mmseg 0.29.1's `Resize(min_size=...)` computes exactly this, so this class only maps the authors' arguments onto it.
Use in a config:

    dict(type='SETRResize', keep_ratio=True, crop_size=(512, 512), setr_multi_scale=True)
"""
from __future__ import annotations

from mmseg.datasets.builder import PIPELINES
from mmseg.datasets.pipelines import Resize


@PIPELINES.register_module()
class SETRResize(Resize):
    def __init__(self, img_scale=None, multiscale_mode='range', ratio_range=None, keep_ratio=True,
                 crop_size=None, setr_multi_scale=False):
        if setr_multi_scale and (not keep_ratio or crop_size is None):
            raise ValueError('SETRResize with setr_multi_scale=True needs keep_ratio=True and a crop_size')
        min_size = crop_size[0] if setr_multi_scale else None
        super().__init__(img_scale=img_scale, multiscale_mode=multiscale_mode, ratio_range=ratio_range,
                         keep_ratio=keep_ratio, min_size=min_size)
        self.crop_size = crop_size
        self.setr_multi_scale = setr_multi_scale

    def __repr__(self):
        return (f'{self.__class__.__name__}(img_scale={self.img_scale}, keep_ratio={self.keep_ratio}, '
                f'crop_size={self.crop_size}, setr_multi_scale={self.setr_multi_scale})')
