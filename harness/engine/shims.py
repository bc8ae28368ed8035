"""Compatibility shims for mmcv-full 1.7.x / mmsegmentation 0.29.1 on torch 2.x, one small named function each.

Nothing is patched at import time: the engine entry point calls `apply_all()` once at start-up, and each shim can
be applied (and tested) on its own. Every shim is idempotent and says in its docstring what breaks without it;
tests/engine/test_shims.py runs the real engine code path with and without each one.

| shim | what breaks on torch 2.x without it |
| --- | --- |
| `scatter_get_stream` | mmcv's `Scatter.forward` calls torch's `_get_stream(int)`; torch wants a `torch.device` |
| `ddp_forward_module` | `MMDistributedDataParallel._run_ddp_forward` reads `_use_replicated_tensor_module`, gone from DDP |
| `ddp_cpu_datacontainers` | MMDDP with `device_ids=None` (CPU, gloo) hands mmcv DataContainers to the model unscattered |
| `safe_checkpoint_loading` | mmcv's local loader calls `torch.load` without `weights_only`; torch >= 2.6 refuses numpy scalars |
| `knet_out_channels` | mmseg 0.29.1's `IterativeDecodeHead` (KNet) sets no `out_channels`, which `EncoderDecoder` reads (any torch) |
| `local_rank_argument` | `torch.distributed.launch` passes `--local-rank=N`; mmseg's tools only know `--local_rank` |
| yapf: no shim | mmcv 1.7.2 already drops `verify=` for yapf >= 0.40.2 (mmcv PR #2944): `Config.dump` works with yapf 0.43 |
"""
from __future__ import annotations

import argparse
import os

_APPLIED: set[str] = set()
_ORIGINALS: list[tuple[object, str, object]] = []   # (owner, attribute, original value), in patch order


def _once(name: str) -> bool:
    if name in _APPLIED:
        return False
    _APPLIED.add(name)
    return True


def _patch(owner, attribute: str, value) -> None:
    _ORIGINALS.append((owner, attribute, getattr(owner, attribute)))
    setattr(owner, attribute, value)


def revert_all() -> None:
    """Undo every shim (newest first): the tests use it to run the unpatched engine in the same process."""
    while _ORIGINALS:
        owner, attribute, value = _ORIGINALS.pop()
        setattr(owner, attribute, value)
    _APPLIED.clear()


def scatter_get_stream() -> None:
    """mmcv/parallel/_functions.py calls `_get_stream(device)` with a GPU index; torch >= 2.1 reads `device.type`.

    Without it every CPU->GPU scatter (MMDataParallel and MMDDP on GPUs) fails with
    `AttributeError: 'int' object has no attribute 'type'`. We rebind the name mmcv looks up to a wrapper that
    turns an int into `torch.device('cuda', index)`.
    """
    if not _once("scatter_get_stream"):
        return
    import torch
    from mmcv.parallel import _functions

    original = _functions._get_stream

    def _get_stream(device):
        if isinstance(device, int):
            device = torch.device("cuda", device)
        return original(device)

    _get_stream.__wrapped__ = original
    _patch(_functions, "_get_stream", _get_stream)


def ddp_forward_module() -> None:
    """`MMDistributedDataParallel._run_ddp_forward` reads `self._use_replicated_tensor_module`, removed in torch 2.1.

    Without it `multi_gpu_test` and DistEvalHook fail with AttributeError at the first forward. The replacement is
    mmcv's method with `module_to_run = self.module` (the replicated-tensor path no longer exists in torch).
    """
    if not _once("ddp_forward_module"):
        return
    from mmcv.parallel import MMDistributedDataParallel

    def _run_ddp_forward(self, *inputs, **kwargs):
        if self.device_ids:
            inputs, kwargs = self.to_kwargs(inputs, kwargs, self.device_ids[0])
            return self.module(*inputs[0], **kwargs[0])
        return self.module(*inputs, **kwargs)

    _patch(MMDistributedDataParallel, "_run_ddp_forward", _run_ddp_forward)


