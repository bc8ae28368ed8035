"""Loading checkpoints safely and on purpose.

- `safe_load`: `torch.load(weights_only=True)` plus an allow-list of exactly what an mmcv checkpoint's `meta`
  holds beyond plain containers (numpy scalars from mmseg's metrics, e.g. `hook_msgs.best_score`). A pickle that
  would run code on load is refused with a ReproError; nothing switches the safety off.
- `load_seg_checkpoint`: a released (or our own) segmentation .pth into a segmentor, strictly: any missing or
  unexpected key except the recomputed rope tables is an error that lists them.
- `load_pretrained` (in harness/engine/eva2.py, beside its key mapping): an EVA-02 MIM .pt into the EVA2 backbone, reporting missing / unexpected / size-mismatched
  keys in mmcv's words, the same report as the authors' training log; keys outside the known sets are an error.
"""
from __future__ import annotations

import logging
import pickle
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from harness.errors import ReproError

_NUMPY_SCALAR_TYPES = (np.bool_, np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32, np.uint64,
                       np.float16, np.float32, np.float64)


def _allowed_globals() -> list:
    """What `meta` of an mmcv/mmseg checkpoint needs: numpy scalars (mmseg metrics are np.float64) and arrays."""
    from numpy.core.multiarray import _reconstruct, scalar
    allowed = [scalar, np.dtype, np.ndarray, _reconstruct]
    allowed += [type(np.dtype(t)) for t in _NUMPY_SCALAR_TYPES]  # numpy >= 1.25 pickles dtypes by their class
    # numpy 2 pickles these as numpy._core.*, numpy 1 as numpy.core.*: a checkpoint saved under either loads under both
    allowed += [(obj, f"{package}.multiarray.{obj.__name__}") for obj in (scalar, _reconstruct)
                for package in ("numpy.core", "numpy._core")]
    return allowed


def safe_load(filename, map_location=None):
    """torch.load with weights_only=True and the allow-list above; refuses pickles that would execute code."""
    path = Path(filename)
    if not path.is_file():
        raise ReproError(f'checkpoint not found: {path}', fix='check the path, or download it with `repro download`')
    try:
        with torch.serialization.safe_globals(_allowed_globals()):
            return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        reason = _unsafe_reason(exc)
        raise ReproError(
            f'refusing to load {path}: it is not plain tensors and data, loading it would execute code ({reason})',
            fix='use the checkpoint from the official source (`repro download` verifies its hash), or re-save only '
                'its state_dict from a trusted copy') from exc


def _unsafe_reason(exc: Exception) -> str:
    """The global the pickle asked for, without torch's advice to allow-list it."""
    match = re.search(r'GLOBAL (\S+) was not an allowed global', str(exc))
    if match:
        return f'it calls {match.group(1)}'
    return str(exc).strip().splitlines()[0][:200] if str(exc).strip() else 'the weights_only unpickler refused it'


def unwrap_state_dict(checkpoint) -> dict:
    """The tensors of an mmcv checkpoint: `checkpoint['state_dict']` if wrapped, else the dict itself."""
    if isinstance(checkpoint, dict) and isinstance(checkpoint.get('state_dict'), dict):
        checkpoint = checkpoint['state_dict']
    if not isinstance(checkpoint, dict):
        raise ReproError(f'checkpoint holds a {type(checkpoint).__name__}, not a state dict',
                         fix='pass a .pth saved by mmseg/mmcv (a dict of tensors, optionally under "state_dict")')
    if checkpoint and all(k.startswith('module.') for k in checkpoint):  # saved from a DDP-wrapped model
        checkpoint = {k[len('module.'):]: v for k, v in checkpoint.items()}
    return checkpoint


@dataclass
class LoadReport:
    """What differs between a checkpoint and a model, in mmcv's load_state_dict categories and words."""
    missing: list = field(default_factory=list)
    unexpected: list = field(default_factory=list)
    size_mismatch: list = field(default_factory=list)  # (key, checkpoint shape, model shape)

    def text(self) -> str:
        """mmcv's warning text (rank 0), as in the authors' log; empty when everything matched."""
        lines = [f'size mismatch for {k}: copying a param with shape {src} from checkpoint, the shape in current '
                 f'model is {dst}.' for k, src, dst in self.size_mismatch]
        if self.unexpected:
            lines.append(f'unexpected key in source state_dict: {", ".join(self.unexpected)}\n')
        if self.missing:
            lines.append(f'missing keys in source state_dict: {", ".join(self.missing)}\n')
        if not lines:
            return ''
        return '\n'.join(['The model and loaded state dict do not match exactly\n'] + lines)


def compare(model: torch.nn.Module, state_dict: dict) -> LoadReport:
    """mmcv's rules: missing keys leave out num_batches_tracked; shape differences are reported and skipped."""
    own = model.state_dict()
    report = LoadReport()
    report.unexpected = [k for k in state_dict if k not in own]
    report.size_mismatch = [(k, state_dict[k].shape, v.shape) for k, v in own.items()  # in the model's order
                            if k in state_dict and torch.is_tensor(state_dict[k]) and state_dict[k].shape != v.shape]
    report.missing = [k for k in own if k not in state_dict and 'num_batches_tracked' not in k]
    return report


def _load_matching(model: torch.nn.Module, state_dict: dict, report: LoadReport) -> None:
    skip = set(report.unexpected) | {k for k, _, _ in report.size_mismatch}
    result = model.load_state_dict({k: v for k, v in state_dict.items() if k not in skip}, strict=False)
    assert not result.unexpected_keys, result.unexpected_keys


# rotary position tables: recomputed by the model, never loaded from a checkpoint
ROPE_BUFFERS = ('freqs_cos', 'freqs_sin')


def is_rope_buffer(key: str) -> bool:
    return key.split('.')[-1] in ROPE_BUFFERS and '.rope.' in f'.{key}'


def _listing(keys: list, limit: int = 12) -> str:
    more = f' (and {len(keys) - limit} more)' if len(keys) > limit else ''
    return ', '.join(keys[:limit]) + more


def load_seg_checkpoint(model: torch.nn.Module, filename, map_location='cpu') -> dict:
    """Load a segmentation checkpoint strictly (rope tables excepted, they are recomputed); return its `meta`
    (empty dict when the file has none). Sets model.CLASSES / PALETTE from meta when present."""
    checkpoint = safe_load(filename, map_location=map_location)
    state_dict = unwrap_state_dict(checkpoint)
    report = compare(model, state_dict)
    missing = [k for k in report.missing if not is_rope_buffer(k)]
    unexpected = [k for k in report.unexpected if not is_rope_buffer(k)]
    mismatched = [f'{k} {tuple(a)} vs model {tuple(b)}' for k, a, b in report.size_mismatch if not is_rope_buffer(k)]
    if missing or unexpected or mismatched:
        parts = [f'{name}: {_listing(keys)}' for name, keys in
                 (('missing', missing), ('unexpected', unexpected), ('shape mismatch', mismatched)) if keys]
        raise ReproError(f'{filename} does not match the model built from the config; ' + '; '.join(parts),
                         fix='use the checkpoint released for this reproduction (see its reproduction.toml), '
                             'or the config it was trained with')
    _load_matching(model, state_dict, report)
    meta = checkpoint.get('meta', {}) if isinstance(checkpoint, dict) and 'state_dict' in checkpoint else {}
    for attr in ('CLASSES', 'PALETTE'):
        if isinstance(meta, dict) and attr in meta:
            setattr(model, attr, meta[attr])
    return meta if isinstance(meta, dict) else {}
