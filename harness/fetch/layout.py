"""The ADE20K folder layout and its per-file manifest.

The data root is the folder mmseg's configs call `data_root` (…/ADEChallengeData2016): it holds
images/{training,validation}/*.jpg and annotations/{training,validation}/*.png with the same basenames.
`check_layout` proves the layout (counts, pairing, single-channel uint8 labels in 0..150, matching sizes);
`write_manifest` records every file's size and sha256 in <root>/repro_manifest.json (written atomically);
`check_manifest` later finds any missing, extra or changed file, quickly (sizes) or fully (hashes).
"""
from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

from harness.errors import ReproError
from harness.fetch.hashing import sha256

MANIFEST = "repro_manifest.json"
SPLITS = ("training", "validation")
PREFIX = {"training": "ADE_train_", "validation": "ADE_val_"}
NUM_CLASSES = 150           # raw labels 1..150 are classes, 0 is "other" (ignored)
PUBLISHED_COUNTS = {"training": 20210, "validation": 2000}
SHOWN = 3                   # problems named in one error line


@dataclass
class Problem:
    path: str               # relative to the data root
    what: str

    def __str__(self) -> str:
        return f"{self.path}: {self.what}"


def _raise(root: Path | str, problems: list[Problem], fix: str, title: str) -> None:
    shown = "; ".join(str(p) for p in problems[:SHOWN])
    more = f" (and {len(problems) - SHOWN} more)" if len(problems) > SHOWN else ""
    raise ReproError(f"{title} in {root}: {shown}{more}", fix=fix)


def counts_fix(found: dict[str, int], fix: str) -> str:
    """The fix for a layout whose only fault may be its image counts: say how to accept them."""
    if len(found) < len(SPLITS):
        return fix
    return (f"{fix}; if this archive is meant to hold {found['training']} training / {found['validation']} "
            f"validation images, pass --counts {found['training']},{found['validation']}")


def list_files(root: Path) -> list[str]:
    """Every regular file under root, relative, '/'-separated, sorted; the manifest itself excluded."""
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        rel = Path(dirpath).relative_to(root)
        for name in filenames:
            path = (rel / name).as_posix()
            if path != MANIFEST and not path.startswith(MANIFEST + "."):
                found.append(path)
    return sorted(found)


def check_layout(root: Path, counts: dict[str, int] | None = None, fix: str = "", check_labels: bool = True,
                 progress: bool = True, where: str | None = None) -> dict[str, int]:
    """Raise ReproError naming the offending files unless root is a complete ADE20K-format dataset.

    counts: the expected number of images per split (default: the published 20,210 / 2,000).
    where: what the error names instead of root (e.g. the archive, when root is a staging folder).
    Returns the image count per split.
    """
    counts = PUBLISHED_COUNTS if counts is None else counts
    fix = fix or "run `repro prepare ade20k` again"
    problems: list[Problem] = []
    pairs: list[tuple[str, str]] = []
    found: dict[str, int] = {}
    miscounted = False
    for split in SPLITS:
        img_dir, ann_dir = root / "images" / split, root / "annotations" / split
        missing = [Problem(d.relative_to(root).as_posix() + "/", "folder missing") for d in (img_dir, ann_dir)
                   if not d.is_dir()]
        if missing:
            problems += missing
            continue
        pattern = re.compile(re.escape(PREFIX[split]) + r"\d{8}\.(jpg|png)$")
        images = {p.stem: p for p in img_dir.iterdir()}
        annotations = {p.stem: p for p in ann_dir.iterdir()}
        for stem, p in sorted(images.items()):
            rel = f"images/{split}/{p.name}"
            if not p.is_file() or p.suffix != ".jpg" or not pattern.match(p.name):
                problems.append(Problem(rel, f"unexpected file (expected {PREFIX[split]}NNNNNNNN.jpg)"))
            elif stem not in annotations:
                problems.append(Problem(rel, f"no annotation annotations/{split}/{stem}.png"))
            else:
                pairs.append((rel, f"annotations/{split}/{stem}.png"))
        for stem, p in sorted(annotations.items()):
            rel = f"annotations/{split}/{p.name}"
            if not p.is_file() or p.suffix != ".png" or not pattern.match(p.name):
                problems.append(Problem(rel, f"unexpected file (expected {PREFIX[split]}NNNNNNNN.png)"))
            elif stem not in images:
                problems.append(Problem(rel, f"annotation without an image images/{split}/{stem}.jpg"))
        found[split] = sum(1 for p in images.values() if p.suffix == ".jpg")
        if split in counts and found[split] != counts[split]:
            problems.append(Problem(f"images/{split}/", f"{found[split]} images, expected {counts[split]}"))
            miscounted = True
    if problems:
        _raise(where or root, problems, counts_fix(found, fix) if miscounted else fix, "ADE20K layout check failed")
    if check_labels:
        problems = _check_pairs(root, pairs, progress)
        if problems:
            _raise(where or root, problems, fix, "ADE20K annotation check failed")
    return found


