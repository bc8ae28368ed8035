"""The fast exact evaluation path (`repro eval --engine fast`): mmseg 0.29.1's slide_inference + aug_test +
pre_eval, with the windows of each image's augmentations going through the model in batches.

Where are windows batched? In `run_window_batches` below, and nowhere else: it walks the windows of every
(image, scale, flip) in order and puts consecutive windows of the same shape and image into one `encode_decode`
call of up to `batch_size` windows (the same for every session and rank of one evaluation: `window_batch`).
Everything around it is mmseg's arithmetic, in mmseg's order, on the model's device:

- windows: the grid of EncoderDecoder.slide_inference (test_cfg crop_size/stride; mode 'whole' is one window
  of the whole image), logits from the model's own `encode_decode` (it resizes the decode output to the window);
- stitching: each window's logits added into a canvas in grid order, divided by the per-pixel window count;
- per augmentation: crop to img_shape, resize to ori_shape (bilinear, the model's align_corners), softmax, flip
  back (EncoderDecoder.inference);
- per image: the augmentations' probabilities summed in pipeline order and divided by their number, argmax
  (aug_test / simple_test);
- metrics: the four 150-bin area histograms of mmseg's intersect_and_union (with the dataset's
  reduce_zero_label and ignore_index) computed on the device; only they come back, as int64 rows of the
  per-image ledger (harness/ledger/store.py), whose sums the metrics are computed from.

The augmented images come from the dataset's own test pipeline (MultiScaleFlipAug, Resize / SETRResize, flip,
Normalize) in the loader workers, which also read the ground-truth maps; pinned memory and non-blocking copies
overlap loading with compute. Sharding and gathering are the stock loop's: mmseg's DistributedSampler order,
then mmcv's collect_results_gpu / collect_results_cpu (of the ledger rows).
"""
from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import torch

from harness.engine.precision import forward_context

CPU_BATCH = 4            # on a CPU the backbone dominates; a few windows per call is as fast as many
HIST_FLUSH = 16          # images whose histograms are copied to the host together (one sync per flush)


# ------------------------------------------------------------------------------------------------ inputs

@dataclass
class Sample:
    """One image: its augmented views from the test pipeline, their metas, and (for metrics) the GT map."""
    index: int
    imgs: list            # (3, H, W) tensors, one per (scale, flip), in pipeline order
    metas: list           # the matching img_metas dicts
    gt: torch.Tensor | None = None

    def pin_memory(self) -> Sample:
        """Called by the DataLoader's pinning thread (pin_memory=True), so host-to-device copies can overlap."""
        self.imgs = [img.pin_memory() for img in self.imgs]
        if self.gt is not None:
            self.gt = self.gt.pin_memory()
        return self


class WithGroundTruth(torch.utils.data.Dataset):
    """The dataset's test pipeline output and its ground-truth map, both made in the loader worker."""

    def __init__(self, dataset, with_gt: bool = True):
        self.dataset = dataset
        self.with_gt = with_gt

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> Sample:
        data = self.dataset[index]
        metas = [m.data if hasattr(m, "data") else m for m in data["img_metas"]]
        imgs = [img.data if hasattr(img, "data") and not torch.is_tensor(img) else img for img in data["img"]]
        gt = torch.from_numpy(self.dataset.get_gt_seg_map_by_idx(index)) if self.with_gt else None
        return Sample(index, imgs, metas, gt)


def first_item(batch: list) -> Sample:
    return batch[0]


def build_loader(dataset, info: dict, workers: int, sampler=None):
    """One image per item in the stock loop's order: mmseg's DistributedSampler under torchrun, else sequential;
    `sampler`: the indices still to do (harness.engine.rows.IndexShard, the same order on a fresh run)."""
    if sampler is None and info["distributed"]:
        from mmseg.datasets.samplers import DistributedSampler
        sampler = DistributedSampler(dataset, info["world_size"], info["rank"], shuffle=False)
    return torch.utils.data.DataLoader(WithGroundTruth(dataset), batch_size=1, sampler=sampler, shuffle=False,
                                       num_workers=workers, collate_fn=first_item,
                                       pin_memory=info["device"] == "cuda",
                                       persistent_workers=False)


# ------------------------------------------------------------------------------------------------ windows

@dataclass
class AugPass:
    """One (image, scale, flip) view on the device: its windows, and the canvas their logits are stitched into."""
    sample: int                      # position of the image in the stream
    aug: int
    num_augs: int
    img: torch.Tensor                # (1, 3, h, w)
    meta: dict
    windows: list                    # (y1, y2, x1, x2) in slide_inference's grid order
    done: int = 0
    canvas: torch.Tensor | None = None
    count: torch.Tensor | None = None
    source: Sample | None = None


