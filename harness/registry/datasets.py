"""The datasets the harness knows: one folder each under datasets/, described by its dataset.toml.

A dataset is data, not code: its class names, published split counts, folder layout, file names and label
encoding, and where its archive comes from (datasets/README.md names every field). Adding one needs no harness
code. REPRO_DATASETS names another registry root (a test's own, or a site's). A name `<id>-synthetic` (e.g. the
demo's `dataset = "ade20k-synthetic"`) is the generated stand-in for dataset `<id>`: the same layout and labels,
its own default data root. Reads only TOML: no torch, mmcv or mmseg.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from harness import REPO_ROOT, paths, tomlcheck
from harness.errors import ReproError
from harness.registry.lookup import pick
from harness.tomlcheck import FRAGMENT, NAME, RELPATH, List, Map, Optional, Table

METADATA = "dataset.toml"
DEFAULT = "ade20k"          # the dataset a call means when it names none (the harness's first)
SYNTHETIC = "-synthetic"
ROLES = ("train", "val")
FIX = "compare it with datasets/ade20k/dataset.toml and datasets/README.md"


@dataclass(frozen=True)
class Split:
    name: str
    role: str               # "train" (mmseg's data.train) or "val" (data.val / data.test: what evaluations score)
    count: int              # published number of images
    images: str             # folder of its images, relative to the data root
    annotations: str        # folder of their annotations
    prefix: str             # every file name: prefix + `digits` digits + suffix


@dataclass(frozen=True)
class Archive:
    url: str
    filename: str
    folder: str             # the zip's top-level folder, extracted as the data root
    md5: str | None = None
    sha1: str | None = None
    size: int | None = None
    # what a member of a zip for this dataset may be (harness/fetch/unpack.py refuses more; see datasets/README.md)
    max_member_bytes: int = 1 << 30                 # its declared (uncompressed) size
    max_compression_ratio: float = 100.0            # declared size over compressed size (judged from 1 MiB up)
    max_total_bytes: int = 100 << 30                # the declared sizes of the extracted members together


@dataclass(frozen=True)
class Dataset:
    id: str
    title: str
    mmseg_type: str
    zoo_name: str | None
    folder: str
    splits: tuple[Split, ...]
    digits: int
    image_suffix: str
    annotation_suffix: str
    num_classes: int
    reduce_zero_label: bool
    ignore_index: int
    classes: tuple[str, ...]
    synthetic_labels: tuple[int, ...]
    synthetic_backgrounds: int
    archive: Archive | None
    file: Path

    @property
    def limits(self) -> Archive:
        """The archive limits of any zip prepared for this dataset: [archive]'s, else the defaults."""
        return self.archive or Archive(url="", filename="", folder=self.folder)

    def split(self, name: str) -> Split:
        for split in self.splits:
            if split.name == name:
                return split
        raise ReproError(f"dataset '{self.id}' has no split '{name}'",
                         fix=f"use one of: {', '.join(s.name for s in self.splits)}")

    def _role(self, role: str) -> Split:
        return next(s for s in self.splits if s.role == role)

    @property
    def train_split(self) -> str:
        return self._role("train").name

    @property
    def val_split(self) -> str:
        return self._role("val").name

    @property
    def counts(self) -> dict[str, int]:
        """The published image count of each split."""
        return {s.name: s.count for s in self.splits}

    @property
    def raw_labels(self) -> range:
        """The raw annotation values that are classes (with reduce_zero_label, raw 0 is ignored and raw k is class k-1)."""
        return _raw_labels(self.num_classes, self.reduce_zero_label)

    @property
    def raw_ignored(self) -> int:
        """The raw annotation value that marks a pixel the metric ignores."""
        return 0 if self.reduce_zero_label else self.ignore_index

    @property
    def class_names_fix(self) -> str:
        """The fix for an unknown class name: where the names are."""
        try:
            shown = self.file.relative_to(REPO_ROOT)
        except ValueError:
            shown = self.file
        spaced = next((c for c in self.classes if c.endswith(" ")), None)
        note = f" ({spaced!r} ends in a space)" if spaced else ""
        return f"use the {self.num_classes} {self.title} class names of {shown} verbatim{note}"

    def canonical_class(self, name: str) -> str | None:
        """The registered name for `name`, tolerating lost surrounding whitespace ('bed' -> 'bed '); None if unknown."""
        if name in self.classes:
            return name
        return {c.strip(): c for c in self.classes}.get(name.strip())


