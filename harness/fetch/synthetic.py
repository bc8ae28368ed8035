"""A dataset in a registered dataset's format, generated from a seed: the folders, file names, suffixes and label
encoding its dataset.toml describes (ADE20K's by default), tiny images.

Each image is a background class with a few polygons and ellipses of other classes drawn on it, and sometimes a
strip or blob of the raw value the metric ignores (ADE20K: label 0, "other"). A pixel's class is predictable from
its colour and texture: every class drawn has a fixed base colour and a stripe pattern of its own (STYLES), plus
per-pixel noise, so a small model learns the classes in a few hundred CPU iterations. Only the raw labels of the
dataset's [synthetic] table occur (ADE20K: 10 of its 150; without the table, its first ten classes).

Images have a short side of 128..160 px and aspect ratios between 3:4 and 16:10 in either orientation, so
resizing, cropping and sliding-window inference are all exercised. Every image is generated from its own
generator seeded with (seed, split, index), so the first n images are the same whatever the total.

    from harness.fetch.synthetic import generate
    root = generate(tmp_path / "ADEChallengeData2016", num_train=64, num_val=16, seed=0)
"""
from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from harness.errors import ReproError
from harness.fetch import atomic, layout, ownership
from harness.registry import datasets
from harness.registry.datasets import Dataset

# the look of the k-th label the dataset's [synthetic] table lists: (base RGB, stripe period in px, stripe angle in
# degrees). The first four suit stuff (ADE20K: wall, sky, floor, grass), the rest objects.
STYLES: tuple[tuple[tuple[int, int, int], int, int], ...] = (
    ((200, 200, 190), 0, 0),
    ((90, 160, 235), 0, 0),
    ((140, 90, 50), 9, 0),
    ((60, 170, 50), 5, 90),
    ((20, 90, 30), 4, 45),
    ((230, 60, 60), 0, 0),
    ((240, 200, 40), 7, 90),
    ((40, 40, 200), 6, 0),
    ((200, 60, 220), 4, 135),
    ((250, 140, 20), 0, 0),
)
NOISE = 12.0            # per-pixel Gaussian noise, std in intensity levels
STRIPE = 30.0           # stripe amplitude
JPEG_QUALITY = 92


def classes(dataset: Dataset | str | None = None) -> dict[int, tuple[tuple[int, int, int], int, int]]:
    """raw label -> style of every label the generator draws for the dataset, backgrounds first."""
    ds = datasets.of(dataset)
    if len(ds.synthetic_labels) > len(STYLES):
        raise ReproError(f"{ds.file}: field 'synthetic.labels' lists {len(ds.synthetic_labels)} labels; the "
                         f"generator draws at most {len(STYLES)}", fix="list fewer labels")
    return dict(zip(ds.synthetic_labels, STYLES))


def _backgrounds_objects(ds: Dataset) -> tuple[tuple[int, ...], tuple[int, ...]]:
    labels, n = ds.synthetic_labels, ds.synthetic_backgrounds
    return labels[:n], labels[n:] or labels


def _size(rng: np.random.Generator) -> tuple[int, int]:
    short = int(rng.integers(128, 161))
    aspect = float(rng.uniform(0.75, 1.6))
    long = round(short * max(aspect, 1 / aspect))
    return (long, short) if rng.random() < 0.5 else (short, long)        # (width, height)


def _polygon(rng: np.random.Generator, w: int, h: int) -> list[tuple[float, float]]:
    cx, cy = rng.uniform(0.1 * w, 0.9 * w), rng.uniform(0.1 * h, 0.9 * h)
    radius = rng.uniform(0.12, 0.35) * min(w, h)
    n = int(rng.integers(3, 8))
    angles = np.sort(rng.uniform(0, 2 * np.pi, n))
    radii = radius * rng.uniform(0.6, 1.3, n)
    return [(float(cx + r * np.cos(a)), float(cy + r * np.sin(a))) for a, r in zip(angles, radii)]


