"""The datasets the harness knows: one folder each under datasets/, described by its dataset.toml.

A dataset is data, not code: its class names, published split counts, folder layout, file names and label
encoding, and where its archive comes from (datasets/README.md names every field). Adding one needs no harness
code. REPRO_DATASETS names another registry root (a test's own, or a site's). A name `<id>-synthetic` (e.g. the
demo's `dataset = "ade20k-synthetic"`) is the generated stand-in for dataset `<id>`: the same layout and labels,
its own default data root. Reads only TOML: no torch, mmcv or mmseg.
"""
from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from harness.errors import ReproError
from harness import REPO_ROOT
from harness.registry.lookup import pick

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
    return Path(os.environ.get("REPRO_DATASETS", REPO_ROOT / "datasets")).resolve()


class _Fields:
    """Typed access to one dataset.toml: a missing, mistyped or unknown field is one error naming file and field."""

    def __init__(self, path: Path, data: dict, prefix: str = ""):
        self.path, self.data, self.prefix = path, data, prefix
        self.used: set[str] = set()

    def fail(self, key: str, what: str) -> ReproError:
        return ReproError(f"{self.path}: field '{self.prefix}{key}' {what}", fix=FIX)

    def get(self, key: str, kind: type | tuple[type, ...], default=...):
        self.used.add(key)
        if key not in self.data:
            if default is ...:
                raise self.fail(key, "is missing")
            return default
        value = self.data[key]
        # bool is an int in Python; an integer field must not accept `true`
        if not isinstance(value, kind) or (isinstance(value, bool) and bool not in _tuple(kind)):
            names = " or ".join(k.__name__ for k in _tuple(kind))
            raise self.fail(key, f"must be {names}, found {value!r}")
        return value

    def table(self, key: str, required: bool = True) -> _Fields | None:
        data = self.get(key, dict, ... if required else None)
        return None if data is None else _Fields(self.path, data, f"{self.prefix}{key}.")

    def positive(self, key: str) -> int:
        value = self.get(key, int)
        if value < 1:
            raise self.fail(key, f"must be at least 1, found {value}")
        return value

    def done(self) -> None:
        unknown = sorted(set(self.data) - self.used)
        if unknown:
            raise self.fail(unknown[0], "is not a dataset field")


def _tuple(kind) -> tuple:
    return kind if isinstance(kind, tuple) else (kind,)


def _splits(fields: _Fields) -> tuple[Split, ...]:
    table = fields.table("splits")
    splits = []
    for name in list(table.data):
        one = table.table(name)
        role = one.get("role", str)
        if role not in ROLES:
            raise one.fail("role", f"must be one of {', '.join(ROLES)}, found {role!r}")
        splits.append(Split(name, role, one.positive("count"), one.get("images", str), one.get("annotations", str),
                            one.get("prefix", str)))
        one.done()
    for role in ROLES:
        if sum(s.role == role for s in splits) != 1:
            raise fields.fail("splits", f"must hold exactly one split with role = \"{role}\"")
    return tuple(splits)


def _labels(fields: _Fields) -> tuple[int, bool, int, tuple[str, ...]]:
    labels = fields.table("labels")
    num_classes = labels.positive("num_classes")
    reduce_zero, ignore = labels.get("reduce_zero_label", bool), labels.get("ignore_index", int)
    classes = labels.get("classes", list)
    if len(classes) != num_classes or not all(isinstance(c, str) for c in classes):
        raise labels.fail("classes", f"must list num_classes = {num_classes} names, found {len(classes)} entries")
    if not 0 <= ignore <= 255 or (not reduce_zero and ignore < num_classes):
        raise labels.fail("ignore_index", f"must be a uint8 value that is no class, found {ignore}")
    if num_classes + reduce_zero > 255:
        raise labels.fail("num_classes", f"leaves no uint8 value to ignore, found {num_classes}")
    labels.done()
    return num_classes, reduce_zero, ignore, tuple(classes)


def _synthetic(fields: _Fields, raw: range) -> tuple[tuple[int, ...], int]:
    """The raw labels the synthetic generator draws (default: the first ten classes) and how many are backgrounds."""
    table = fields.table("synthetic", required=False)
    if table is None:
        labels = tuple(raw[:10])
        return labels, max(1, len(labels) // 2)
    labels = tuple(table.get("labels", list))
    if not labels or any(isinstance(v, bool) or not isinstance(v, int) or v not in raw for v in labels):
        raise table.fail("labels", f"must list raw class labels in {raw.start}..{raw.stop - 1}, found {list(labels)}")
    backgrounds = table.positive("backgrounds")
    if backgrounds >= len(labels) and len(labels) > 1:
        raise table.fail("backgrounds", f"must leave some of the {len(labels)} labels as objects, found {backgrounds}")
    table.done()
    return labels, backgrounds


def _archive(fields: _Fields, folder: str) -> Archive | None:
    table = fields.table("archive", required=False)
    if table is None:
        return None
    archive = Archive(url=table.get("url", str), filename=table.get("filename", str),
                      folder=table.get("folder", str, folder), md5=table.get("md5", str, None),
                      sha1=table.get("sha1", str, None), size=table.get("size", int, None))
    table.done()
    return archive


def load_dataset(folder: Path) -> Dataset:
    path = folder / METADATA
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ReproError(f"cannot read {path}: {exc}", fix="fix the TOML syntax of that file") from exc
    fields = _Fields(path, data)
    dataset_id = fields.get("id", str)
    if dataset_id != folder.name:
        raise fields.fail("id", f"'{dataset_id}' differs from its folder name '{folder.name}'")
    if dataset_id.endswith(SYNTHETIC):
        raise fields.fail("id", f"must not end in '{SYNTHETIC}' (that names a dataset's synthetic stand-in)")
    folder_name = fields.get("folder", str)
    files = fields.table("files")
    digits, image_suffix, annotation_suffix = files.positive("digits"), files.get("image_suffix", str), \
        files.get("annotation_suffix", str)
    files.done()
    num_classes, reduce_zero, ignore, classes = _labels(fields)
    synthetic_labels, backgrounds = _synthetic(fields, _raw_labels(num_classes, reduce_zero))
    dataset = Dataset(
        id=dataset_id, title=fields.get("title", str), mmseg_type=fields.get("mmseg_type", str),
        zoo_name=fields.get("zoo_name", str, None), folder=folder_name, splits=_splits(fields), digits=digits,
        image_suffix=image_suffix, annotation_suffix=annotation_suffix, num_classes=num_classes,
        reduce_zero_label=reduce_zero, ignore_index=ignore, classes=classes, synthetic_labels=synthetic_labels,
        synthetic_backgrounds=backgrounds, archive=_archive(fields, folder_name), file=path)
    fields.done()
    return dataset


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
