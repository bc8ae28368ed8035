# EVA-02-L + UperNet with 1536-channel heads, ADE20K 640x640, 80k iterations: the authors'
# upernetpro_eva02_large_24_640_slide_80k.py. Published setup: 8 GPUs x 2 images; ss test with slide 640/426.
_base_ = [
    '../_base_/models/upernet_eva2.py', '../_base_/datasets/ade20k_640x640.py',
    '../_base_/default_runtime.py', '../_base_/schedules/schedule_80k.py'
]
model = dict(
    backbone=dict(img_size=640, embed_dim=1024, depth=24, num_heads=16, out_indices=[7, 11, 15, 23],
                  drop_path_rate=0.2),
    decode_head=dict(in_channels=[1024, 1024, 1024, 1024], channels=1536, num_classes=150),
    auxiliary_head=dict(in_channels=1024, channels=1536, num_classes=150),
    test_cfg=dict(mode='slide', crop_size=(640, 640), stride=(426, 426)))
optimizer = dict(lr=4e-05, paramwise_cfg=dict(num_layers=24, layer_decay_rate=0.9))
data = dict(samples_per_gpu=2)  # 8 GPUs x 2 = 16