def labels_for(rng: np.random.Generator, dataset: Dataset | str | None = None) -> np.ndarray:
    """The label map of one image: background, 1..4 objects, sometimes an ignored region."""
    from PIL import Image, ImageDraw

    ds = datasets.of(dataset)
    backgrounds, objects = _backgrounds_objects(ds)
    w, h = _size(rng)
    label = Image.new("L", (w, h), int(rng.choice(backgrounds)))
    draw = ImageDraw.Draw(label)
    if rng.random() < 0.5:      # a second stuff class in the lower part, like floor under wall
        top = int(rng.uniform(0.5, 0.8) * h)
        draw.rectangle([0, top, w, h], fill=int(rng.choice(backgrounds)))
    for _ in range(int(rng.integers(1, 5))):
        cls = int(rng.choice(objects))
        if rng.random() < 0.5:
            draw.polygon(_polygon(rng, w, h), fill=cls)
        else:
            x0, y0 = rng.uniform(0, 0.8 * w), rng.uniform(0, 0.8 * h)
            ew, eh = rng.uniform(0.15, 0.45) * w, rng.uniform(0.15, 0.45) * h
            draw.ellipse([x0, y0, min(w - 1, x0 + ew), min(h - 1, y0 + eh)], fill=cls)
    if rng.random() < 0.4:      # the ignored value (ADE20K's 0: "other objects"), not evaluated
        draw.polygon(_polygon(rng, w, h)[:4], fill=ds.raw_ignored)
    return np.asarray(label, dtype=np.uint8)


def render(labels: np.ndarray, rng: np.random.Generator, dataset: Dataset | str | None = None) -> np.ndarray:
    """The RGB image for a label map: class colour + class stripes + noise; the ignored value gets random grey."""
    ds = datasets.of(dataset)
    h, w = labels.shape
    base = np.zeros((256, 3), np.float32)
    period = np.zeros(256, np.float32)
    angle = np.zeros(256, np.float32)
    for cls, (rgb, p, a) in classes(ds).items():
        base[cls], period[cls], angle[cls] = rgb, p, np.deg2rad(a)
    base[ds.raw_ignored] = rng.uniform(60, 200)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    p, a = period[labels], angle[labels]
    phase = (xx * np.cos(a) + yy * np.sin(a)) / np.where(p > 0, p, 1.0)
    stripes = np.where(p > 0, STRIPE * np.sign(np.sin(2 * np.pi * phase)), 0.0)
    image = base[labels] + stripes[..., None] + rng.normal(0.0, NOISE, (h, w, 3))
    image *= rng.uniform(0.85, 1.15)                                   # per-image brightness
    return np.clip(image, 0, 255).astype(np.uint8)


def write_split(root: Path, split: str, n: int, seed: int, dataset: Dataset | str | None = None) -> None:
    from PIL import Image

    ds = datasets.of(dataset)
    spec = ds.split(split)
    img_dir, ann_dir = root / spec.images, root / spec.annotations
    img_dir.mkdir(parents=True, exist_ok=True)
    ann_dir.mkdir(parents=True, exist_ok=True)
    split_id = ds.splits.index(spec)
    for i in range(1, n + 1):
        rng = np.random.default_rng([seed, split_id, i])
        labels = labels_for(rng, ds)
        stem = f"{spec.prefix}{i:0{ds.digits}d}"
        # PIL picks the file format from the suffix the dataset names
        Image.fromarray(render(labels, rng, ds), "RGB").save(img_dir / f"{stem}{ds.image_suffix}", quality=JPEG_QUALITY)
        Image.fromarray(labels, "L").save(ann_dir / f"{stem}{ds.annotation_suffix}")


def origin(num_train: int, num_val: int, seed: int) -> dict:
    return {"kind": "synthetic", "generator": "harness.fetch.synthetic", "version": 1,
            "num_train": num_train, "num_val": num_val, "seed": seed}