def _raw_labels(num_classes: int, reduce_zero_label: bool) -> range:
    return range(1, num_classes + 1) if reduce_zero_label else range(num_classes)


def datasets_root() -> Path:
    return paths.datasets_root()


_SPLIT = Table({"role": str, "count": int, "images": RELPATH, "annotations": RELPATH, "prefix": FRAGMENT})
SCHEMA = Table({
    "id": NAME, "title": str, "mmseg_type": str, "zoo_name": Optional(str), "folder": NAME, "splits": Map(_SPLIT),
    "files": Table({"digits": int, "image_suffix": FRAGMENT, "annotation_suffix": FRAGMENT}),
    "labels": Table({"num_classes": int, "reduce_zero_label": bool, "ignore_index": int, "classes": List(str)}),
    "synthetic": Optional(Table({"labels": List(int), "backgrounds": int})),
    "archive": Optional(Table({"url": str, "filename": NAME, "folder": Optional(NAME), "md5": Optional(str),
                               "sha1": Optional(str), "size": Optional(int), "max_member_bytes": Optional(int),
                               "max_compression_ratio": Optional(float), "max_total_bytes": Optional(int)})),
})


def _positive(path: Path, where: str, value: int) -> int:
    if value < 1:
        raise tomlcheck.fail(path, where, f"must be at least 1, found {value}", FIX)
    return value


def _splits(path: Path, table: dict) -> tuple[Split, ...]:
    splits = []
    for name, one in table.items():
        if one["role"] not in ROLES:
            raise tomlcheck.fail(path, f"splits.{name}.role", f"must be one of {', '.join(ROLES)}, found {one['role']!r}",
                                 FIX)
        splits.append(Split(name, one["role"], _positive(path, f"splits.{name}.count", one["count"]), one["images"],
                            one["annotations"], one["prefix"]))
    for role in ROLES:
        if sum(s.role == role for s in splits) != 1:
            raise tomlcheck.fail(path, "splits", f"must hold exactly one split with role = \"{role}\"", FIX)
    return tuple(splits)


def _labels(path: Path, labels: dict) -> tuple[int, bool, int, tuple[str, ...]]:
    num_classes = _positive(path, "labels.num_classes", labels["num_classes"])
    reduce_zero, ignore, classes = labels["reduce_zero_label"], labels["ignore_index"], labels["classes"]
    if len(classes) != num_classes:
        raise tomlcheck.fail(path, "labels.classes", f"must list num_classes = {num_classes} names, found "
                                                     f"{len(classes)} entries", FIX)
    if not 0 <= ignore <= 255 or (not reduce_zero and ignore < num_classes):
        raise tomlcheck.fail(path, "labels.ignore_index", f"must be a uint8 value that is no class, found {ignore}", FIX)
    if num_classes + reduce_zero > 255:
        raise tomlcheck.fail(path, "labels.num_classes", f"leaves no uint8 value to ignore, found {num_classes}", FIX)
    return num_classes, reduce_zero, ignore, tuple(classes)


