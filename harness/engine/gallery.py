"""Pictures of what the model sees, written by rank 0 after an evaluation, for the report and for `--show-dir`.

- `gallery/gallery.json`: every val image's own mIoU (from the per-image area histograms the metrics are made
  of, so no extra inference), and a handful of images chosen deterministically by it (the worst, the quartiles,
  the median, the best), each with its largest regions named;
- `gallery/<k>_image.jpg`, `<k>_gt.png`, `<k>_pred.png` for those: the image (at most MAX_SIDE pixels) and the
  ground truth and prediction as palette PNGs (pixel value = class index, 255 = ignored, ADE20K's colours).
  The chosen images' predictions are made again with the model (a few images, rank 0, after the loop) with the
  fast path's exact aug_test;
- `--show-dir DIR [--show-limit N]`: every predicted map (or the first N in dataset order) as a palette PNG named
  like its image, written by the rank that predicts it.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

GALLERY_DIR = "gallery"
GALLERY_FILE = "gallery.json"
CHOICE = (("worst", 0.0), ("lower quartile", 0.25), ("median", 0.5), ("upper quartile", 0.75), ("best", 1.0))
MAX_SIDE = 512
IGNORE = 255


def per_image_scores(results: list) -> list[dict]:
    """Per image: mIoU over the classes in its ground truth or prediction, and pixel accuracy, in percent
    (None without valid pixels). `results` are pre_eval's (intersect, union, pred, label) area histograms."""
    scores = []
    for item in results:
        inter, union, _, label = (np.asarray(_numpy(a), dtype=np.float64) for a in item[:4])
        present = union > 0
        miou = float(np.mean(inter[present] / union[present]) * 100) if present.any() else None
        acc = float(inter.sum() / label.sum() * 100) if label.sum() > 0 else None
        scores.append({"mIoU": miou, "aAcc": acc})
    return scores


def _numpy(value):
    return value.cpu().numpy() if hasattr(value, "cpu") else value


def choose(scores: list[dict]) -> list[tuple[str, int]]:
    """(label, image index) of the worst, quartile, median and best images by per-image mIoU; ties by index."""
    ranked = sorted((s["mIoU"], i) for i, s in enumerate(scores) if s["mIoU"] is not None)
    chosen, seen = [], set()
    for label, q in CHOICE:
        if not ranked:
            break
        index = ranked[round(q * (len(ranked) - 1))][1]
        if index not in seen:
            seen.add(index)
            chosen.append((label, index))
    return chosen


def class_map(gt: np.ndarray, reduce_zero_label: bool) -> np.ndarray:
    """The annotation as class indices (0..149) with IGNORE, as mmseg's intersect_and_union reads it."""
    gt = gt.astype(np.int64)
    if reduce_zero_label:
        gt = np.where(gt == 0, IGNORE + 1, gt) - 1
    return np.where((gt < 0) | (gt >= IGNORE), IGNORE, gt).astype(np.uint8)


def largest_regions(classes: np.ndarray, names, k: int = 3) -> list[dict]:
    """The k classes covering most of the map, with their share of its valid pixels."""
    valid = classes[classes != IGNORE]
    if valid.size == 0:
        return []
    counts = np.bincount(valid.ravel(), minlength=len(names))
    top = [int(c) for c in np.argsort(-counts, kind="stable")[:k] if counts[c] > 0]
    return [{"class": names[c].strip(), "share": round(float(counts[c] / valid.size), 4)} for c in top]


def palette_png(classes: np.ndarray, palette, path: Path) -> None:
    """A class-index map as a palette PNG: viewers show ADE20K's colours, readers get the indices back."""
    from PIL import Image
    flat = np.zeros((256, 3), dtype=np.uint8)
    flat[:len(palette)] = np.asarray(palette, dtype=np.uint8)[:256]
    image = Image.fromarray(classes.astype(np.uint8), mode="P")
    image.putpalette(flat.ravel().tolist())
    tmp = path.with_name(f".{path.name}.tmp")
    image.save(tmp, format="PNG", optimize=True)
    tmp.replace(path)


def _shrink(image, resample):
    from PIL import Image
    scale = MAX_SIDE / max(image.size)
    if scale >= 1:
        return image
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    return image.resize(size, getattr(Image, resample))


def predict_images(model, dataset, indices: list[int], precision: str) -> dict[int, np.ndarray]:
    """Argmax maps of a few images with the fast path's exact aug_test (harness/engine/evaluate_fast.py)."""
    import torch

    from harness.engine.evaluate_fast import WithGroundTruth, default_batch_size, predictions
    model = getattr(model, "module", model)
    model.eval()
    device = next(model.parameters()).device
    samples = [WithGroundTruth(dataset, with_gt=False)[i] for i in indices]
    with torch.no_grad():
        return {s.index: p.to("cpu", torch.uint8).numpy()
                for s, p in predictions(model, samples, default_batch_size(device), precision, device)}


def write_gallery(model, dataset, results: list, run_dir: Path, precision: str = "fp32") -> str:
    """Write gallery/ (see the module docstring); return gallery.json's path relative to run_dir."""
    from PIL import Image
    out = Path(run_dir) / GALLERY_DIR
    out.mkdir(parents=True, exist_ok=True)
    names = [str(n) for n in dataset.CLASSES]
    scores = per_image_scores(results)
    chosen = choose(scores)
    preds = predict_images(model, dataset, [i for _, i in chosen], precision)
    entries = []
    for k, (label, index) in enumerate(chosen):
        info = dataset.img_infos[index]
        gt = class_map(np.asarray(dataset.get_gt_seg_map_by_idx(index)), dataset.reduce_zero_label)
        pred = preds[index]
        files = {"image": f"{k}_image.jpg", "gt": f"{k}_gt.png", "pred": f"{k}_pred.png"}
        with Image.open(Path(dataset.img_dir) / info["filename"]) as img:
            _shrink(img.convert("RGB"), "LANCZOS").save(out / files["image"], format="JPEG", quality=85)
        small = [_shrink(Image.fromarray(m), "NEAREST") for m in (gt, pred)]
        palette_png(np.asarray(small[0]), dataset.PALETTE, out / files["gt"])
        palette_png(np.asarray(small[1]), dataset.PALETTE, out / files["pred"])
        entries.append({"label": label, "index": index, "image": info["filename"], **scores[index],
                        "regions_gt": largest_regions(gt, names), "regions_pred": largest_regions(pred, names),
                        "files": files})
    document = {"images": [{"index": i, "image": dataset.img_infos[i]["filename"], **s} for i, s in enumerate(scores)],
                "chosen": entries, "note": "per-image mIoU: mean IoU over the classes in the image's ground truth "
                                           "or prediction; the chosen images are the worst, quartiles, median, best"}
    tmp = out / f".{GALLERY_FILE}.tmp"
    tmp.write_text(json.dumps(document, indent=1))
    tmp.replace(out / GALLERY_FILE)
    return f"{GALLERY_DIR}/{GALLERY_FILE}"


class ShowDir:
    """`--show-dir`: each predicted map as `<image stem>.png` (palette) in DIR, the first `limit` images or all."""

    def __init__(self, directory: Path, dataset, limit: int | None = None):
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.dataset, self.limit = dataset, limit
        self.written = 0

    def wanted(self, index: int) -> bool:
        return self.limit is None or index < self.limit

    def __call__(self, index: int, pred) -> None:
        if not self.wanted(index):
            return
        classes = _numpy(pred).astype(np.uint8)
        name = Path(self.dataset.img_infos[index]["filename"]).with_suffix(".png").name
        palette_png(classes, self.dataset.PALETTE, self.directory / name)
        self.written += 1