def _check_pairs(root: Path, pairs: list[tuple[str, str]], progress: bool) -> list[Problem]:
    import numpy as np
    from PIL import Image

    problems: list[Problem] = []
    iterator = pairs
    if progress and len(pairs) > 500:
        from tqdm import tqdm
        iterator = tqdm(pairs, desc="checking annotations", unit="file", leave=False)
    for img_rel, ann_rel in iterator:
        try:
            with Image.open(root / img_rel) as img:
                img_format, img_size = img.format, img.size
        except (OSError, SyntaxError, ValueError) as exc:
            problems.append(Problem(img_rel, f"unreadable image ({exc})"))
            continue
        try:
            with Image.open(root / ann_rel) as ann:
                ann.load()
                mode, ann_size, labels = ann.mode, ann.size, np.asarray(ann)
        except (OSError, SyntaxError, ValueError) as exc:
            problems.append(Problem(ann_rel, f"unreadable annotation ({exc})"))
            continue
        if img_format is None:
            problems.append(Problem(img_rel, "not an image"))
        if mode not in ("L", "P") or labels.ndim != 2 or labels.dtype != np.uint8:
            problems.append(Problem(ann_rel, f"annotation must be single-channel uint8, found mode {mode} "
                                             f"shape {labels.shape}"))
            continue
        top = int(labels.max()) if labels.size else 0
        if top > NUM_CLASSES:
            problems.append(Problem(ann_rel, f"label value {top} outside 0..{NUM_CLASSES}"))
        if ann_size != img_size:
            problems.append(Problem(ann_rel, f"size {ann_size} differs from its image's {img_size}"))
    return problems


# ----------------------------------------------------------------------------------------------- manifest

def files_digest(files: dict[str, list]) -> str:
    """sha256 over the sorted (path, size, sha256) lines: names the dataset's content, nothing else."""
    h = hashlib.sha256()
    for path in sorted(files):
        size, digest = files[path]
        h.update(f"{path}\t{size}\t{digest}\n".encode())
    return h.hexdigest()


def write_manifest(root: Path, origin: dict, counts: dict[str, int], progress: bool = True) -> dict:
    """Hash every file under root and write <root>/repro_manifest.json atomically; return the manifest."""
    paths = list_files(root)
    iterator = paths
    if progress and len(paths) > 500:
        from tqdm import tqdm
        iterator = tqdm(paths, desc="hashing files", unit="file", leave=False)
    files = {}
    for rel in iterator:
        p = root / rel
        files[rel] = [p.stat().st_size, sha256(p, progress=False)]
    manifest = {
        "format": 1,
        "dataset": "ade20k",
        "origin": origin,
        "counts": counts,
        "algorithm": "sha256",
        "files_sha256": files_digest(files),
        "files": files,
    }
    tmp = root / f"{MANIFEST}.tmp{os.getpid()}"
    tmp.write_text(json.dumps(manifest, indent=0, sort_keys=True))
    os.replace(tmp, root / MANIFEST)
    return manifest


def read_manifest(root: Path, fix: str = "") -> dict:
    path = root / MANIFEST
    try:
        manifest = json.loads(path.read_text())
        manifest["files"], manifest["files_sha256"]
    except FileNotFoundError:
        raise ReproError(f"{root} has no manifest {MANIFEST}: it was not prepared by `repro prepare ade20k`",
                         fix=fix or "run `repro prepare ade20k`") from None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ReproError(f"{path} is unreadable ({exc})", fix=fix or "run `repro prepare ade20k` again") from None
    return manifest


def manifest_problems(root: Path, manifest: dict, deep: bool, progress: bool = True) -> list[Problem]:
    """Missing, extra and changed files against the manifest; deep=True compares hashes, else sizes only."""
    recorded = manifest["files"]
    present = set(list_files(root))
    problems = [Problem(p, "missing") for p in sorted(set(recorded) - present)]
    problems += [Problem(p, "extra file, not in the manifest") for p in sorted(present - set(recorded))]
    common = sorted(present & set(recorded))
    iterator = common
    if deep and progress and len(common) > 500:
        from tqdm import tqdm
        iterator = tqdm(common, desc="verifying files", unit="file", leave=False)
    for rel in iterator:
        size, digest = recorded[rel]
        p = root / rel
        actual = p.stat().st_size
        if actual != size:
            problems.append(Problem(rel, f"changed (size {actual}, manifest {size})"))
        elif deep and sha256(p, progress=False) != digest:
            problems.append(Problem(rel, "changed (sha256 differs from the manifest)"))
    if files_digest(recorded) != manifest["files_sha256"]:      # a hand-edited manifest
        problems.append(Problem(MANIFEST, "edited: its files_sha256 does not match its file list"))
    return problems


def check_manifest(root: Path, deep: bool = True, fix: str = "", progress: bool = True) -> dict:
    """Raise ReproError naming the first missing/extra/changed files; return the manifest when all match."""
    manifest = read_manifest(root, fix)
    problems = manifest_problems(root, manifest, deep, progress)
    if problems:
        _raise(root, problems, fix or "run `repro prepare ade20k` again", "dataset differs from its manifest")
    return manifest