def _synthetic(path: Path, table: dict | None, raw: range) -> tuple[tuple[int, ...], int]:
    """The raw labels the synthetic generator draws (default: the first ten classes) and how many are backgrounds."""
    if table is None:
        labels = tuple(raw[:10])
        return labels, max(1, len(labels) // 2)
    labels = tuple(table["labels"])
    if not labels or any(v not in raw for v in labels):
        raise tomlcheck.fail(path, "synthetic.labels", f"must list raw class labels in {raw.start}..{raw.stop - 1}, "
                                                       f"found {list(labels)}", FIX)
    backgrounds = _positive(path, "synthetic.backgrounds", table["backgrounds"])
    if backgrounds >= len(labels) and len(labels) > 1:
        raise tomlcheck.fail(path, "synthetic.backgrounds", f"must leave some of the {len(labels)} labels as objects, "
                                                            f"found {backgrounds}", FIX)
    return labels, backgrounds


_LIMITS = ("max_member_bytes", "max_compression_ratio", "max_total_bytes")


def _archive(path: Path, table: dict | None, folder: str) -> Archive | None:
    if table is None:
        return None
    limits = {key: table[key] for key in _LIMITS if table[key] is not None}
    for key, value in limits.items():
        if not value > 0:
            raise tomlcheck.fail(path, f"archive.{key}", f"must be positive, found {value!r}", FIX)
    return Archive(url=table["url"], filename=table["filename"], folder=table["folder"] or folder, md5=table["md5"],
                   sha1=table["sha1"], size=table["size"], **limits)


def load_dataset(folder: Path) -> Dataset:
    """datasets/<id>/dataset.toml, checked against SCHEMA (harness/tomlcheck.py) and the facts' own rules."""
    path = folder / METADATA
    data = tomlcheck.read(path, SCHEMA, "dataset", fix=FIX)
    dataset_id = data["id"]
    if dataset_id != folder.name:
        raise tomlcheck.fail(path, "id", f"'{dataset_id}' differs from its folder name '{folder.name}'", FIX)
    if dataset_id.endswith(SYNTHETIC):
        raise tomlcheck.fail(path, "id", f"must not end in '{SYNTHETIC}' (that names a dataset's synthetic stand-in)",
                             FIX)
    files = data["files"]
    num_classes, reduce_zero, ignore, classes = _labels(path, data["labels"])
    synthetic_labels, backgrounds = _synthetic(path, data["synthetic"], _raw_labels(num_classes, reduce_zero))
    return Dataset(
        id=dataset_id, title=data["title"], mmseg_type=data["mmseg_type"], zoo_name=data["zoo_name"],
        folder=data["folder"], splits=_splits(path, data["splits"]),
        digits=_positive(path, "files.digits", files["digits"]), image_suffix=files["image_suffix"],
        annotation_suffix=files["annotation_suffix"], num_classes=num_classes, reduce_zero_label=reduce_zero,
        ignore_index=ignore, classes=classes, synthetic_labels=synthetic_labels, synthetic_backgrounds=backgrounds,
        archive=_archive(path, data["archive"], data["folder"]), file=path)


@lru_cache(maxsize=8)
def _read(root: Path, stamp: tuple) -> dict[str, Dataset]:
    return {dataset.id: dataset for dataset in (load_dataset(Path(path).parent) for path, _ in stamp)}


def all_datasets(root: Path | None = None) -> dict[str, Dataset]:
    """Every dataset under the registry root, by id; read once while no dataset.toml changes."""
    root = (root or datasets_root()).resolve()
    stamp = tuple((str(p), p.stat().st_mtime_ns) for p in sorted(root.glob(f"*/{METADATA}")))
    return dict(_read(root, stamp))


def get(dataset_id: str, root: Path | None = None) -> Dataset:
    return pick(all_datasets(root), dataset_id, "dataset",
                fix=f"add datasets/{dataset_id}/{METADATA} (see datasets/README.md), or use a registered id")


def resolve(name: str, root: Path | None = None) -> tuple[Dataset, bool]:
    """The dataset a name means and whether it is its synthetic stand-in: 'ade20k-synthetic' -> (ADE20K, True)."""
    if name.endswith(SYNTHETIC) and name[:-len(SYNTHETIC)] in all_datasets(root):
        return get(name[:-len(SYNTHETIC)], root), True
    return get(name, root), False


def of(dataset: Dataset | str | None) -> Dataset:
    """A Dataset from a Dataset, a name (`<id>-synthetic` means `<id>`'s layout), or None (the default one)."""
    if isinstance(dataset, Dataset):
        return dataset
    return resolve(dataset or DEFAULT)[0]


def data_root(dataset: str | None = None) -> Path:
    """The prepared dataset's root, <REPRO_HOME>/data/<name>/<its folder> (datasets/<id>/dataset.toml names the
    folder), e.g. <REPRO_HOME>/data/ade20k/ADEChallengeData2016 and, for its synthetic stand-in,
    <REPRO_HOME>/data/ade20k-synthetic/ADEChallengeData2016. REPRO_DATA moves the real datasets only: a synthetic
    default there would sit on (and could replace) the real data."""
    dataset = dataset or DEFAULT
    found, synthetic = resolve(dataset)
    override = paths.real_data_override()
    if override and not synthetic:
        return override
    return paths.data_home(dataset) / found.folder


def of_record(record: dict) -> Dataset:
    """The dataset a run record names (its dataset.name, `<id>-synthetic` included); the default one when it names
    none that is registered."""
    named = record.get("dataset")
    name = named.get("name") if isinstance(named, dict) else None
    if isinstance(name, str):
        try:
            return resolve(name)[0]
        except ReproError:
            pass
    return of(None)


def by_zoo_name(root: Path | None = None) -> dict[str, Dataset]:
    """mmseg metafile dataset name ("ADE20K") -> dataset."""
    return {d.zoo_name: d for d in all_datasets(root).values() if d.zoo_name}
