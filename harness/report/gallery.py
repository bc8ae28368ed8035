"""The report's gallery: the val images the engine chose by their own mIoU (harness/engine/gallery.py), each as
image | ground truth | prediction | error map thumbnails, embedded as data URIs (JPEG for the photo, PNG for the
label maps, which keep their palette), with the names of the largest regions."""
from __future__ import annotations

import base64
import io
import json
from pathlib import Path

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


def load_gallery(record: dict, run_dir: Path) -> list[dict] | None:
    """The gallery rows of a run (None when its engine wrote none, e.g. an imported result)."""
    import numpy as np
    from PIL import Image

    rel = (record.get("artifacts") or {}).get("gallery")
    path = Path(run_dir) / rel if rel else None
    if path is None or not path.is_file():
        return None
    document = json.loads(path.read_text())
    rows = []
    for entry in document.get("chosen", []):
        files = {key: path.parent / name for key, name in entry["files"].items()}
        if not all(f.is_file() for f in files.values()):
            continue
        with Image.open(files["image"]) as image, Image.open(files["gt"]) as gt, Image.open(files["pred"]) as pred:
            gt_ids, pred_ids = np.asarray(gt), np.asarray(pred)
            valid = gt_ids != IGNORE
            panels = [("image", _uri(_thumb(image.convert("RGB"), "LANCZOS"), "JPEG")),
                      ("ground truth", _uri(_thumb(gt, "NEAREST"), "PNG")),
                      ("prediction", _uri(_thumb(pred, "NEAREST"), "PNG")),
                      ("error map", _uri(_thumb(error_map(gt_ids, pred_ids), "NEAREST"), "PNG"))]
        rows.append({**entry, "panels": panels,
                     "correct": float((gt_ids == pred_ids)[valid].mean() * 100) if valid.any() else None})
    return rows or None


def gallery_size(record: dict, run_dir: Path) -> int | None:
    """How many val images the gallery's scores cover."""
    rel = (record.get("artifacts") or {}).get("gallery")
    path = Path(run_dir) / rel if rel else None
    if path is None or not path.is_file():
        return None
    return len(json.loads(path.read_text()).get("images", []))
