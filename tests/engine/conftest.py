"""Shared helpers of the engine tests: paths, building segmentors from our configs, a tiny ADE20K-format dataset."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
REF = REPO / 'tests' / 'data'
GOLDEN = REF / 'golden' / 'mini'
CONFIGS = {
    'eva02_B_sz512': REPO / 'reproductions' / 'eva02_B_sz512' / 'config.py',
    'eva02_L_sz512': REPO / 'reproductions' / 'eva02_L_sz512' / 'config.py',
    'eva02_L_sz512_ms': REPO / 'reproductions' / 'eva02_L_sz512' / 'config_ms.py',
    'eva02_L_sz640': REPO / 'reproductions' / 'eva02_L_sz640' / 'config.py',
}
DEMO = REPO / 'reproductions' / 'eva02_demo' / 'config.py'
DEMO_MS = REPO / 'reproductions' / 'eva02_demo' / 'config_ms.py'


def load_config(path):
    from mmcv import Config
    return Config.fromfile(str(path))


def build_model(cfg, device=None):
    """The segmentor as a single-process run builds it: SyncBN reverted to BN."""
    import torch
    from mmcv.cnn.utils import revert_sync_batchnorm
    from mmseg.models import build_segmentor
    if device == 'meta':
        with torch.device('meta'):
            return build_segmentor(cfg.model)
    return revert_sync_batchnorm(build_segmentor(cfg.model))


def manifest(name: str) -> list:
    return json.loads((REF / 'checkpoints' / f'{name}.json').read_text())


def make_ade20k(root: Path, num_train: int = 8, num_val: int = 2, seed: int = 0) -> Path:
    """ADE20K folder layout with jpg images and single-channel png labels 0..150 (blocky, learnable)."""
    import cv2
    rng = np.random.default_rng(seed)
    for split, n in (('training', num_train), ('validation', num_val)):
        (root / 'images' / split).mkdir(parents=True, exist_ok=True)
        (root / 'annotations' / split).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            h, w = int(rng.integers(128, 161)), int(rng.integers(150, 220))
            labels = np.kron(rng.integers(0, 151, (4, 4)), np.ones((h // 4 + 1, w // 4 + 1)))[:h, :w]
            image = (labels[..., None] * [37, 91, 13] % 255 + rng.normal(0, 8, (h, w, 3))).clip(0, 255)
            name = f'ADE_{split[:5]}_{i:08d}'
            cv2.imwrite(str(root / 'images' / split / f'{name}.jpg'), image.astype(np.uint8))
            cv2.imwrite(str(root / 'annotations' / split / f'{name}.png'), labels.astype(np.uint8))
    return root


@pytest.fixture(scope='session')
def ade20k_mini(tmp_path_factory) -> Path:
    return make_ade20k(tmp_path_factory.mktemp('ade') / 'ADEChallengeData2016')


@pytest.fixture(scope='session')
def b_segmentor():
    """The EVA-02-B segmentor built from our config on CPU (163M parameters; shared by several tests)."""
    cfg = load_config(CONFIGS['eva02_B_sz512'])
    return cfg, build_model(cfg)


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """The engine tests run tiny ops; on a shared 2-core machine two OpenMP threads per process spin against each
    other and other processes (measured 20x slower under load). One thread per test, restored afterwards."""
    import torch
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
