"""The training recipe follows the authors': config values, layer-decay groups (quirk included), lr schedule."""
from __future__ import annotations

import logging
import re

import pytest
import torch
from conftest import CONFIGS, DEMO, REF, build_model, load_config

from harness import registry

LOG = REF / 'eva02' / 'train_eva02_B_sz512.log'


def authors_config():
    from mmcv import Config
    return Config.fromstring((REF / 'eva02' / 'dumped_config_eva02_B_sz512.txt').read_text(), '.py')


def test_b_config_equals_the_authors_dump():
    ours, theirs = load_config(CONFIGS['eva02_B_sz512']), authors_config()
    model_ours, model_theirs = ours.model.to_dict(), theirs.model.to_dict()
    assert model_theirs['backbone'].pop('pretrained').endswith('eva02_B_pt_in21k_p14to16.pt')
    assert model_ours['backbone'].pop('pretrained') is None  # set by a retrain, as the authors' --options did
    assert model_ours == model_theirs
    for key in ('train_pipeline', 'test_pipeline', 'img_norm_cfg', 'crop_size', 'lr_config', 'checkpoint_config',
                'evaluation', 'log_config', 'find_unused_parameters', 'dataset_type', 'workflow', 'cudnn_benchmark'):
        assert ours[key] == theirs[key], key
    for split in ('train', 'val', 'test'):
        a, b = dict(ours.data[split]), dict(theirs.data[split])
        a.pop('data_root'), b.pop('data_root')
        assert a == b, split
    assert (ours.data.samples_per_gpu, ours.runner.max_iters) == (8, 60000)
    opt_ours, opt_theirs = ours.optimizer.to_dict(), theirs.optimizer.to_dict()
    assert opt_ours.pop('constructor') == 'EVA2LayerDecayOptimizerConstructor'
    assert opt_theirs.pop('constructor') == 'LayerDecayOptimizerConstructor'
    assert opt_ours == opt_theirs
    # apex O1 + dynamic loss scale, no clip -> torch AMP with dynamic loss scale, no clip
    assert theirs.optimizer_config.use_fp16 and theirs.optimizer_config.grad_clip is None
    assert ours.optimizer_config == dict(type='AmpOptimizerHook', loss_scale='dynamic', grad_clip=None)
    assert ours.runner.type == 'IterBasedRunner'  # mmseg then evaluates by iteration (by_epoch=False)


@pytest.mark.parametrize('name, lr, layers, rate, iters, keep, crop, heads', [
    ('eva02_L_sz512', 4e-5, 24, 0.9, 80000, 10, (512, 512), (1024, 256)),
    ('eva02_L_sz640', 4e-5, 24, 0.9, 80000, 10, (640, 640), (1536, 1536)),
])
def test_l_config_values(name, lr, layers, rate, iters, keep, crop, heads):
    cfg = load_config(CONFIGS[name])
    assert (cfg.optimizer.lr, cfg.optimizer.paramwise_cfg.num_layers, cfg.optimizer.paramwise_cfg.layer_decay_rate) \
        == (lr, layers, rate)
    assert (cfg.runner.max_iters, cfg.checkpoint_config.max_keep_ckpts, cfg.data.samples_per_gpu) == (iters, keep, 2)
    assert (cfg.model.backbone.img_size, cfg.model.backbone.out_indices, cfg.model.backbone.drop_path_rate) \
        == (crop[0], [7, 11, 15, 23], 0.2)
    assert cfg.model.test_cfg.crop_size == crop and cfg.crop_size == crop
    assert (cfg.model.decode_head.channels, cfg.model.auxiliary_head.channels) == heads
    assert cfg.data.train.pipeline[3].crop_size == crop and cfg.data.train.pipeline[2].img_scale == (crop[0] * 4,
                                                                                                   crop[0])


def _optimizer(cfg, model):
    from mmseg.core import build_optimizer  # mmseg's builder: must find ours, not mmseg's LayerDecay constructor
    return build_optimizer(model, cfg.optimizer)


def expected_rule(name: str, shape, depth: int, rate: float):
    """eva02_seg.md §2.7, written out independently of harness/engine/layer_decay.py."""
    m = re.match(r'backbone\.blocks\.(\d+)\.', name)
    if name in ('backbone.cls_token', 'backbone.pos_embed') or name.startswith('backbone.patch_embed.'):
        layer = 0
    elif m:
        layer = int(m.group(1)) + 1
    else:
        layer = depth + 1
    no_decay = len(shape) == 1 or name.endswith('.bias')  # pos_embed / cls_token (3-D) ARE decayed: the quirk
    return rate ** (depth + 1 - layer), 0.0 if no_decay else 0.05