def window_grid(h_img: int, w_img: int, test_cfg) -> list[tuple[int, int, int, int]]:
    """EncoderDecoder.slide_inference's windows (mode 'slide'); the whole image for mode 'whole'."""
    if test_cfg.get("mode", "whole") != "slide":
        return [(0, h_img, 0, w_img)]
    h_stride, w_stride = test_cfg["stride"]
    h_crop, w_crop = test_cfg["crop_size"]
    h_grids = max(h_img - h_crop + h_stride - 1, 0) // h_stride + 1
    w_grids = max(w_img - w_crop + w_stride - 1, 0) // w_stride + 1
    windows = []
    for h_idx in range(h_grids):
        for w_idx in range(w_grids):
            y1, x1 = h_idx * h_stride, w_idx * w_stride
            y2, x2 = min(y1 + h_crop, h_img), min(x1 + w_crop, w_img)
            windows.append((max(y2 - h_crop, 0), y2, max(x2 - w_crop, 0), x2))
    return windows


def aug_passes(samples: Iterable[Sample], test_cfg, device) -> Iterator[AugPass]:
    for position, sample in enumerate(samples):
        for a, (img, meta) in enumerate(zip(sample.imgs, sample.metas)):
            img = img.to(device, non_blocking=True)
            if img.dim() == 3:
                img = img.unsqueeze(0)
            yield AugPass(position, a, len(sample.imgs), img, meta, window_grid(img.shape[2], img.shape[3], test_cfg),
                          source=sample)


def run_window_batches(model, passes: Iterable[AugPass], batch_size: int, precision: str) -> Iterator[AugPass]:
    """THE place where windows are batched: consecutive windows of one shape and one image, from any number of its
    augmentations, go through `model.encode_decode` together (at most `batch_size`). Each window's logits are
    added into its view's canvas in grid order; a view is yielded, stitched, as soon as its last window is in.

    A batch never holds two images' windows: the kernels a backend picks depend on the batch, so a window's logits
    may differ in their last bits with its neighbours, and an image's pixels must not depend on which images came
    before it in this process (an evaluation resumed at any image, or sharded otherwise, gives the same ledger)."""
    device_type = next(model.parameters()).device.type
    batch: list[tuple[AugPass, tuple]] = []

    def flush():
        crops = torch.cat([p.img[:, :, y1:y2, x1:x2] for p, (y1, y2, x1, x2) in batch])
        with torch.no_grad(), forward_context(precision, device_type):
            logits = model.encode_decode(crops, [p.meta for p, _ in batch])
        logits = logits.float()
        finished = []
        for k, (p, (y1, y2, x1, x2)) in enumerate(batch):
            if p.canvas is None:
                p.canvas = p.img.new_zeros((1, logits.shape[1], p.img.shape[2], p.img.shape[3]))
                p.count = p.img.new_zeros((1, 1, p.img.shape[2], p.img.shape[3]))
            p.canvas[:, :, y1:y2, x1:x2] += logits[k:k + 1]
            p.count[:, :, y1:y2, x1:x2] += 1
            p.done += 1
            if p.done == len(p.windows):
                finished.append(p)
        batch.clear()
        return finished

    for p in passes:
        for window in p.windows:
            shape = (window[1] - window[0], window[3] - window[2])
            if batch and (len(batch) >= batch_size or p.sample != batch[0][0].sample
                          or shape != (batch[0][1][1] - batch[0][1][0], batch[0][1][3] - batch[0][1][2])):
                yield from flush()
            batch.append((p, window))
    if batch:
        yield from flush()


def rescaled_logits(p: AugPass, align_corners: bool) -> torch.Tensor:
    """slide_inference's ending: divide by the window count, crop to img_shape, resize to ori_shape."""
    from mmseg.ops import resize
    preds = p.canvas / p.count
    h, w = p.meta["img_shape"][:2]
    preds = preds[:, :, :h, :w]
    return resize(preds, size=p.meta["ori_shape"][:2], mode="bilinear", align_corners=align_corners, warning=False)


def probabilities(logits: torch.Tensor, meta: dict) -> torch.Tensor:
    """EncoderDecoder.inference's ending: softmax over classes, then undo the view's flip."""
    output = torch.softmax(logits, dim=1)
    if meta.get("flip"):
        output = output.flip(dims=(3,) if meta.get("flip_direction", "horizontal") == "horizontal" else (2,))
    return output


def predictions(model, samples: Iterable[Sample], batch_size: int, precision: str = "fp32",
                device=None) -> Iterator[tuple[Sample, torch.Tensor]]:
    """(sample, argmax map (H, W) on the device) per image, in input order: aug_test / simple_test, batched."""
    if getattr(model, "out_channels", 2) == 1:
        from harness.errors import ReproError
        raise ReproError("the fast evaluation path handles softmax heads only (out_channels > 1)",
                         fix="run with --engine stock")
    device = device or next(model.parameters()).device
    sum_probs: dict[int, torch.Tensor] = {}
    stream = aug_passes(samples, model.test_cfg, device)
    for p in run_window_batches(model, stream, batch_size, precision):
        prob = probabilities(rescaled_logits(p, model.align_corners), p.meta)
        p.canvas = p.count = None
        if p.aug == 0:
            sum_probs[p.sample] = prob
        else:
            sum_probs[p.sample] += prob
        if p.aug == p.num_augs - 1:
            total = sum_probs.pop(p.sample)
            if p.num_augs > 1:
                total /= p.num_augs
            yield p.source, total.argmax(dim=1)[0]


