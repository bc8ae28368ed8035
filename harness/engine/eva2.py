"""EVA-02 backbone for semantic segmentation (UperNet on ADE20K), in plain PyTorch 2.

Paper: EVA-02: A Visual Representation for Neon Genesis, Fang et al., 2023 — https://arxiv.org/abs/2303.11331
Code this reproduces: https://github.com/baaivision/EVA/tree/master/EVA-02/seg (commit 5623d08, backbone/eva2.py)

    @article{EVA02,
      title={EVA-02: A Visual Representation for Neon Genesis},
      author={Fang, Yuxin and Sun, Quan and Wang, Xinggang and Huang, Tiejun and Wang, Xinlong and Cao, Yue},
      journal={arXiv preprint arXiv:2303.11331},
      year={2023}
    }

Written for the harness from a description of the authors' backbone; the module tree and the state_dict keys
equal the released checkpoints (key manifests in tests/data/checkpoints/, origin in tests/data/PROVENANCE.md), and
tests/engine/test_golden.py checks the outputs against the authors' code on a small configuration. Differences from
the authors' file, none of which changes the maths:
- attention is `F.scaled_dot_product_attention` instead of xFormers' memory_efficient_attention (same default
  scale 1/sqrt(head_dim), no mask);
- `nn.LayerNorm(eps=1e-6)` instead of apex's FusedLayerNorm;
- no timm, einops or apex at run time; only the configuration the released models use is implemented (anything
  else is refused in `EVA2.__init__`, not silently ignored);
- `init_weights()` with no argument never wipes loaded weights (mmseg's tools/train.py calls it after building).
"""
from __future__ import annotations

import logging
import math

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmcv.runner import BaseModule
from mmseg.models.builder import BACKBONES

from harness.engine.checkpoint import ROPE_BUFFERS, _load_matching, compare, is_rope_buffer, safe_load  # noqa: F401
from harness.errors import ReproError

__all__ = ['EVA2', 'checkpoint_filter_fn']


def drop_path(x: torch.Tensor, drop_prob: float, training: bool) -> torch.Tensor:
    """Stochastic depth per sample (the residual branch is dropped for a whole sample)."""
    if drop_prob == 0.0 or not training:
        return x
    keep = 1.0 - drop_prob
    mask = x.new_empty((x.shape[0],) + (1,) * (x.ndim - 1)).bernoulli_(keep)
    return x * mask / keep


class DropPath(nn.Module):
    def __init__(self, drop_prob: float = 0.0):
        super().__init__()
        self.drop_prob = drop_prob

    def forward(self, x):
        return drop_path(x, self.drop_prob, self.training)

    def extra_repr(self):
        return f'p={self.drop_prob}'


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    """(x0, x1, x2, x3, ...) -> (-x1, x0, -x3, x2, ...): rotation of interleaved pairs."""
    x = x.unflatten(-1, (-1, 2))
    x1, x2 = x.unbind(dim=-1)
    return torch.stack((-x2, x1), dim=-1).flatten(-2)


