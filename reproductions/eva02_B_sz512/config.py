# EVA-02-B + UperNet, ADE20K 512x512, 60k iterations: the authors' upernet_eva02_base_12_512_slide_60k.py.
# Published setup: 4 GPUs x 8 images; ss test with slide 512/341. Values not set here come from _base_.
_base_ = [
    '../_base_/models/upernet_eva2.py', '../_base_/datasets/ade20k.py',
    '../_base_/default_runtime.py', '../_base_/schedules/schedule_60k.py'
]
model = dict(
    backbone=dict(img_size=512, embed_dim=768, depth=12, num_heads=12, out_indices=[3, 5, 7, 11],
                  drop_path_rate=0.15),
    decode_head=dict(in_channels=[768, 768, 768, 768], channels=768, num_classes=150),
    auxiliary_head=dict(in_channels=768, channels=256, num_classes=150),
    test_cfg=dict(mode='slide', crop_size=(512, 512), stride=(341, 341)))
optimizer = dict(lr=6e-05, paramwise_cfg=dict(num_layers=12, layer_decay_rate=0.85))
data = dict(samples_per_gpu=8)  # 4 GPUs x 8 = 32
