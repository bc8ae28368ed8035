"""Layer-wise lr decay for EVA2 segmentors, exactly as the authors group parameters (eva02_seg.md §2.7).

Registered in mmcv's OPTIMIZER_BUILDERS as `EVA2LayerDecayOptimizerConstructor`: mmseg 0.29.1 owns a different
`LayerDecayOptimizerConstructor` (BEiT/MAE only) in its child registry, which mmseg's build_optimizer would find
first. Config use:

    optimizer = dict(type='AdamW', lr=6e-5, betas=(0.9, 0.999), weight_decay=0.05,
                     constructor='EVA2LayerDecayOptimizerConstructor',
                     paramwise_cfg=dict(num_layers=12, layer_decay_rate=0.85))

The rule, over `named_parameters()` of the whole segmentor (names start `backbone.` / `decode_head.` / ...):
- weight decay 0 for 1-D parameters and names ending in `.bias`, else the optimizer's weight_decay. The authors
  also test `name in ('pos_embed', 'cls_token')`, which never matches a `backbone.`-prefixed name: pos_embed and
  cls_token ARE decayed. That quirk is kept.
- layer id 0 for backbone.cls_token / mask_token / pos_embed / patch_embed*, i+1 for backbone.blocks.i.*,
  num_layers+1 for everything else (fpn, heads); lr_scale = rate ** (num_layers + 1 - layer_id).
- one group per (layer id, decay or not), in order of first appearance, named `layer_{id}_{decay|no_decay}`.
"""
from __future__ import annotations

import logging

from mmcv.runner import OPTIMIZER_BUILDERS, DefaultOptimizerConstructor


def layer_id_for(name: str, num_max_layer: int) -> int:
    """The authors' get_num_layer_for_vit on a full segmentor parameter name."""
    if name in ('backbone.cls_token', 'backbone.mask_token', 'backbone.pos_embed'):
        return 0
    if name.startswith('backbone.patch_embed'):
        return 0
    if name.startswith('backbone.blocks'):
        return int(name.split('.')[2]) + 1
    return num_max_layer - 1


def param_rule(name: str, shape, weight_decay: float, num_layers: int, decay_rate: float) -> dict:
    """Group name, lr_scale and weight decay of one parameter (num_layers as in the config, e.g. 12 for B)."""
    num_max_layer = num_layers + 2
    if len(shape) == 1 or name.endswith('.bias') or name in ('pos_embed', 'cls_token'):  # last test: quirk, see top
        kind, wd = 'no_decay', 0.0
    else:
        kind, wd = 'decay', weight_decay
    layer_id = layer_id_for(name, num_max_layer)
    return dict(group_name=f'layer_{layer_id}_{kind}', weight_decay=wd,
                lr_scale=decay_rate ** (num_max_layer - layer_id - 1))


@OPTIMIZER_BUILDERS.register_module()
class EVA2LayerDecayOptimizerConstructor(DefaultOptimizerConstructor):
    """paramwise_cfg: num_layers (the backbone depth) and layer_decay_rate."""

    def add_params(self, params, module, prefix='', is_dcn_module=None):
        num_layers = self.paramwise_cfg['num_layers']
        rate = self.paramwise_cfg['layer_decay_rate']
        groups = {}
        for name, param in module.named_parameters():
            if not param.requires_grad:
                continue  # frozen weights
            rule = param_rule(name, param.shape, self.base_wd, num_layers, rate)
            group = groups.get(rule['group_name'])
            if group is None:
                group = groups[rule['group_name']] = dict(
                    params=[], param_names=[], lr=rule['lr_scale'] * self.base_lr, **rule)
            group['params'].append(param)
            group['param_names'].append(name)
        logging.getLogger('mmseg').info(
            'layer decay groups: ' + ', '.join(f'{g}: lr_scale {v["lr_scale"]:.6g}, wd {v["weight_decay"]}, '
                                               f'{len(v["params"])} params' for g, v in groups.items()))
        params.extend(groups.values())
