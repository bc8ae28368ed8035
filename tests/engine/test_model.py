"""The built segmentors have the released checkpoints' exact key layout, and EVA2 computes what the authors' does."""
from __future__ import annotations

import pytest
import torch
from conftest import CONFIGS, DEMO, GOLDEN, build_model, load_config, manifest


def _layout(state_dict) -> dict:
    return {k: (list(v.shape), str(v.dtype).replace('torch.', '')) for k, v in state_dict.items()}


def _assert_same_layout(ours: dict, released: list):
    expected = {k: (shape, dtype) for k, shape, dtype in released}
    missing = sorted(set(expected) - set(ours))
    extra = sorted(set(ours) - set(expected))
    assert not missing and not extra, f'keys missing from our model: {missing[:10]}; not in the release: {extra[:10]}'
    differ = [(k, ours[k], expected[k]) for k in expected if ours[k] != expected[k]]
    assert not differ, f'shape/dtype differ (ours, released): {differ[:10]}'


def test_b_matches_released_layout(b_segmentor):
    _, model = b_segmentor
    _assert_same_layout(_layout(model.state_dict()), manifest('eva02_B_sz512'))


@pytest.mark.parametrize('name', ['eva02_L_sz512', 'eva02_L_sz512_ms', 'eva02_L_sz640'])
def test_l_matches_released_layout(name):
    model = build_model(load_config(CONFIGS[name]), device='meta')  # 300-600M parameters: shapes only
    _assert_same_layout(_layout(model.state_dict()), manifest(name))


def test_rope_tables_are_the_authors(b_segmentor):
    """Recomputed tables equal the ones the authors' model computed (golden weights hold them, 8x8 grid)."""
    from harness.engine.eva2 import VisionRotaryEmbeddingFast
    golden = torch.load(GOLDEN / 'weights.pth', weights_only=True)['state_dict']
    rope = VisionRotaryEmbeddingFast(dim=32, pt_seq_len=16, ft_seq_len=8)
    assert torch.equal(rope.freqs_cos, golden['backbone.rope.freqs_cos'])
    assert torch.equal(rope.freqs_sin, golden['backbone.rope.freqs_sin'])
    _, model = b_segmentor  # at 512: 32x32 grid, (1024, 64), row angle in the first 32 channels
    cos = model.backbone.rope.freqs_cos
    assert cos.shape == (1024, 64) and model.backbone.blocks[5].attn.rope is model.backbone.rope
    t = torch.arange(32) / 32 * 16
    assert torch.allclose(cos[33, 0], torch.cos(t[1])) and torch.allclose(cos[33, 32], torch.cos(t[1]))
    assert torch.allclose(cos[32, 0], torch.cos(t[1])) and cos[32, 32] == 1.0  # row 1, column 0


def test_loading_never_overwrites_rope_tables():
    from harness.engine.eva2 import EVA2
    model = EVA2(img_size=64, embed_dim=64, depth=2, num_heads=2, out_indices=[0, 1])
    before = model.rope.freqs_cos.clone()
    state = model.state_dict()
    state = {k: (torch.zeros_like(v) if 'rope' in k else v) for k, v in state.items()}
    model.load_state_dict(state, strict=True)
    assert torch.equal(model.rope.freqs_cos, before)


def test_backbone_structure_and_options():
    from harness.engine.eva2 import EVA2
    model = EVA2(img_size=64, embed_dim=64, depth=4, num_heads=2, out_indices=[0, 1, 2, 3], drop_path_rate=0.2)
    assert isinstance(model.fpn1[1], torch.nn.SyncBatchNorm)
    assert isinstance(model.blocks[0].drop_path, torch.nn.Identity)
    assert model.blocks[3].drop_path.drop_prob == pytest.approx(0.2)
    assert model.blocks[0].mlp.w1.out_features == int(64 * 4 * 2 / 3)
    assert model.blocks[0].norm1.eps == 1e-6 and model.blocks[0].mlp.ffn_ln.eps == 1e-6
    with pytest.raises(NotImplementedError, match='use_rel_pos_bias'):
        EVA2(img_size=64, embed_dim=64, depth=1, num_heads=2, out_indices=[0], use_rel_pos_bias=True)
    with pytest.raises(ValueError, match='64x64'):
        model.eval()(torch.zeros(1, 3, 64, 96))


def test_init_weights_keeps_loaded_weights():
    """mmseg's tools/train.py calls model.init_weights() after building: it must not wipe anything."""
    cfg = load_config(DEMO)
    model = build_model(cfg)
    with torch.no_grad():
        for p in model.backbone.parameters():
            p.fill_(0.5)
    model.init_weights()
    assert all(bool((p == 0.5).all()) for p in model.backbone.parameters())


def test_demo_builds_and_runs_forward():
    cfg = load_config(DEMO)
    model = build_model(cfg).eval()
    size = cfg.model.backbone.img_size
    with torch.no_grad():
        feats = model.backbone(torch.zeros(2, 3, size, size))
    assert [tuple(f.shape[2:]) for f in feats] == [(size // s, size // s) for s in (4, 8, 16, 32)]
