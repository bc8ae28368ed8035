"""A dataset's folder layout, as its dataset.toml describes it, and the data root's per-file manifest.

The data root is the folder mmseg's configs call `data_root` (e.g. …/ADEChallengeData2016): per split it holds
an images folder and an annotations folder (ADE20K: images/training/*.jpg and annotations/training/*.png) whose
files pair by name. `check_layout` proves the layout (counts, pairing, single-channel uint8 labels in the
dataset's range, matching sizes); the label check reads each image's header only (fast: what `repro prepare`
does); with decode=True (`repro prepare --verify`) it decodes every image and annotation fully, so a file whose
header is intact and whose body is broken is found. `write_manifest` records every file's size and sha256 in
<root>/repro_manifest.json (written atomically); `check_manifest` later finds any missing, extra or changed file,
quickly (sizes) or fully (hashes). Every function that needs the layout takes `dataset` (a registry Dataset, a
name, or None for ADE20K).
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
from harness.fetch.pool import chunk_results
from harness.registry import datasets
from harness.registry.datasets import Dataset

MANIFEST = "repro_manifest.json"
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


def counts_fix(found: dict[str, int], fix: str, dataset: Dataset | str | None = None) -> str:
    """The fix for a layout whose only fault may be its image counts: say how to accept them."""
    ds = datasets.of(dataset)
    if len(found) < len(ds.splits):
        return fix
    train, val = found[ds.train_split], found[ds.val_split]
    return (f"{fix}; if this archive is meant to hold {train} {ds.train_split} / {val} {ds.val_split} images, "
            f"pass --counts {train},{val}")


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
                 progress: bool = True, where: str | None = None, dataset: Dataset | str | None = None,
                 decode: bool = False) -> dict[str, int]:
    """Raise ReproError naming the offending files unless root is a complete dataset in `dataset`'s format.

    counts: the expected number of images per split (default: the published ones, ADE20K's 20,210 / 2,000).
    where: what the error names instead of root (e.g. the archive, when root is a staging folder).
    decode: decode every image fully (PIL's load()), not just its header; annotations are always decoded.
    Returns the image count per split.
    """
    ds = datasets.of(dataset)
    fix = fix or f"run `repro prepare {ds.id}` again"
    pairs, found = check_names(list_files(root), counts, fix, where or root, ds)
    if check_labels:
        facts = pair_facts(root, pairs, ds.raw_ignored, decode, progress)
        check_pairs(pairs, facts, fix, where or root, ds)
    return found


CHUNK = 64                  # pairs per task of pair_facts' worker processes
MAX_WORKERS = 8


def workers() -> int:
    """Worker processes for per-file work: one per CPU this process may use, at most MAX_WORKERS."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:
        cpus = os.cpu_count() or 1
    return max(1, min(MAX_WORKERS, cpus))


def _pair_facts_chunk(task: tuple[str, list[tuple[str, str]], int, bool]) -> dict[str, tuple]:
    root, pairs, ignored, decode = task
    facts = {}
    for img_rel, ann_rel in pairs:
        facts[img_rel] = image_facts(Path(root) / img_rel, decode)
        facts[ann_rel] = annotation_facts(Path(root) / ann_rel, ignored)
    return facts


def pair_facts(root: Path, pairs: list[tuple[str, str]], ignored: int, decode: bool = False,
               progress: bool = True, processes: int | None = None) -> dict[str, tuple]:
    """The label-check facts of every (image, annotation) pair under root, over worker processes when there are
    many (decoding 22,000 JPEGs is a minute of one CPU)."""
    tasks = [(str(root), pairs[i:i + CHUNK], ignored, decode) for i in range(0, len(pairs), CHUNK)]
    processes = processes or workers()
    bar = None
    if progress and len(pairs) > 500:
        from harness.console import bar as progress_bar
        bar = progress_bar(len(pairs), "decoding images" if decode else "checking annotations", unit="files")
    facts: dict[str, tuple] = {}
    try:
        with chunk_results(_pair_facts_chunk, tasks, processes) as results:
            for chunk in results:
                facts.update(chunk)
                if bar is not None:
                    bar.update(len(chunk) // 2)
    finally:
        if bar is not None:
            bar.close()
    return facts


def check_names(paths: list[str], counts: dict[str, int] | None, fix: str, where: Path | str,
                dataset: Dataset | str | None = None) -> tuple[list[tuple[str, str]], dict[str, int]]:
    """The layout from file names alone (relative to the data root): folders, names, pairing, counts.
    Raises ReproError naming the offending files; returns the (image, annotation) pairs and the count per split."""
    ds = datasets.of(dataset)
    counts = ds.counts if counts is None else counts
    img_ext, ann_ext = ds.image_suffix, ds.annotation_suffix
    digits = "N" * ds.digits
    problems: list[Problem] = []
    pairs: list[tuple[str, str]] = []
    found: dict[str, int] = {}
    miscounted = False
    for split in ds.splits:
        img_dir, ann_dir = f"{split.images}/", f"{split.annotations}/"
        images = {p[len(img_dir):]: p for p in paths if p.startswith(img_dir)}
        annotations = {p[len(ann_dir):]: p for p in paths if p.startswith(ann_dir)}
        missing = [Problem(d, "folder missing") for d, entries in ((img_dir, images), (ann_dir, annotations))
                   if not entries]
        if missing:
            problems += missing
            continue
        stem_of = re.compile(re.escape(split.prefix) + rf"\d{{{ds.digits}}}")
        image_stems = {name[:-len(img_ext)] for name in images if name.endswith(img_ext)}
        annotation_stems = {name[:-len(ann_ext)] for name in annotations if name.endswith(ann_ext)}
        for name, rel in sorted(images.items()):
            stem = name[:-len(img_ext)]
            if not name.endswith(img_ext) or not stem_of.fullmatch(stem):
                problems.append(Problem(rel, f"unexpected file (expected {split.prefix}{digits}{img_ext})"))
            elif stem not in annotation_stems:
                problems.append(Problem(rel, f"no annotation {ann_dir}{stem}{ann_ext}"))
            else:
                pairs.append((rel, f"{ann_dir}{stem}{ann_ext}"))
        for name, rel in sorted(annotations.items()):
            stem = name[:-len(ann_ext)]
            if not name.endswith(ann_ext) or not stem_of.fullmatch(stem):
                problems.append(Problem(rel, f"unexpected file (expected {split.prefix}{digits}{ann_ext})"))
            elif stem not in image_stems:
                problems.append(Problem(rel, f"annotation without an image {img_dir}{stem}{img_ext}"))
        found[split.name] = len(image_stems)
        if split.name in counts and found[split.name] != counts[split.name]:
            problems.append(Problem(img_dir, f"{found[split.name]} images, expected {counts[split.name]}"))
            miscounted = True
    if problems:
        _raise(where, problems, counts_fix(found, fix, ds) if miscounted else fix, f"{ds.title} layout check failed")
    return pairs, found


# What the label check needs of one file, from its path or its bytes (so extraction can check as it writes):
# an image: ("image", format, size) or ("unreadable", message); an annotation: ("annotation", mode, size, ndim,
# uint8, largest label other than the raw value that marks ignored pixels) or ("unreadable", message).

def image_facts(src: Path | bytes, decode: bool = False) -> tuple:
    """From the header only (a JPEG's frame header is read without PIL), or with decode=True from the whole
    image, decoded: a truncated or broken body is then ("unreadable", why)."""
    if not decode and isinstance(src, bytes) and (size := jpeg_size(src)):
        return ("image", "JPEG", size)
    from PIL import Image

    try:
        with Image.open(_stream(src)) as img:
            if decode:
                img.load()
            return ("image", img.format, img.size)
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        return ("unreadable", str(exc))


_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}


def jpeg_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from a JPEG's frame header, walking the marker segments; None if it is not that simple
    (PIL then decides). Ten times cheaper than PIL's header parsing, which matters over 22,000 images."""
    if data[:2] != b"\xff\xd8":
        return None
    i, n = 2, len(data)
    while i + 9 < n:
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker == 0xFF:                  # fill byte
            i += 1
            continue
        length = int.from_bytes(data[i + 2:i + 4], "big")
        if marker in _SOF:
            height, width = int.from_bytes(data[i + 5:i + 7], "big"), int.from_bytes(data[i + 7:i + 9], "big")
            return (width, height) if width and height else None
        if marker == 0xDA or length < 2:    # scan data before any frame header: not a JPEG we can read
            return None
        i += 2 + length
    return None


def annotation_facts(src: Path | bytes, ignored: int = 0) -> tuple:
    """ignored: the dataset's raw value for pixels the metric skips (Dataset.raw_ignored; ADE20K's 0)."""
    import numpy as np
    from PIL import Image

    try:
        with Image.open(_stream(src), formats=["PNG"] if isinstance(src, bytes) else None) as ann:
            ann.load()
            mode, size, labels = ann.mode, ann.size, np.asarray(ann)
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        return ("unreadable", str(exc))
    top = int(labels.max()) if labels.size and labels.dtype == np.uint8 else 0
    if top == ignored and ignored != 0:      # the mask costs a pass: only when the largest value is the ignored one
        rest = labels[labels != ignored]
        top = int(rest.max()) if rest.size else 0
    return ("annotation", mode, size, labels.shape, labels.dtype == np.uint8, top)


def _stream(src: Path | bytes):
    import io
    return io.BytesIO(src) if isinstance(src, bytes) else src


def label_range(dataset: Dataset | str | None = None) -> str:
    """The raw values an annotation may hold, as the error names them: ADE20K's "0..150"."""
    ds = datasets.of(dataset)
    if ds.reduce_zero_label:
        return f"0..{ds.num_classes}"
    return f"0..{ds.num_classes - 1} and {ds.ignore_index}"


def check_pairs(pairs: list[tuple[str, str]], facts: dict[str, tuple], fix: str, where: Path | str,
                dataset: Dataset | str | None = None) -> None:
    """Raise ReproError naming the first bad pairs: unreadable files, labels not single-channel uint8 in the
    dataset's range (ADE20K: 0..150), an annotation of another size than its image. `facts` must come from
    annotation_facts with the dataset's raw_ignored."""
    ds = datasets.of(dataset)
    top_label = ds.raw_labels[-1]
    problems: list[Problem] = []
    for img_rel, ann_rel in pairs:
        img, ann = facts[img_rel], facts[ann_rel]
        if img[0] == "unreadable":
            problems.append(Problem(img_rel, f"unreadable image ({img[1]})"))
            continue
        if ann[0] == "unreadable":
            problems.append(Problem(ann_rel, f"unreadable annotation ({ann[1]})"))
            continue
        _, img_format, img_size = img
        _, mode, ann_size, shape, uint8, top = ann
        if img_format is None:
            problems.append(Problem(img_rel, "not an image"))
        if mode not in ("L", "P") or len(shape) != 2 or not uint8:
            problems.append(Problem(ann_rel, f"annotation must be single-channel uint8, found mode {mode} "
                                             f"shape {shape}"))
            continue
        if top > top_label:
            problems.append(Problem(ann_rel, f"label value {top} outside {label_range(ds)}"))
        if tuple(ann_size) != tuple(img_size):
            problems.append(Problem(ann_rel, f"size {tuple(ann_size)} differs from its image's {tuple(img_size)}"))
    if problems:
        _raise(where, problems, fix, f"{ds.title} annotation check failed")


# ----------------------------------------------------------------------------------------------- manifest

def files_digest(files: dict[str, list]) -> str:
    """sha256 over the sorted (path, size, sha256) lines: names the dataset's content, nothing else."""
    h = hashlib.sha256()
    for path in sorted(files):
        size, digest = files[path]
        h.update(f"{path}\t{size}\t{digest}\n".encode())
    return h.hexdigest()


def write_manifest(root: Path, origin: dict, counts: dict[str, int], progress: bool = True,
                   files: dict[str, list] | None = None, dataset: Dataset | str | None = None) -> dict:
    """Write <root>/repro_manifest.json atomically and return the manifest. files: {path: [size, sha256]} of
    every file under root when the caller hashed them as it wrote them; else every file is hashed here."""
    if files is None:
        paths = list_files(root)
        iterator = paths
        if progress and len(paths) > 500:
            from harness.console import track
            iterator = track(paths, "hashing files", unit="files")
        files = {}
        for rel in iterator:
            p = root / rel
            files[rel] = [p.stat().st_size, sha256(p, progress=False)]
    manifest = {
        "format": 1,
        "dataset": datasets.of(dataset).id,
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


def read_manifest(root: Path, fix: str = "", dataset: str = datasets.DEFAULT) -> dict:
    """dataset: the id the messages name when root holds no readable manifest to say which it is."""
    path = root / MANIFEST
    try:
        manifest = json.loads(path.read_text())
        manifest["files"], manifest["files_sha256"]
    except FileNotFoundError:
        raise ReproError(f"{root} has no manifest {MANIFEST}: it was not prepared by `repro prepare {dataset}`",
                         fix=fix or f"run `repro prepare {dataset}`") from None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ReproError(f"{path} is unreadable ({exc})", fix=fix or f"run `repro prepare {dataset}` again") from None
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
        from harness.console import track
        iterator = track(common, "verifying files", unit="files")
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
        dataset = manifest.get("dataset") or datasets.DEFAULT
        _raise(root, problems, fix or f"run `repro prepare {dataset}` again", "dataset differs from its manifest")
    return manifest
