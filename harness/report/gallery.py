"""The report's gallery: the val images the engine chose by their own mIoU (harness/engine/gallery.py), each as
image | ground truth | prediction | error map thumbnails, embedded as data URIs (JPEG for the photo, PNG for the
label maps, which keep their palette), with the names of the largest regions."""
from __future__ import annotations

import base64
import io
import json
from pathlib import Path

from harness.report.files import Skipped, open_image, run_file

THUMB_WIDTH = 240
IGNORE = 255
CORRECT, WRONG, IGNORED = (46, 125, 50), (198, 40, 40), (30, 30, 30)


def _uri(image, fmt: str) -> str:
    buffer = io.BytesIO()
    if fmt == "JPEG":
        image.save(buffer, format="JPEG", quality=80, optimize=True)
    else:
        image.save(buffer, format="PNG", optimize=True)
    return f"data:image/{fmt.lower()};base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _thumb(image, resample):
    from PIL import Image
    if image.width <= THUMB_WIDTH:
        return image
    height = max(1, round(image.height * THUMB_WIDTH / image.width))
    return image.resize((THUMB_WIDTH, height), getattr(Image, resample))


def error_map(gt, pred):
    """Green where the prediction is right, red where it is wrong, near-black where the ground truth is ignored."""
    import numpy as np
    from PIL import Image
    out = np.empty(gt.shape + (3,), dtype=np.uint8)
    out[...] = WRONG
    out[gt == pred] = CORRECT
    out[gt == IGNORE] = IGNORED
    return Image.fromarray(out, mode="RGB")


MAX_GALLERY_JSON = 32 << 20   # bytes: the engine's gallery.json of 2,000 images is well under 1 MB


def _document(record: dict, run_dir: Path) -> dict | None:
    """The run's gallery.json (None when its engine wrote none, e.g. an imported result); Skipped when it is not
    a file of the run folder or not the engine's JSON object."""
    rel = (record.get("artifacts") or {}).get("gallery")
    if rel is None:
        return None
    path = run_file(run_dir, rel, "gallery")
    if path.stat().st_size > MAX_GALLERY_JSON:
        raise Skipped(f"gallery {rel} skipped: {path.stat().st_size} bytes, more than the engine ever writes")
    try:
        document = json.loads(path.read_text(errors="replace"))
    except (OSError, ValueError) as exc:
        raise Skipped(f"gallery {rel} skipped: not JSON ({exc.__class__.__name__})") from None
    if not isinstance(document, dict):
        raise Skipped(f"gallery {rel} skipped: not a JSON object")
    return {"path": path, **document}


def _facts(entry: dict) -> dict:
    """The fields the page shows, each of the type it is drawn as (anything else left out)."""
    def number(value):
        return value if isinstance(value, (int, float)) and not isinstance(value, bool) else None

    def regions(value):
        return [{"class": str(r.get("class")), "share": number(r.get("share")) or 0.0}
                for r in value if isinstance(r, dict)] if isinstance(value, list) else []

    return {"label": str(entry.get("label", "")), "image": str(entry.get("image", "")),
            "mIoU": number(entry.get("mIoU")), "aAcc": number(entry.get("aAcc")),
            "regions_gt": regions(entry.get("regions_gt")), "regions_pred": regions(entry.get("regions_pred"))}


def _row(entry: dict, folder: Path, run_dir: Path) -> dict:
    import numpy as np

    names = entry.get("files")
    if not isinstance(names, dict) or not all(k in names for k in ("image", "gt", "pred")):
        raise Skipped(f"gallery entry {_facts(entry)['label']!r} skipped: it names no image, gt and pred files")
    files = {}
    for key in ("image", "gt", "pred"):
        name = names[key]
        relative = str(Path(folder.relative_to(Path(run_dir).resolve())) / name) if isinstance(name, str) else name
        files[key] = run_file(run_dir, relative, f"gallery {key}")
    with open_image(files["image"], f"gallery image {names['image']}") as image, \
            open_image(files["gt"], f"gallery gt {names['gt']}") as gt, \
            open_image(files["pred"], f"gallery pred {names['pred']}") as pred:
        if gt.mode not in ("L", "P") or pred.mode not in ("L", "P"):
            raise Skipped(f"gallery gt {names['gt']} and pred {names['pred']} skipped: not label maps "
                          f"(modes {gt.mode}, {pred.mode}; the engine writes palette PNGs)")
        gt_ids, pred_ids = np.asarray(gt), np.asarray(pred)
        if gt_ids.ndim != 2 or gt_ids.shape != pred_ids.shape:
            raise Skipped(f"gallery gt {names['gt']} and pred {names['pred']} skipped: not two label maps of one size")
        valid = gt_ids != IGNORE
        panels = [("image", _uri(_thumb(image.convert("RGB"), "LANCZOS"), "JPEG")),
                  ("ground truth", _uri(_thumb(gt, "NEAREST"), "PNG")),
                  ("prediction", _uri(_thumb(pred, "NEAREST"), "PNG")),
                  ("error map", _uri(_thumb(error_map(gt_ids, pred_ids), "NEAREST"), "PNG"))]
    return {**_facts(entry), "panels": panels,
            "correct": float((gt_ids == pred_ids)[valid].mean() * 100) if valid.any() else None}


def load_gallery(record: dict, run_dir: Path) -> tuple[list[dict] | None, list[str]]:
    """(the gallery rows of a run or None, notes on the files skipped): only pictures of the run folder, each a
    decodable image of sane size (harness/report/files.py)."""
    try:
        document = _document(record, run_dir)
    except Skipped as skipped:
        return None, [str(skipped)]
    if document is None:
        return None, []
    rows, notes = [], []
    chosen = document.get("chosen")
    for entry in chosen if isinstance(chosen, list) else []:
        if not isinstance(entry, dict):
            notes.append("gallery entry skipped: not a JSON object")
            continue
        try:
            rows.append(_row(entry, document["path"].parent, run_dir))
        except Skipped as skipped:
            notes.append(str(skipped))
    return rows or None, notes


def gallery_size(record: dict, run_dir: Path) -> int | None:
    """How many val images the gallery's scores cover."""
    try:
        document = _document(record, run_dir)
    except Skipped:
        return None
    images = (document or {}).get("images")
    return len(images) if isinstance(images, list) else None
