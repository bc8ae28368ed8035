"""Lossless compact storage of the golden expected outputs (tests/data/golden/mini/expected.npz).

`crop_logits` (1,150,128,128) float32 is the decode head's 32x32 map upsampled x4 (bilinear, align_corners=False)
and was 8.6 of the original 10.4 MB. It is stored as that 32x32 map (recovered by least squares, then nudged by
a few ulps where that helps) plus, per pixel, the XOR of its bit pattern with our re-upsampling of the map (zero
for all but ~0.3 % of pixels); decoding redoes the upsampling with plain elementwise numpy operations
(deterministic on every IEEE machine) and applies the XOR, giving back the authors' array bit for bit. `sha256` holds each original array's hash and `decode` checks every array against it,
so a wrong decode fails loudly instead of shifting the golden values. Every other array is stored unchanged.

    python tests/golden_codec.py ORIGINAL.npz OUT.npz    # encode, then check the round trip
"""
from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import numpy as np

UPSAMPLED = "crop_logits"
SCALE = 4


def array_sha256(array: np.ndarray) -> str:
    header = f"{array.dtype.str}{array.shape}".encode()
    return hashlib.sha256(header + np.ascontiguousarray(array).tobytes()).hexdigest()


def _taps(n_in: int, n_out: int):
    """torch's bilinear source taps and weights for align_corners=False (negative source positions clamp to 0)."""
    source = np.maximum((np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5, 0.0)
    lo = np.floor(source).astype(np.int64)
    hi = np.minimum(lo + 1, n_in - 1)
    frac = source - lo
    return lo, hi, (1.0 - frac).astype(np.float32), frac.astype(np.float32)


def _mix(a: np.ndarray, b: np.ndarray, wa: np.ndarray, wb: np.ndarray) -> np.ndarray:
    """a*wa + b*wb as torch's CPU kernel rounds it (a fused multiply-add onto the float32 product b*wb), emulated in
    float64: the product a*wa is exact there, so only the final sum is rounded (twice)."""
    return (a.astype(np.float64) * wa + (b * wb).astype(np.float64)).astype(np.float32)


def upsample(small: np.ndarray) -> np.ndarray:
    """float32 bilinear x4 of (..., h, w): width first, then height."""
    h, w = small.shape[-2:]
    lo_w, hi_w, w0, w1 = _taps(w, w * SCALE)
    lo_h, hi_h, h0, h1 = _taps(h, h * SCALE)
    small = small.astype(np.float32)
    rows = _mix(small[..., lo_w], small[..., hi_w], w0, w1)
    return _mix(rows[..., lo_h, :], rows[..., hi_h, :], h0[:, None], h1[:, None])


def _least_squares_source(big: np.ndarray) -> np.ndarray:
    n_out = big.shape[-1]
    lo, hi, w0, w1 = _taps(n_out // SCALE, n_out)
    up = np.zeros((n_out, n_out // SCALE))
    np.add.at(up, (np.arange(n_out), lo), w0.astype(np.float64))
    np.add.at(up, (np.arange(n_out), hi), w1.astype(np.float64))
    inverse = np.linalg.pinv(up)
    return np.einsum("ij,...jk,lk->...il", inverse, big.astype(np.float64), inverse).astype(np.float32)


def _mismatches_per_source(small: np.ndarray, big: np.ndarray) -> np.ndarray:
    """For each source pixel, how many of the output pixels it feeds (rows/cols 4i-2 .. 4i+5) miss bit-exactness."""
    k = small.shape[-1]
    miss = np.pad((upsample(small) != big).astype(np.int32), [(0, 0)] * (big.ndim - 2) + [(3, 6), (3, 6)])
    total = np.pad(miss.cumsum(-1).cumsum(-2), [(0, 0)] * (big.ndim - 2) + [(1, 0), (1, 0)])
    lo = np.arange(k) * SCALE + 1
    hi = lo + 2 * SCALE
    return (total[..., hi[:, None], hi] - total[..., lo[:, None], hi]
            - total[..., hi[:, None], lo] + total[..., lo[:, None], lo])


def _refine(small: np.ndarray, big: np.ndarray, sweeps: int = 4) -> np.ndarray:
    """Nudge source pixels by a few float32 ulps where that makes more outputs bit-exact (a smaller XOR to store).
    Pixels two apart in both directions feed disjoint outputs, so each of the 4 parity classes is tried at once."""
    for _ in range(sweeps):
        for row, col in ((0, 0), (0, 1), (1, 0), (1, 1)):
            chosen = np.zeros(small.shape, bool)
            chosen[..., row::2, col::2] = True
            best, best_small = _mismatches_per_source(small, big), small
            for ulps in (-3, -2, -1, 1, 2, 3):
                trial = small.copy()
                trial[chosen] = (trial[chosen].view(np.int32) + ulps).view(np.float32)
                score = _mismatches_per_source(trial, big)
                better = chosen & (score < best)
                best, best_small = np.where(better, score, best), np.where(better, trial, best_small)
            small = best_small
    return small


def encode(arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    out = {k: v for k, v in arrays.items() if k != UPSAMPLED}
    big = arrays[UPSAMPLED]
    small = _refine(_least_squares_source(big), big)
    out[f"{UPSAMPLED}_source"] = small
    out[f"{UPSAMPLED}_xor"] = big.view(np.uint32) ^ upsample(small).view(np.uint32)
    out["sha256"] = np.array(json.dumps({k: array_sha256(v) for k, v in arrays.items()}, sort_keys=True))
    return out


def decode(stored) -> dict[str, np.ndarray]:
    """The original arrays from a compact npz (np.load result or dict); raises if any differs from its hash."""
    stored = dict(stored)
    hashes = json.loads(str(stored.pop("sha256")))
    small, xor = stored.pop(f"{UPSAMPLED}_source"), stored.pop(f"{UPSAMPLED}_xor")
    stored[UPSAMPLED] = (upsample(small).view(np.uint32) ^ xor).view(np.float32)
    wrong = sorted(k for k in hashes if k not in stored or array_sha256(stored[k]) != hashes[k])
    if wrong or set(stored) != set(hashes):
        raise ValueError(f"golden expected.npz does not decode to the recorded arrays: {wrong or sorted(stored)}")
    return stored


def main(original: str, target: str) -> None:
    arrays = dict(np.load(original))
    compact = encode(arrays)
    tmp = Path(target).with_name(Path(target).name + ".tmp.npz")
    np.savez_compressed(tmp, **compact)
    decoded = decode(np.load(tmp))
    assert all(np.array_equal(decoded[k].view(np.uint8), arrays[k].view(np.uint8)) for k in arrays)
    tmp.replace(target)
    print(f"{original}: {Path(original).stat().st_size} bytes -> {target}: {Path(target).stat().st_size} bytes, "
          f"{len(arrays)} arrays bit-identical after decoding")


if __name__ == "__main__":
    main(*sys.argv[1:3])
