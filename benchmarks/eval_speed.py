"""How much faster is `repro eval --engine fast` than the stock mmseg loop, and does it give the same answer?

The same model (random-initialised weights are fine for speed) and the same synthetic ADE-like images (short side
512, long side 512..2100 like ADE20K val, labels 0..150) go through the stock loop (fp32, one window at a time)
and the fast path (fp32) in one run; with --precision tf32|bf16 the fast path runs a third time at that
precision. Prints images/s, peak device memory, argmax agreement over all pixels, |Δ| of aAcc/mIoU/mAcc, a
projected time for the 2,000 val images, and ends with the fp32 comparison:

    fast/stock X.XXx; argmax agreement Y; max |dmetric| Z

Then the per-image ledger's cost (harness/ledger/store.py): the fast fp32 evaluation without a ledger writer and
with one (chunks at the default cadence into a temporary ledger.parts/, then ledger.npz and its sha256),
alternated `--ledger-repeats` times, the best of each:

    ledger: without X.XX s, with Y.YY s, ratio Z.ZZZ (goal <= 1.02)

    python benchmarks/eval_speed.py --reproduction eva02_B_sz512 --images 8                  # CPU
    python benchmarks/eval_speed.py --reproduction eva02_demo --protocol ms --images 8
    python benchmarks/eval_speed.py --reproduction eva02_L_sz512 --images 32 --device cuda --precision bf16
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

VAL_IMAGES = 2000


def make_images(root: Path, n: int, seed: int) -> Path:
    """ADE20K folder layout, validation split only: blocky label maps, images coloured by label plus noise."""
    import cv2
    import numpy as np
    rng = np.random.default_rng(seed)
    for sub in ("images/validation", "annotations/validation", "images/training", "annotations/training"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    for i in range(n):
        short, long = 512, int(rng.integers(512, 2101))
        h, w = (short, long) if rng.random() < 0.75 else (long, short)
        blocks = rng.integers(0, 151, (h // 64 + 1, w // 64 + 1))
        labels = np.kron(blocks, np.ones((64, 64), dtype=np.int64))[:h, :w]
        image = (labels[..., None] * [37, 91, 13] % 255 + rng.normal(0, 12, (h, w, 3))).clip(0, 255)
        name = f"ADE_val_{i:08d}"
        cv2.imwrite(str(root / "images/validation" / f"{name}.jpg"), image.astype(np.uint8))
        cv2.imwrite(str(root / "annotations/validation" / f"{name}.png"), labels.astype(np.uint8))
    return root


class Recording:
    """The stock loop's model, keeping each image's argmax map as it goes by (the loop already has it on the host)."""

    def __init__(self, model):
        self.model, self.preds = model, []

    def eval(self):
        self.model.eval()
        return self

    def __call__(self, **kw):
        out = self.model(**kw)
        self.preds.extend(out)
        return out


def peak_memory(device: str) -> str:
    import torch
    if device != "cuda":
        return "n/a (CPU)"
    return f"{torch.cuda.max_memory_allocated() / 2**30:.2f} GiB"


def reset_peak(device: str) -> None:
    import torch
    if device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reproduction", default="eva02_B_sz512")
    parser.add_argument("--images", type=int, default=8, help="synthetic ADE-like validation images")
    parser.add_argument("--protocol", choices=["ss", "ms"], default="ss")
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    parser.add_argument("--precision", choices=["fp32", "tf32", "bf16"], default="fp32",
                        help="the fast path's extra run at this precision (stock and the exact run stay fp32)")
    parser.add_argument("--batch-size", type=int, default=None, help="windows per forward [default: by device]")
    parser.add_argument("--workers", type=int, default=2, help="loader workers")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--data-root", type=Path, default=None, help="reuse or keep the synthetic images here")
    parser.add_argument("--ledger-repeats", type=int, default=3,
                        help="fast-engine runs with and without the ledger writer, alternated (0: skip)")
    args = parser.parse_args(argv)

    import numpy as np
    import torch

    from harness.engine import shims
    shims.apply_all()
    from mmcv.cnn.utils import revert_sync_batchnorm
    from mmcv.parallel import MMDataParallel
    from mmseg.datasets import build_dataloader, build_dataset
    from mmseg.models import build_segmentor

    import harness.engine.modules  # noqa: F401
    from harness.engine.config import build_config
    from harness.engine.evaluate import evaluate_loader, metrics_percent
    from harness.engine.evaluate_fast import build_loader, default_batch_size, evaluate_loader_fast
    from harness.engine.precision import set_matmul_precision
    from harness.registry import get

    device = ("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device
    tmp = tempfile.TemporaryDirectory(prefix="eval_speed_")
    root = args.data_root or Path(tmp.name) / "ADEChallengeData2016"
    if not (root / "images" / "validation").is_dir() or len(list((root / "images/validation").glob("*.jpg"))) < args.images:
        t = time.perf_counter()
        make_images(root, args.images, args.seed)
        print(f"made {args.images} synthetic images in {time.perf_counter() - t:.1f} s under {root}")

    rep = get(args.reproduction)
    cfg = build_config({"kind": "eval", "config": str(rep.config_path(args.protocol)), "data_root": str(root),
                        "run_dir": None, "cfg_options": {"data.workers_per_gpu": args.workers}}, device=device)
    torch.manual_seed(args.seed)
    model = revert_sync_batchnorm(build_segmentor(cfg.model, test_cfg=cfg.get("test_cfg")))
    model.init_weights()
    model = model.to(device).eval()
    dataset = build_dataset(cfg.data.test, {"test_mode": True})
    dataset.img_infos = dataset.img_infos[:args.images]
    info = {"rank": 0, "world_size": 1, "distributed": False, "device": device}
    batch = args.batch_size or default_batch_size(device)
    pixels = sum(int(np.prod(dataset.get_gt_seg_map_by_idx(i).shape)) for i in range(len(dataset)))
    print(f"{args.reproduction} {args.protocol}, {len(dataset)} images ({pixels / 1e6:.1f} Mpx), device {device}, "
          f"fast batch {batch} windows, torch threads {torch.get_num_threads()}")

    def stock():
        reset_peak(device)
        recording = Recording(MMDataParallel(model, device_ids=[0]) if device == "cuda" else MMDataParallel(model))
        loader = build_dataloader(dataset, 1, args.workers, dist=False, shuffle=False, persistent_workers=False)
        results, seconds = evaluate_loader(recording, loader, info)
        return results, seconds, recording.preds, peak_memory(device)

    def fast(precision):
        reset_peak(device)
        set_matmul_precision(precision)
        preds = {}
        results, seconds = evaluate_loader_fast(model, build_loader(dataset, info, args.workers), info,
                                                batch_size=batch, precision=precision,
                                                on_prediction=lambda i, p: preds.__setitem__(i, p.cpu().numpy()))
        set_matmul_precision("fp32")
        return results, seconds, [preds[i] for i in range(len(dataset))], peak_memory(device)

    if device == "cuda":              # one image through both paths first: kernels, allocator, autotuning
        full = dataset.img_infos
        dataset.img_infos = full[:1]
        stock(), fast("fp32")
        if args.precision != "fp32":
            fast(args.precision)
        dataset.img_infos = full

    runs = {"stock fp32": stock(), "fast fp32": fast("fp32")}
    if args.precision != "fp32":
        runs[f"fast {args.precision}"] = fast(args.precision)

    metrics = {name: metrics_percent(r[0], dataset.CLASSES)[0] for name, r in runs.items()}
    for name, (_, seconds, _, peak) in runs.items():
        ips = len(dataset) / seconds
        m = metrics[name]
        print(f"{name:12s} {ips:8.3f} images/s  ({seconds:7.2f} s)  peak memory {peak:>12s}  "
              f"aAcc {m['aAcc']:.2f} mIoU {m['mIoU']:.2f} mAcc {m['mAcc']:.2f}  "
              f"projected {VAL_IMAGES} images: {VAL_IMAGES / ips:8.1f} s")

    def agreement(a, b):
        same = sum(int((x == y).sum()) for x, y in zip(a, b))
        return same / sum(x.size for x in a)

    def dmetric(a, b):
        return max(abs(metrics[a][k] - metrics[b][k]) for k in ("aAcc", "mIoU", "mAcc"))

    stock_s, fast_s = runs["stock fp32"][1], runs["fast fp32"][1]
    if args.precision != "fp32":
        name = f"fast {args.precision}"
        print(f"{args.precision}: fast/stock {stock_s / runs[name][1]:.2f}x; argmax agreement with fast fp32 "
              f"{agreement(runs[name][2], runs['fast fp32'][2]):.6f}; max |dmetric| vs fp32 "
              f"{dmetric(name, 'fast fp32'):.4f}; projected {VAL_IMAGES} images "
              f"{VAL_IMAGES * runs[name][1] / len(dataset):.1f} s")
    print(f"fast/stock {stock_s / fast_s:.2f}x; argmax agreement "
          f"{agreement(runs['fast fp32'][2], runs['stock fp32'][2]):.6f}; max |dmetric| "
          f"{dmetric('fast fp32', 'stock fp32'):.4f}")
    if args.ledger_repeats > 0:
        ledger_cost(model, dataset, info, args.workers, batch, args.ledger_repeats, Path(tmp.name))
    tmp.cleanup()
    return 0


def ledger_cost(model, dataset, info: dict, workers: int, batch: int, repeats: int, scratch: Path) -> float:
    """Fast fp32 evaluation wall time without and with the ledger writer (best of `repeats`, alternated)."""
    import shutil

    from harness.engine.evaluate_fast import build_loader, evaluate_loader_fast
    from harness.engine.rows import IndexShard, LedgerSink
    from harness.ledger.resume import finish
    from harness.ledger.store import ChunkWriter, from_rows

    def once(with_ledger: bool) -> float:
        run_dir = scratch / "ledger-run"
        shutil.rmtree(run_dir, ignore_errors=True)
        shard = IndexShard(list(range(len(dataset))))
        writer = ChunkWriter(run_dir / "ledger.parts", 0) if with_ledger else None
        start = time.perf_counter()
        sink = LedgerSink(dataset, shard, writer)
        rows, _ = evaluate_loader_fast(model, build_loader(dataset, info, workers, sampler=shard), info,
                                       batch_size=batch, sink=sink)
        if with_ledger:
            sink.flush()
            names = [dataset.img_infos[i]["filename"] for i, _, _ in rows]
            finish(run_dir, from_rows([r[0] for r in rows], names, [r[1] for r in rows], [r[2] for r in rows]), 1)
        return time.perf_counter() - start

    times = {False: [], True: []}
    for _ in range(repeats):
        for with_ledger in (False, True):
            times[with_ledger].append(once(with_ledger))
    without, with_ = min(times[False]), min(times[True])
    print(f"ledger: without {without:.2f} s, with {with_:.2f} s (best of {repeats}, alternated; all: "
          f"{', '.join(f'{t:.2f}' for t in times[False])} / {', '.join(f'{t:.2f}' for t in times[True])}), "
          f"ratio {with_ / without:.3f} (goal <= 1.02)")
    return with_ / without


if __name__ == "__main__":
    sys.exit(main())