def test_layer_decay_groups_every_parameter(b_segmentor):
    cfg, model = b_segmentor
    optimizer = _optimizer(cfg, model)
    assert type(optimizer).__name__ == 'AdamW'
    seen = set()
    for group in optimizer.param_groups:
        for name, p in zip(group['param_names'], group['params']):
            scale, wd = expected_rule(name, p.shape, 12, 0.85)
            assert group['lr_scale'] == pytest.approx(scale, rel=1e-12), name
            assert group['lr'] == pytest.approx(6e-5 * scale, rel=1e-12), name
            assert group['weight_decay'] == wd, name
            seen.add(name)
    assert seen == {n for n, p in model.named_parameters() if p.requires_grad}
    g0 = optimizer.param_groups[0]
    assert g0['group_name'] == 'layer_0_decay' and g0['param_names'][:2] == ['backbone.cls_token',
                                                                             'backbone.pos_embed']
    scales = {g['group_name']: g['lr_scale'] for g in optimizer.param_groups}
    assert round(scales['layer_0_decay'], 6) == 0.120905 and round(scales['layer_1_decay'], 6) == 0.142242
    assert scales['layer_12_decay'] == pytest.approx(0.85) and scales['layer_13_decay'] == 1.0


def test_layer_decay_l_scales():
    cfg = load_config(CONFIGS['eva02_L_sz512'])
    model = build_model(cfg, device='meta')
    groups = {g['group_name']: g for g in _optimizer(cfg, model).param_groups}
    assert round(groups['layer_0_decay']['lr_scale'], 6) == 0.071790
    assert f"{groups['layer_0_decay']['lr']:.3g}" == '2.87e-06'
    assert round(groups['layer_1_decay']['lr_scale'], 6) == 0.079766
    assert groups['layer_24_no_decay']['lr_scale'] == pytest.approx(0.9)
    assert groups['layer_25_decay']['lr_scale'] == 1.0


def logged_lrs() -> dict:
    text = LOG.read_text()
    return {int(i): lr for i, lr in re.findall(r'Iter \[(\d+)/60000\]\s+lr: ([0-9.e+-]+),', text)}


def test_lr_schedule_matches_the_authors_log(b_segmentor, tmp_path):
    """The real mmcv runner + PolyLrUpdaterHook from our config give the lr the authors logged (4 digits)."""
    from mmcv.runner import IterBasedRunner
    cfg, model = b_segmentor
    runner = IterBasedRunner(model, optimizer=_optimizer(cfg, model), work_dir=str(tmp_path),
                             logger=logging.getLogger('test'), max_iters=cfg.runner.max_iters)
    runner.register_lr_hook(cfg.lr_config)
    hook = runner.hooks[0]
    hook.before_run(runner)
    expected = logged_lrs()
    assert sorted(expected) == [50, 100, 150, 200, 250]
    for it, text in expected.items():
        runner._iter = it - 1  # mmcv logs iteration i+1 with the lr set before running iteration i
        hook.before_train_iter(runner)
        assert f'{runner.current_lr()[0]:.3e}' == text, it  # TextLoggerHook prints param_groups[0] as .3e


def test_amp_hook_runs_fp32_on_cpu(caplog):
    from mmcv.runner import HOOKS, OptimizerHook

    import harness.engine.modules  # noqa: F401
    hook = HOOKS.build(dict(type='AmpOptimizerHook', loss_scale='dynamic', grad_clip=None))
    assert isinstance(hook, OptimizerHook) and hook.grad_clip is None

    class Runner:  # the attributes an optimizer hook touches
        model = torch.nn.Linear(2, 1)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        logger = logging.getLogger('test_amp')
        meta = {}
    runner = Runner()
    with caplog.at_level(logging.WARNING, logger='test_amp'):
        hook.before_run(runner)
    assert hook.amp is None and 'mixed precision: off' in caplog.text
    before = runner.model.weight.detach().clone()
    runner.outputs = dict(loss=runner.model(torch.ones(1, 2)).sum())
    hook.after_train_iter(runner)
    assert torch.allclose(runner.model.weight, before - 0.1)
    assert runner.model.weight.dtype == torch.float32


def test_demo_recipe_shape():
    cfg = load_config(DEMO)
    assert cfg.optimizer.constructor == 'EVA2LayerDecayOptimizerConstructor'
    training = registry.get('eva02_demo').training      # the config agrees with the reproduction's metadata
    assert cfg.runner.max_iters == training.max_iters
    assert cfg.evaluation.interval == cfg.checkpoint_config.interval
    assert cfg.runner.max_iters % cfg.evaluation.interval == 0          # the last iteration is evaluated
    assert 0 < cfg.lr_config.warmup_iters < cfg.evaluation.interval
    assert (cfg.data.samples_per_gpu, cfg.data.workers_per_gpu) == (training.samples_per_gpu, 1)
    assert cfg.crop_size == (cfg.model.backbone.img_size,) * 2 == cfg.model.test_cfg.crop_size
    assert cfg.model.decode_head.norm_cfg.type == 'SyncBN' and cfg.dataset_type == 'ADE20KDataset'
