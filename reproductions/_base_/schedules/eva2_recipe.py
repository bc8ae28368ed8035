# The authors' training recipe, shared by every EVA-02 seg config; lr and layer decay are set per model.
# AdamW + layer-wise lr decay (our constructor reproduces theirs, quirk included; see harness/engine/layer_decay.py).
optimizer = dict(
    type='AdamW',
    lr=6e-05,
    betas=(0.9, 0.999),
    weight_decay=0.05,
    constructor='EVA2LayerDecayOptimizerConstructor',
    paramwise_cfg=dict(num_layers=12, layer_decay_rate=0.85))
# Authors: apex O1 with dynamic loss scale, no grad clip. Ours: torch AMP with dynamic loss scale on CUDA, fp32
# elsewhere (harness/engine/amp_hook.py decides by device and logs it).
optimizer_config = dict(type='AmpOptimizerHook', loss_scale='dynamic', grad_clip=None)
lr_config = dict(
    policy='poly',
    warmup='linear',
    warmup_iters=1500,
    warmup_ratio=1e-06,
    power=1.0,
    min_lr=0.0,
    by_epoch=False)
# runner (max_iters) and checkpoint_config (max_keep_ckpts) come from schedule_60k.py / schedule_80k.py
evaluation = dict(interval=1000, metric='mIoU', save_best='mIoU')