class VisionRotaryEmbeddingFast(nn.Module):
    """2-D RoPE tables for a ft_seq_len × ft_seq_len grid, frequencies interpolated from a pt_seq_len grid.

    `freqs_cos` / `freqs_sin` have shape (ft_seq_len², 2·dim): the first `dim` channels carry the row angle, the
    last `dim` the column angle, each frequency repeated twice (interleaved pairs). They are persistent buffers
    because the released checkpoints hold them, but they are a pure function of the configuration: loading a
    state dict never overwrites them (see `_load_from_state_dict`).
    """

    def __init__(self, dim: int, pt_seq_len: int = 16, ft_seq_len: int | None = None, theta: float = 10000):
        super().__init__()
        ft_seq_len = ft_seq_len or pt_seq_len
        freqs = 1.0 / (theta ** (torch.arange(0, dim, 2)[: dim // 2].float() / dim))
        t = torch.arange(ft_seq_len) / ft_seq_len * pt_seq_len
        freqs = torch.einsum('i,f->if', t, freqs).repeat_interleave(2, dim=-1)  # (ft, dim), [a0,a0,a1,a1,...]
        grid = torch.cat((freqs[:, None, :].expand(-1, ft_seq_len, -1),      # row angle
                          freqs[None, :, :].expand(ft_seq_len, -1, -1)), -1)  # column angle
        self.register_buffer('freqs_cos', grid.cos().reshape(-1, grid.shape[-1]))
        self.register_buffer('freqs_sin', grid.sin().reshape(-1, grid.shape[-1]))

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        return t * self.freqs_cos + rotate_half(t) * self.freqs_sin

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                              error_msgs):
        # fixed tables: recomputed from the config, never taken from a file (a 16x16 MIM table would not even fit)
        pass


class Attention(nn.Module):
    """Multi-head attention with separate q/k/v projections, q and v biases only, RoPE on the patch tokens."""

    def __init__(self, dim: int, num_heads: int, qkv_bias: bool = True, attn_drop: float = 0.0,
                 proj_drop: float = 0.0, rope: VisionRotaryEmbeddingFast | None = None):
        super().__init__()
        self.num_heads = num_heads
        self.q_proj = nn.Linear(dim, dim, bias=False)
        self.k_proj = nn.Linear(dim, dim, bias=False)
        self.v_proj = nn.Linear(dim, dim, bias=False)
        if qkv_bias:
            self.q_bias = nn.Parameter(torch.zeros(dim))
            self.v_bias = nn.Parameter(torch.zeros(dim))
        else:
            self.q_bias = self.v_bias = None
        self.attn_drop = attn_drop
        self.proj = nn.Linear(dim, dim)
        self.proj_drop = nn.Dropout(proj_drop)
        self.rope = rope

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, N, C = x.shape
        q = F.linear(x, self.q_proj.weight, self.q_bias)
        k = F.linear(x, self.k_proj.weight)
        v = F.linear(x, self.v_proj.weight, self.v_bias)
        q, k, v = (t.reshape(B, N, self.num_heads, -1).transpose(1, 2) for t in (q, k, v))  # (B, h, N, d)
        if self.rope is not None:  # patch tokens only; the cls token (index 0) is not rotated
            q = torch.cat((q[:, :, :1], self.rope(q[:, :, 1:])), dim=2).type_as(v)
            k = torch.cat((k[:, :, :1], self.rope(k[:, :, 1:])), dim=2).type_as(v)
        x = F.scaled_dot_product_attention(q, k, v, dropout_p=self.attn_drop if self.training else 0.0)
        x = x.transpose(1, 2).reshape(B, N, C)
        return self.proj_drop(self.proj(x))


class SwiGLU(nn.Module):
    """w3(ffn_ln(SiLU(w1 x) * w2 x)): the unfused ("naive") SwiGLU with a LayerNorm before the output projection."""

    def __init__(self, in_features: int, hidden_features: int, drop: float = 0.0):
        super().__init__()
        self.w1 = nn.Linear(in_features, hidden_features)
        self.w2 = nn.Linear(in_features, hidden_features)
        self.act = nn.SiLU()
        self.ffn_ln = nn.LayerNorm(hidden_features, eps=1e-6)
        self.w3 = nn.Linear(hidden_features, in_features)
        self.drop = nn.Dropout(drop)

    def forward(self, x):
        x = self.ffn_ln(self.act(self.w1(x)) * self.w2(x))
        return self.drop(self.w3(x))


class Block(nn.Module):
    """Pre-norm transformer block without layer scale (init_values=None in every released config)."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float, qkv_bias: bool, drop: float, attn_drop: float,
                 drop_path: float, rope: VisionRotaryEmbeddingFast | None):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-6)
        self.attn = Attention(dim, num_heads, qkv_bias=qkv_bias, attn_drop=attn_drop, proj_drop=drop, rope=rope)
        self.drop_path = DropPath(drop_path) if drop_path > 0.0 else nn.Identity()
        self.norm2 = nn.LayerNorm(dim, eps=1e-6)
        self.mlp = SwiGLU(dim, int(dim * mlp_ratio), drop=drop)

    def forward(self, x):
        x = x + self.drop_path(self.attn(self.norm1(x)))
        return x + self.drop_path(self.mlp(self.norm2(x)))


class PatchEmbed(nn.Module):
    def __init__(self, img_size: int, patch_size: int, in_chans: int, embed_dim: int):
        super().__init__()
        self.patch_shape = (img_size // patch_size, img_size // patch_size)
        self.num_patches = self.patch_shape[0] * self.patch_shape[1]
        self.proj = nn.Conv2d(in_chans, embed_dim, kernel_size=patch_size, stride=patch_size)

    def forward(self, x):
        x = self.proj(x)
        Hp, Wp = x.shape[2:]
        return x.flatten(2).transpose(1, 2), (Hp, Wp)  # (B, N, C), tokens row-major


# The configuration every released EVA-02 seg model uses; other values are not implemented here.
_FIXED_OPTIONS = dict(use_abs_pos_emb=True, use_rel_pos_bias=False, use_shared_rel_pos_bias=False, rope=True,
                      intp_freq=True, subln=True, naiveswiglu=True, init_values=None, qk_scale=None,
                      use_checkpoint=False)


@BACKBONES.register_module()
class EVA2(BaseModule):
    """EVA-02 ViT with a simple feature pyramid (strides 4, 8, 16, 32), as in the released seg checkpoints.

    Input must be exactly img_size × img_size (absolute position embeddings and RoPE tables have a fixed size);
    slide inference with crop_size = img_size guarantees it.

    `pretrained` (a MIM .pt path) is loaded at the end of `__init__`, as the authors do; `init_weights()` is then a
    no-op, so mmseg's tools/train.py calling it cannot wipe the loaded weights.
    """

    def __init__(self, img_size=224, patch_size=16, in_chans=3, num_classes=80, embed_dim=768, depth=12,
                 num_heads=12, mlp_ratio=4 * 2 / 3, qkv_bias=True, drop_rate=0.0, attn_drop_rate=0.0,
                 drop_path_rate=0.0, out_indices=(3, 5, 7, 11), pt_hw_seq_len=16, xattn=True, pretrained=None,
                 init_cfg=None, **options):
        super().__init__(init_cfg=init_cfg)
        for name, value in options.items():
            if name not in _FIXED_OPTIONS:
                raise TypeError(f'EVA2 got an unexpected argument {name!r}')
            if value != _FIXED_OPTIONS[name]:
                raise NotImplementedError(f'EVA2 implements only the released configuration: {name}='
                                          f'{_FIXED_OPTIONS[name]!r}, got {value!r}')
        if patch_size != 16:
            raise NotImplementedError('EVA2 implements the patch_size=16 pyramid only (fpn1..fpn4 for stride 16)')
        del num_classes, xattn  # unused by the seg backbone; xattn=False/True give the same attention maths
        self.img_size, self.patch_size, self.embed_dim = img_size, patch_size, embed_dim
        self.out_indices = list(out_indices)
        self.pretrained = pretrained

        self.patch_embed = PatchEmbed(img_size, patch_size, in_chans, embed_dim)
        num_patches = self.patch_embed.num_patches
        self.cls_token = nn.Parameter(torch.zeros(1, 1, embed_dim))
        self.pos_embed = nn.Parameter(torch.zeros(1, num_patches + 1, embed_dim))
        self.pos_drop = nn.Dropout(p=drop_rate)

        head_dim = embed_dim // num_heads
        self.rope = VisionRotaryEmbeddingFast(dim=head_dim // 2, pt_seq_len=pt_hw_seq_len,
                                              ft_seq_len=img_size // patch_size)
        dpr = [x.item() for x in torch.linspace(0, drop_path_rate, depth, device="cpu")]
        self.blocks = nn.ModuleList([
            Block(embed_dim, num_heads, mlp_ratio, qkv_bias, drop_rate, attn_drop_rate, dpr[i], rope=self.rope)
            for i in range(depth)])

        self.fpn1 = nn.Sequential(
            nn.ConvTranspose2d(embed_dim, embed_dim, kernel_size=2, stride=2),
            nn.SyncBatchNorm(embed_dim),  # mmseg's revert_sync_batchnorm makes it a BatchNorm on one process
            nn.GELU(),
            nn.ConvTranspose2d(embed_dim, embed_dim, kernel_size=2, stride=2))
        self.fpn2 = nn.Sequential(nn.ConvTranspose2d(embed_dim, embed_dim, kernel_size=2, stride=2))
        self.fpn3 = nn.Identity()
        self.fpn4 = nn.MaxPool2d(kernel_size=2, stride=2)

        self._init_random()
        self._loaded_pretrained = None
        if pretrained is not None:
            self.init_weights(pretrained)

    def _init_random(self):
        """The authors' init: trunc_normal(0.02) for Linear weights, pos_embed and cls_token; zero Linear bias."""
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        nn.init.trunc_normal_(self.cls_token, std=0.02)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.LayerNorm):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def init_weights(self, pretrained=None):
        """Load the MIM checkpoint once; called again (mmseg's train.py does) it leaves the weights alone."""
        pretrained = pretrained or self.pretrained
        if pretrained is None or pretrained == self._loaded_pretrained:
            return
        if not isinstance(pretrained, str):
            raise TypeError(f'pretrained must be a path or None, got {type(pretrained).__name__}')
        load_pretrained(self, pretrained, logger=logging.getLogger('mmseg'))
        self._loaded_pretrained = pretrained

    def forward(self, x):
        B, _, H, W = x.shape
        if (H, W) != (self.img_size, self.img_size):
            raise ValueError(f'EVA2 needs {self.img_size}x{self.img_size} inputs (fixed position tables), got '
                             f'{H}x{W}; use slide inference with crop_size=({self.img_size}, {self.img_size})')
        x, (Hp, Wp) = self.patch_embed(x)
        x = torch.cat((self.cls_token.expand(B, -1, -1), x), dim=1) + self.pos_embed
        x = self.pos_drop(x)
        features = []
        for i, blk in enumerate(self.blocks):
            x = blk(x)
            if i in self.out_indices:  # patch tokens only, no final norm
                features.append(x[:, 1:, :].permute(0, 2, 1).reshape(B, -1, Hp, Wp).contiguous())
        return tuple(op(f) for op, f in zip((self.fpn1, self.fpn2, self.fpn3, self.fpn4), features))


# -- checkpoint key mapping -------------------------------------------------------------------------------------

# Keys of the MIM checkpoints the seg backbone does not use, each with the reason (the authors' load log lists
# exactly these as "unexpected").
PRETRAINED_UNUSED = {
    'mask_token': 'masked-image-modelling token, used only in pre-training',
    'norm.': 'final norm of the MIM model; the seg backbone takes features before any norm',
    'lm_head.': 'MIM regression head onto the teacher features',
}
# Keys the seg backbone has and the MIM checkpoint lacks (the authors' load log lists exactly these as "missing").
PRETRAINED_FRESH = ('fpn1.', 'fpn2.')
def checkpoint_filter_fn(checkpoint, model: EVA2) -> dict:
    """Map a MIM checkpoint (EVA-02 pre-training .pt) onto `model`'s keys, without dropping anything.

    Unwraps `module` / `model` / `state_dict`, strips a DDP `module.` prefix, casts floating tensors to fp32 and
    resizes `pos_embed` to the model's grid (bicubic, cls position kept). Keys the model does not use stay in the
    result so that the load report can name them (see checkpoint.load_pretrained); rope tables are never loaded
    (VisionRotaryEmbeddingFast ignores them).
    """
    state_dict = checkpoint
    for wrapper in ('state_dict', 'model', 'module'):  # the authors' loader checks them in this order
        if isinstance(state_dict, dict) and wrapper in state_dict and isinstance(state_dict[wrapper], dict):
            state_dict = state_dict[wrapper]
            break
    out = {}
    for k, v in state_dict.items():
        if k.startswith('module.'):  # DDP/DeepSpeed prefix
            k = k[len('module.'):]
        if torch.is_tensor(v) and v.is_floating_point():
            v = v.float()  # the L MIM file is fp16
        if k == 'pos_embed' and v.shape != model.pos_embed.shape:
            v = resize_pos_embed(v, model.patch_embed.patch_shape)
        out[k] = v
    return out


def resize_pos_embed(pos_embed: torch.Tensor, new_grid: tuple[int, int]) -> torch.Tensor:
    """(1, 1+g², C) -> (1, 1+H·W, C): bicubic on the grid (align_corners=False, no antialias), cls kept."""
    cls_pos, grid_pos = pos_embed[:, :1], pos_embed[:, 1:]
    old = int(math.isqrt(grid_pos.shape[1]))
    if old * old != grid_pos.shape[1]:
        raise ValueError(f'pos_embed has {grid_pos.shape[1]} patch positions, not a square grid')
    C = grid_pos.shape[-1]
    grid_pos = grid_pos.float().reshape(1, old, old, C).permute(0, 3, 1, 2)
    grid_pos = F.interpolate(grid_pos, size=new_grid, mode='bicubic', align_corners=False)
    return torch.cat((cls_pos.float(), grid_pos.permute(0, 2, 3, 1).flatten(1, 2)), dim=1)


def load_pretrained(backbone: torch.nn.Module, filename, logger: logging.Logger | None = None) -> LoadReport:
    """Load an EVA-02 MIM checkpoint into an EVA2 backbone (fp16 -> fp32, pos_embed resized); log and return
    the report. Raises ReproError when a backbone weight other than fpn1/fpn2 is missing or has another shape
    (a wrong or truncated file); unknown extra keys are ignored, as the authors' loader does, and named in the log."""
    logger = logger or logging.getLogger('mmseg')
    state_dict = checkpoint_filter_fn(safe_load(filename, map_location='cpu'), backbone)
    report = compare(backbone, state_dict)
    if report.text():
        logger.warning(report.text())
    # the authors' loader ignores keys it cannot use: do the same, but name any beyond the known MIM-only ones
    unknown = [k for k in report.unexpected if not k.startswith(tuple(PRETRAINED_UNUSED))]
    if unknown:
        logger.warning(f'{filename}: keys not used by EVA2 beyond the known MIM-only ones '
                       f'({", ".join(PRETRAINED_UNUSED)}): {", ".join(unknown)}')
    # a backbone weight the file does not provide would silently stay random: that is an error
    surprises = [f'{k} (missing)' for k in report.missing
                 if not k.startswith(PRETRAINED_FRESH) and not is_rope_buffer(k)]
    surprises += [f'{k} (shape {tuple(a)} vs {tuple(b)})' for k, a, b in report.size_mismatch if not is_rope_buffer(k)]
    if surprises:
        raise ReproError(f'{filename} does not fit the EVA2 backbone as an EVA-02 MIM checkpoint: '
                         f'{", ".join(surprises)}',
                         fix='pass the p14to16 MIM .pt of the same size (B or L) as model.backbone.pretrained')
    _load_matching(backbone, state_dict, report)
    return report