def generate(root: Path, num_train: int, num_val: int | None = None, seed: int = 0, force: bool = False,
             progress: bool = False, dataset: Dataset | str | None = None) -> Path:
    """Write a synthetic dataset in `dataset`'s format (default ADE20K) at root (the data root).

    num_val defaults to max(1, num_train // 4). The folder is built beside root and renamed into place only
    when complete, layout-checked and its manifest written. If root already holds the same synthetic dataset
    (same counts, seed and generator version, files unchanged), it is kept as is; another synthetic dataset is
    replaced only with force=True; a real dataset or a folder the harness did not make never. Returns root.
    """
    ds = datasets.of(dataset)
    classes(ds)                 # a [synthetic] table the generator cannot draw fails before anything is written
    root = Path(root).expanduser().resolve()
    num_val = max(1, num_train // 4) if num_val is None else num_val
    if num_train < 1 or num_val < 1:
        raise ReproError(f"a synthetic dataset needs at least one image per split (asked {num_train} training, "
                         f"{num_val} validation)", fix="pass --synthetic N and --val N of at least 1")
    wanted = origin(num_train, num_val, seed)
    with ownership.root_lock(root):
        atomic.clean_stale(root)
        if root.exists() and not atomic.is_empty_dir(root):
            if _is(root, wanted, ds) and not force:
                return root
            ownership.check_replaceable(root, "synthetic", ds.id)
            if not force:
                raise ReproError(f"{root} already holds another dataset than the synthetic one asked for "
                                 f"({num_train} training / {num_val} validation, seed {seed})",
                                 fix="choose another --data-root, or pass --force to replace it")
        _build(ds, root, wanted, force, progress)
    return root


def _is(root: Path, wanted: dict, ds: Dataset) -> bool:
    """root holds the synthetic dataset `wanted` of ds (same counts, seed and generator version, files unchanged)."""
    try:
        manifest = layout.read_manifest(root)
    except ReproError:
        return False
    return (manifest.get("origin") == wanted and manifest.get("dataset") == ds.id
            and not layout.manifest_problems(root, manifest, deep=False))


def _build(ds: Dataset, root: Path, wanted: dict, force: bool, progress: bool) -> None:
    tmp = atomic.staging_dir(root)
    try:
        counts = {ds.train_split: wanted["num_train"], ds.val_split: wanted["num_val"]}
        for split, n in counts.items():
            write_split(tmp, split, n, wanted["seed"], ds)
        layout.check_layout(tmp, counts, progress=progress, where=f"the generated dataset for {root}", dataset=ds)
        layout.write_manifest(tmp, wanted, counts, progress=progress, dataset=ds)
        atomic.move_into_place(tmp, root, replace=force)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def default_root(dataset: Dataset | str | None = None) -> Path:
    """<REPRO_HOME>/data/<id>-synthetic/<folder> (ADE20K: …/ade20k-synthetic/ADEChallengeData2016); REPRO_DATA (the
    real datasets' root) never moves it."""
    return datasets.data_root(datasets.of(dataset).id + datasets.SYNTHETIC)


def generate_cli(root: Path | None, num_train: int, num_val: int | None, seed: int, force: bool,
                 dataset: Dataset | str | None = None) -> str:
    """`repro prepare <dataset> --synthetic N`: generate and return the one-line summary to print."""
    import time

    ds = datasets.of(dataset)
    start = time.monotonic()
    root = generate(root or default_root(ds), num_train, num_val, seed, force=force, progress=True, dataset=ds)
    manifest = layout.read_manifest(root)
    counts = manifest["counts"]
    train, val = ds.train_split, ds.val_split
    return (f"synthetic {ds.title}-format dataset ready at {root}: {counts[train]} {train} / "
            f"{counts[val]} {val} images, seed {seed}, manifest {manifest['files_sha256'][:12]} "
            f"({time.monotonic() - start:.1f}s)")
