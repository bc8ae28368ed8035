"""The demo config trains through mmseg's own train_segmentor on a CPU (fp32, AmpOptimizerHook says so), keeps
the recipe's cadence (eval, save_best, checkpoints), and its checkpoint loads with stock init_segmentor."""
from __future__ import annotations

import json
import logging
import math
import time

import pytest
from conftest import DEMO, load_config


class _Collect(logging.Handler):
    def __init__(self):
        super().__init__(logging.INFO)
        self.lines = []

    def emit(self, record):
        self.lines.append(record.getMessage())


@pytest.fixture
def shims():
    from harness.engine import shims
    shims.apply_all()  # what the engine entry point does at start-up (mmcv 1.7 on torch 2.x)
    yield
    shims.revert_all()


def test_demo_trains_evaluates_and_reloads(ade20k_mini, tmp_path, shims):
    import torch
    from mmcv.cnn.utils import revert_sync_batchnorm
    from mmseg.apis import inference_segmentor, init_segmentor, train_segmentor
    from mmseg.datasets import build_dataset
    from mmseg.models import build_segmentor

    cfg = load_config(DEMO)
    for split in ('train', 'val', 'test'):
        cfg.data[split].data_root = str(ade20k_mini)
    iters = 10
    cfg.runner.max_iters = iters
    cfg.lr_config.warmup_iters = 3
    cfg.evaluation.interval = cfg.checkpoint_config.interval = 5
    cfg.log_config.interval = 2
    cfg.update(dict(work_dir=str(tmp_path / 'work'), gpu_ids=[0], device='cpu', seed=0))
    torch.manual_seed(0)
    model = build_segmentor(cfg.model)
    model.init_weights()
    model = revert_sync_batchnorm(model)
    datasets = [build_dataset(cfg.data.train)]
    model.CLASSES, model.PALETTE = datasets[0].CLASSES, datasets[0].PALETTE
    cfg.checkpoint_config.meta = dict(CLASSES=datasets[0].CLASSES, PALETTE=datasets[0].PALETTE)
    messages = _Collect()
    logging.getLogger('mmseg').addHandler(messages)
    start = time.perf_counter()
    try:
        train_segmentor(model, datasets, cfg, distributed=False, validate=True, timestamp='demo', meta=dict())
    finally:
        logging.getLogger('mmseg').removeHandler(messages)
    elapsed = time.perf_counter() - start

    work = tmp_path / 'work'
    records = [json.loads(line) for line in (work / 'demo.log.json').read_text().splitlines()[1:]]
    train = [r for r in records if r['mode'] == 'train']
    val = [r for r in records if r['mode'] == 'val']
    assert [r['iter'] for r in train] == [2, 4, 6, 8, 10]
    assert all(math.isfinite(r['loss']) for r in train)
    assert len(val) == 2 and all('mIoU' in r for r in val)
    assert (work / 'iter_5.pth').exists() and (work / 'iter_10.pth').exists()
    assert list(work.glob('best_mIoU_iter_*.pth'))
    assert any('mixed precision: off' in m for m in messages.lines)
    print(f'demo: {iters} iterations + 2 evaluations in {elapsed:.1f} s; '
          f'median train time/iter {sorted(r["time"] for r in train)[len(train) // 2]:.3f} s')

    reloaded = init_segmentor(str(DEMO), str(work / 'iter_10.pth'), device='cpu')  # stock mmseg API
    image = sorted((ade20k_mini / 'images' / 'validation').glob('*.jpg'))[0]
    pred = inference_segmentor(reloaded, str(image))[0]
    assert pred.ndim == 2 and pred.max() < 150