def ddp_cpu_datacontainers() -> None:
    """MMDDP built with `device_ids=None` (CPU processes) skips mmcv's scatter, so the model gets DataContainers.

    mmcv scatters only when `device_ids` is set; on CPU it is not, and `EncoderDecoder.forward_test` then fails on
    a DataContainer where it wants a list of tensors. Here forward, train_step and val_step first unwrap the inputs
    with `scatter_kwargs(..., [-1])`, mmcv's own CPU target (exactly what MMDataParallel does on CPU).
    """
    if not _once("ddp_cpu_datacontainers"):
        return
    import functools

    from mmcv.parallel import MMDistributedDataParallel
    from mmcv.parallel.scatter_gather import scatter_kwargs

    def unwrap_on_cpu(method):
        @functools.wraps(method)
        def wrapper(self, *inputs, **kwargs):
            if not self.device_ids:
                inputs, kwargs = scatter_kwargs(inputs, kwargs, [-1], dim=self.dim)
                inputs, kwargs = (inputs[0] if inputs else ()), (kwargs[0] if kwargs else {})
            return method(self, *inputs, **kwargs)
        return wrapper

    for name in ("_run_ddp_forward", "train_step", "val_step"):
        _patch(MMDistributedDataParallel, name, unwrap_on_cpu(getattr(MMDistributedDataParallel, name)))


def safe_checkpoint_loading() -> None:
    """mmcv's local-file loader (used by `load_checkpoint`, `runner.resume`, `init_cfg=Pretrained`) calls
    `torch.load(filename)`. Since torch 2.6 that means `weights_only=True` with no allow-list, so an mmseg
    checkpoint whose `meta` holds numpy scalars (`hook_msgs.best_score` after save_best) raises UnpicklingError.
    We register `harness.engine.checkpoint.safe_load` (weights_only=True plus an explicit allow-list) as mmcv's
    loader for local paths; the safety stays on.
    """
    if not _once("safe_checkpoint_loading"):
        return
    from mmcv.runner.checkpoint import CheckpointLoader

    def load_from_local(filename, map_location=None):
        from harness.engine.checkpoint import safe_load
        return safe_load(os.path.expanduser(filename), map_location=map_location)

    schemes = dict(CheckpointLoader._schemes)
    _patch(CheckpointLoader, "_schemes", schemes)   # a copy, so revert_all restores mmcv's own table
    CheckpointLoader.register_scheme(prefixes="", force=True)(load_from_local)


def knet_out_channels() -> None:
    """mmseg 0.29.1's `IterativeDecodeHead` (every KNet config) skips `BaseDecodeHead.__init__`, so it never sets
    `out_channels`, and `EncoderDecoder.__init__` reads `decode_head.out_channels`: building any KNet model fails
    with `'IterativeDecodeHead' object has no attribute 'out_channels'` (open-mmlab/mmsegmentation#2325). The head
    predicts with its kernel generate head's classes, so its output channels are that head's `out_channels`
    (num_classes for the softmax heads of the zoo); we set them after the original constructor.
    """
    if not _once("knet_out_channels"):
        return
    from mmseg.models.decode_heads.knet_head import IterativeDecodeHead

    original = IterativeDecodeHead.__init__

    def __init__(self, *args, **kwargs):
        original(self, *args, **kwargs)
        if not hasattr(self, "out_channels"):
            self.out_channels = self.kernel_generate_head.out_channels

    _patch(IterativeDecodeHead, "__init__", __init__)


def local_rank_argument(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Accept both `--local-rank` (torch >= 2.0 `torch.distributed.launch`) and `--local_rank` (mmseg's tools).

    We launch with torchrun, which sets LOCAL_RANK in the environment; the flag is accepted for the legacy
    launcher and, when given, exported as LOCAL_RANK so the rest of the engine reads one place.
    """
    parser.add_argument("--local-rank", "--local_rank", dest="local_rank", type=int, default=None,
                        help="set by torch.distributed.launch; torchrun uses the LOCAL_RANK variable instead")
    return parser


def export_local_rank(local_rank: int | None) -> None:
    if local_rank is not None and "LOCAL_RANK" not in os.environ:
        os.environ["LOCAL_RANK"] = str(local_rank)


# yapf: mmcv 1.7.2's Config.pretty_text calls FormatCode(..., verify=True) only for yapf < 0.40.2 (the keyword
# was removed in yapf 0.40.2); with yapf 0.43 it calls FormatCode(text, style_config=...). So Config.dump works
# unpatched; tests/engine/test_shims.py::test_config_dump_with_installed_yapf keeps that true.

SHIMS = (scatter_get_stream, ddp_forward_module, ddp_cpu_datacontainers, safe_checkpoint_loading, knet_out_channels)


def apply_all() -> list[str]:
    """Apply every runtime shim (idempotent); return their names, for the log."""
    for shim in SHIMS:
        shim()
    return [shim.__name__ for shim in SHIMS]
