# The harness's demo: the EVA2 + UPerHead + FCN-aux segmentor and the authors' recipe shape (AdamW, layer decay,
# poly with linear warm-up, eval and checkpoints on a fixed cadence, save_best mIoU) at a size that trains from
# scratch on a CPU in minutes: 64x64 crops, embed_dim 64, depth 4, 2 heads (head dim 32), 32-channel heads.
# Training facts (batch, iterations, seed) are in reproduction.toml beside this file.
_base_ = [
    '../_base_/models/upernet_eva2.py', '../_base_/datasets/ade20k_64x64.py',
    '../_base_/default_runtime.py', '../_base_/schedules/eva2_recipe.py'
]
model = dict(
    backbone=dict(img_size=64, embed_dim=64, depth=4, num_heads=2, out_indices=[0, 1, 2, 3], drop_path_rate=0.1),
    decode_head=dict(in_channels=[64, 64, 64, 64], channels=32, num_classes=150),
    auxiliary_head=dict(in_channels=64, channels=16, num_classes=150),
    test_cfg=dict(mode='slide', crop_size=(64, 64), stride=(43, 43)))
optimizer = dict(lr=1e-3, paramwise_cfg=dict(num_layers=4, layer_decay_rate=0.85))
lr_config = dict(warmup_iters=30)
runner = dict(type='IterBasedRunner', max_iters=800)
checkpoint_config = dict(by_epoch=False, interval=200, max_keep_ckpts=2)
evaluation = dict(interval=200, metric='mIoU', save_best='mIoU')
log_config = dict(interval=10)
data = dict(samples_per_gpu=4, workers_per_gpu=1)  # mmseg's loader needs >= 1 worker (persistent_workers)
