"""Checkpoints load safely: MIM .pt with the authors' report, seg .pth strictly, code-executing pickles refused."""
from __future__ import annotations

import logging
import re

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import CONFIGS, GOLDEN, REF, build_model, load_config

from harness.errors import ReproError


def fake_mim_checkpoint(backbone, wrapper='module') -> dict:
    """A MIM checkpoint with the released layout: fp16, 14x14 pos_embed, mask_token, final norm, lm_head,
    [16,16,64] rope tables, no fpn; wrapped in `module` as DeepSpeed saves it."""
    g = torch.Generator().manual_seed(0)
    sd = {}
    for k, v in backbone.state_dict().items():
        if k.startswith(('fpn1.', 'fpn2.')):
            continue
        if k.split('.')[-1] in ('freqs_cos', 'freqs_sin'):
            sd[k] = torch.randn(16, 16, 64, generator=g).half()
        elif k == 'pos_embed':
            sd[k] = torch.randn(1, 197, v.shape[-1], generator=g).half()
        else:
            sd[k] = torch.randn(v.shape, generator=g).half()
    C = backbone.embed_dim
    sd.update({'mask_token': torch.zeros(1, 1, C).half(), 'norm.weight': torch.ones(C).half(),
               'norm.bias': torch.zeros(C).half(), 'lm_head.weight': torch.randn(1024, C, generator=g).half(),
               'lm_head.bias': torch.zeros(1024).half()})
    return {wrapper: sd}


def authors_report() -> str:
    """The warning the authors' B run logged when loading eva02_B_pt_in21k_p14to16.pt."""
    text = (REF / 'eva02' / 'train_eva02_B_sz512.log').read_text()
    m = re.search(r' - mmseg - WARNING - (The model and loaded state dict do not match exactly\n.*?)\n\d{4}-\d\d-\d\d ',
                  text, re.S)
    return m.group(1)


def test_pretrained_b_report_equals_the_authors_log(b_segmentor, tmp_path, caplog):
    from harness.engine.eva2 import load_pretrained
    _, model = b_segmentor
    backbone = model.backbone
    ckpt = fake_mim_checkpoint(backbone)
    torch.save(ckpt, tmp_path / 'eva02_B_pt_in21k_p14to16.pt')
    fpn_before = backbone.fpn1[0].weight.detach().clone()
    with caplog.at_level(logging.WARNING, logger='mmseg'):
        report = load_pretrained(backbone, str(tmp_path / 'eva02_B_pt_in21k_p14to16.pt'))
    assert report.text().strip() == authors_report().strip()
    assert authors_report().strip() in caplog.text
    sd = ckpt['module']
    # values: fp16 -> fp32, pos_embed resized bicubically on the grid with the cls position kept, fpn untouched
    assert backbone.blocks[3].mlp.w3.weight.dtype == torch.float32
    assert torch.equal(backbone.blocks[3].mlp.w3.weight, sd['blocks.3.mlp.w3.weight'].float())
    assert torch.equal(backbone.blocks[0].attn.q_bias, sd['blocks.0.attn.q_bias'].float())
    grid = sd['pos_embed'][:, 1:].float().reshape(1, 14, 14, -1).permute(0, 3, 1, 2)
    grid = F.interpolate(grid, size=(32, 32), mode='bicubic', align_corners=False).flatten(2).transpose(1, 2)
    assert torch.equal(backbone.pos_embed[:, 0], sd['pos_embed'][:, 0].float())
    assert torch.allclose(backbone.pos_embed[:, 1:], grid, atol=0, rtol=0)
    assert torch.equal(backbone.fpn1[0].weight, fpn_before)
    assert backbone.rope.freqs_cos.shape == (1024, 64)  # the file's [16,16,64] tables were skipped


@pytest.mark.parametrize('wrapper', ['model', 'state_dict'])
def test_pretrained_other_wrappers_and_init_weights(tmp_path, wrapper):
    from harness.engine.eva2 import EVA2
    small = dict(img_size=64, embed_dim=64, depth=2, num_heads=1, out_indices=[0, 1, 1, 1])
    ckpt = fake_mim_checkpoint(EVA2(**small), wrapper=wrapper)
    ckpt[wrapper] = {f'module.{k}': v for k, v in ckpt[wrapper].items()}  # DDP prefix too
    torch.save(ckpt, tmp_path / 'pt.pt')
    model = EVA2(pretrained=str(tmp_path / 'pt.pt'), **small)  # loads in __init__, as the authors' does
    assert torch.equal(model.blocks[1].attn.k_proj.weight, ckpt[wrapper]['module.blocks.1.attn.k_proj.weight'].float())
    loaded = model.blocks[1].attn.k_proj.weight.detach().clone()
    model.init_weights()  # what mmseg's train.py calls: must not re-initialise
    assert torch.equal(model.blocks[1].attn.k_proj.weight, loaded)


def test_pretrained_missing_weights_are_an_error_unknown_extras_are_named(tmp_path, caplog):
    from harness.engine.eva2 import EVA2
    small = dict(img_size=64, embed_dim=64, depth=2, num_heads=1, out_indices=[0, 1, 1, 1])
    ckpt = fake_mim_checkpoint(EVA2(**small))
    ckpt['module']['head.weight'] = torch.zeros(3)
    torch.save(ckpt, tmp_path / 'extra.pt')
    with caplog.at_level(logging.WARNING, logger='mmseg'):
        EVA2(pretrained=str(tmp_path / 'extra.pt'), **small)
    assert 'beyond the known MIM-only ones' in caplog.text and 'head.weight' in caplog.text
    del ckpt['module']['blocks.1.mlp.w1.weight']
    ckpt['module']['blocks.0.mlp.w3.bias'] = torch.zeros(7).half()
    torch.save(ckpt, tmp_path / 'pt.pt')
    with pytest.raises(ReproError, match=r'blocks\.1\.mlp\.w1\.weight \(missing\), blocks\.0\.mlp\.w3\.bias \(shape'):
        EVA2(pretrained=str(tmp_path / 'pt.pt'), **small)


