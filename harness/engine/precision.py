"""`--precision fp32|tf32|bf16` for evaluation: what each means for matmuls, convolutions and the forward pass.

fp32 is the authors' protocol: PyTorch's defaults (fp32 matmuls; cuDNN convolutions as PyTorch sets them).
tf32 lets CUDA matmuls and convolutions use TF32 tensor cores. bf16 runs the model's forward under
torch.autocast(bfloat16); logits are taken back to fp32 before stitching, softmax and argmax.
On a CPU, tf32 changes nothing and bf16 uses CPU autocast.
"""
from __future__ import annotations

import contextlib

from harness.choices import PRECISIONS


def set_matmul_precision(precision: str) -> None:
    """Process-wide switches: TF32 on for tf32 (and bf16, whose few fp32 ops may use it), off for fp32."""
    import torch
    if precision not in PRECISIONS:
        from harness.errors import ReproError
        raise ReproError(f"unknown precision '{precision}'", fix=f"use one of {', '.join(PRECISIONS)}")
    if precision == "fp32":
        torch.backends.cuda.matmul.allow_tf32 = False     # PyTorch's default; cuDNN's own default is left alone
        return
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True


def forward_context(precision: str, device: str):
    """The context the model's forward runs in: autocast to bfloat16 for bf16, nothing otherwise."""
    import torch
    if precision == "bf16":
        return torch.autocast(device_type="cuda" if device.startswith("cuda") else "cpu", dtype=torch.bfloat16)
    return contextlib.nullcontext()