# ------------------------------------------------------------------------------------------------ metrics

def area_histograms(pred: torch.Tensor, label: torch.Tensor, num_classes: int, ignore_index: int,
                    reduce_zero_label: bool) -> torch.Tensor:
    """mmseg's intersect_and_union on the device, in one pass and without a host sync: the (C+1) x C confusion
    counts of (label, prediction) over the pixels whose label is not ignore_index, where a label outside
    0..C-1 lands in row C (histc drops it from the label histogram; its prediction still counts). Returns
    (3, C) int64: intersection (the diagonal), prediction (column sums), label (rows 0..C-1 summed)."""
    label = label.long()
    if reduce_zero_label:
        label = torch.where(label == 0, 255, label) - 1
        label = torch.where(label == 254, 255, label)
    c = num_classes
    row = torch.where((label >= 0) & (label < c), label, c)
    cell = torch.where(label != ignore_index, row * c + pred.long(), (c + 1) * c)    # ignored: one dropped cell
    counts = torch.zeros((c + 1) * c + 1, dtype=torch.int64, device=cell.device)
    counts.index_add_(0, cell.reshape(-1), torch.ones(1, dtype=torch.int64, device=cell.device).expand(cell.numel()))
    confusion = counts[:-1].reshape(c + 1, c)
    return torch.stack([confusion[:c].diagonal(), confusion.sum(0), confusion[:c].sum(1)])


def pre_eval_format(counts: torch.Tensor) -> tuple:
    """(area_intersect, area_union, area_pred_label, area_label) as intersect_and_union returns them."""
    inter, pred, label = counts.float().unbind(0)
    return inter, pred + label - inter, pred, label


# ------------------------------------------------------------------------------------------------ the loop

def default_batch_size(device) -> int:
    """Windows per forward: a few on a CPU; on a GPU as many as a quarter of its free memory holds at ~1 GiB each
    (an EVA-02-L 512² window in fp32 with UperNet peaks well under that)."""
    device = torch.device(device)
    if device.type != "cuda":
        return CPU_BATCH
    free, _ = torch.cuda.mem_get_info(device)
    return int(max(1, min(32, free // 4 // (1 << 30))))


def window_batch(info: dict, given: int | None) -> int:
    """The windows per forward of an evaluation's first session: `given` (the job's, or an earlier session's),
    else the default of the device with the least free memory among the ranks, so every rank batches alike."""
    if given:
        return int(given)
    size = default_batch_size(info["device"])
    if info["distributed"]:
        import torch.distributed as dist
        agreed = torch.tensor([size], device=info["device"])
        dist.all_reduce(agreed, op=dist.ReduceOp.MIN)
        size = int(agreed.item())
    return size


def evaluate_loader_fast(model, loader, info: dict, tmpdir: str | None = None, batch_size: int | None = None,
                         precision: str = "fp32", on_prediction=None, sink=None) -> tuple[list, float]:
    """The fast counterpart of harness.engine.evaluate.evaluate_loader: the same rows (dataset index, pixel count,
    (4, C) int64 areas), the same order, the same gathering; each image's row goes to the ledger `sink` once its
    histograms are on the host (every HIST_FLUSH images, or sooner when a ledger chunk is due, and on the way
    out, whatever stopped the loop). `on_prediction(index, pred)` (optional) sees each argmax map on the device."""

    from harness.engine.progress import ProgressLines
    from harness.engine.rows import IndexShard, LedgerSink, gather_rows

    model = getattr(model, "module", model)
    model.eval()
    dataset = loader.dataset.dataset if isinstance(loader.dataset, WithGroundTruth) else loader.dataset
    sink = sink or LedgerSink(dataset, IndexShard(list(range(len(dataset)))))
    device = next(model.parameters()).device
    batch_size = batch_size or default_batch_size(device)
    num_classes, ignore, reduce_zero = len(dataset.CLASSES), dataset.ignore_index, dataset.reduce_zero_label
    pending: list[tuple[int, int, torch.Tensor]] = []

    def to_host():
        counts = torch.stack([c for _, _, c in pending]).cpu().numpy()
        for (index, pixels, _), (inter, pred, label) in zip(pending, counts):
            sink.add(index, pixels, (inter, pred + label - inter, pred, label))
        pending.clear()

    bar = ProgressLines("eval", len(loader) * info["world_size"]) if info["rank"] == 0 else None
    start = time.perf_counter()
    try:
        for sample, pred in predictions(model, loader, batch_size, precision, device):
            if on_prediction is not None:
                on_prediction(sample.index, pred)
            gt = sample.gt.to(device, non_blocking=True)
            pending.append((sample.index, gt.numel(), area_histograms(pred, gt, num_classes, ignore, reduce_zero)))
            if len(pending) >= HIST_FLUSH or sink.due(len(pending)):
                to_host()
            if bar is not None:
                bar.update(info["world_size"])
            sink.check_stop()
    finally:
        if pending:
            to_host()
    rows = gather_rows(sink.rows, info, tmpdir)
    return rows, time.perf_counter() - start