def test_seg_checkpoint_strict(tmp_path):
    from harness.engine.checkpoint import load_seg_checkpoint
    cfg = load_config(CONFIGS['eva02_B_sz512'])
    cfg.model.backbone.update(img_size=128, embed_dim=128, depth=4, num_heads=2, out_indices=[0, 1, 2, 3])
    cfg.model.decode_head.update(in_channels=[128] * 4, channels=64)
    cfg.model.auxiliary_head.update(in_channels=128, channels=32)
    model = build_model(cfg)  # the golden/mini model
    golden = torch.load(GOLDEN / 'weights.pth', weights_only=True)
    load_seg_checkpoint(model, GOLDEN / 'weights.pth')
    assert torch.equal(model.decode_head.conv_seg.weight, golden['state_dict']['decode_head.conv_seg.weight'])

    bare = {k: v for k, v in golden['state_dict'].items() if 'rope' not in k}  # no wrapper, no rope tables: fine
    torch.save(bare, tmp_path / 'bare.pth')
    assert load_seg_checkpoint(model, tmp_path / 'bare.pth') == {}

    broken = dict(bare)
    del broken['decode_head.bottleneck.conv.weight']
    broken['decode_head.extra.weight'] = torch.zeros(1)
    broken['auxiliary_head.conv_seg.bias'] = torch.zeros(19)
    torch.save({'state_dict': broken, 'meta': {}}, tmp_path / 'broken.pth')
    with pytest.raises(ReproError) as err:
        load_seg_checkpoint(model, tmp_path / 'broken.pth')
    msg = err.value.one_line()
    assert 'missing: decode_head.bottleneck.conv.weight' in msg and 'unexpected: decode_head.extra.weight' in msg
    assert 'auxiliary_head.conv_seg.bias (19,) vs model (150,)' in msg


def test_safe_load_allows_meta_numpy_scalars(tmp_path):
    from harness.engine.checkpoint import safe_load
    meta = dict(CLASSES=('wall', 'sky'), PALETTE=[[1, 2, 3]], iter=1000, mmcv_version='1.7.2',
                hook_msgs=dict(best_score=np.float64(0.5525), best_ckpt='best_mIoU_iter_1000.pth'),
                seed=np.int64(0), arr=np.arange(3, dtype=np.float32))
    torch.save({'meta': meta, 'state_dict': {'w': torch.ones(2)}}, tmp_path / 'ok.pth')
    out = safe_load(str(tmp_path / 'ok.pth'), map_location='cpu')
    assert out['meta']['hook_msgs']['best_score'] == 0.5525 and out['meta']['CLASSES'] == ('wall', 'sky')



@pytest.mark.parametrize('numpy_package', ['numpy.core', 'numpy._core'])
def test_safe_load_reads_numpy_scalars_pickled_by_numpy_1_and_2(tmp_path, numpy_package):
    """A checkpoint saved under numpy 2 names numpy._core.multiarray.scalar; under numpy 1, numpy.core. Both load."""
    import io
    import pickle
    import zipfile

    from harness.engine.checkpoint import safe_load
    torch.save({'meta': {'best_score': np.float64(0.25)}, 'state_dict': {'w': torch.ones(2)}}, tmp_path / 'a.pth')
    with zipfile.ZipFile(tmp_path / 'a.pth') as src:
        members = {info.filename: src.read(info) for info in src.infolist()}
    (pkl,) = [name for name in members if name.endswith('data.pkl')]
    ops = [op for op, arg, _ in pickletools_genops(members[pkl]) if op == 'GLOBAL' and 'scalar' in arg]
    assert ops, 'torch.save no longer pickles numpy scalars with GLOBAL: update this test'
    members[pkl] = re.sub(rb'numpy\.(_?core)\.multiarray\n', f'{numpy_package}.multiarray\n'.encode(), members[pkl])
    with zipfile.ZipFile(tmp_path / 'b.pth', 'w', zipfile.ZIP_STORED) as dst:
        for name, data in members.items():
            dst.writestr(name, data)
    assert f'{numpy_package}.multiarray'.encode() in (tmp_path / 'b.pth').read_bytes()
    assert safe_load(tmp_path / 'b.pth', map_location='cpu')['meta']['best_score'] == 0.25
    del io, pickle


def pickletools_genops(data: bytes):
    import pickletools
    for op, arg, pos in pickletools.genops(data):
        yield op.name, str(arg).replace(' ', '.'), pos

class _Exploit:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):  # unpickling this would create the marker file: code execution
        return (open, (self.marker, 'w'))


def test_code_executing_pickle_is_refused(tmp_path):
    from harness.engine.checkpoint import safe_load
    marker = tmp_path / 'pwned'
    torch.save({'state_dict': {'w': torch.ones(1)}, 'meta': {'x': _Exploit(str(marker))}}, tmp_path / 'evil.pth')
    with pytest.raises(ReproError) as err:
        safe_load(tmp_path / 'evil.pth')
    assert not marker.exists()
    line = err.value.one_line()
    assert 'refusing to load' in line and 'evil.pth' in line and 'execute code' in line and 'fix:' in line
    assert '\n' not in line
    with pytest.raises(ReproError, match='not found'):
        safe_load(tmp_path / 'missing.pth')
