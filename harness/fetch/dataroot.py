"""A prepared data root: `repro prepare <dataset>` (the zip, checked; extracted beside the data root and moved in
only when complete; layout and labels checked; every file recorded in a manifest), and the state and facts other
rooms ask for. A data root is replaced only if we made it (see ownership); one command prepares a given root at a
time. What the dataset is (archive URL, md5, sha1, counts, layout) is its dataset.toml (harness.registry.datasets);
`dataset` is a registry Dataset, an id, or None for ADE20K.

    status(root) -> str                     for `repro list`; no hashing
    verify(root, deep=True, decode=False)   raises ReproError naming the file and the fix; returns the manifest
    dataset_facts(root, split) -> dict      {root, split, num_images, manifest_sha256, synthetic} for result.json
"""
from __future__ import annotations

import contextlib
import os
import shutil
import time
import zipfile
from pathlib import Path

from harness import clock
from harness.errors import ReproError
from harness.fetch import atomic, layout, ownership, unpack
from harness.paths import downloads_dir
from harness.registry import datasets
from harness.registry.datasets import Dataset


def default_root(dataset: Dataset | str | None = None) -> Path:
    return datasets.data_root(datasets.of(dataset).id)


def _prepare_fix(root: Path, manifest: dict | None = None, dataset: Dataset | str | None = None) -> str:
    manifest = manifest or {}
    dataset_id = manifest.get("dataset") or datasets.of(dataset).id
    origin = manifest.get("origin") or {}
    if origin.get("kind") == "synthetic":
        return (f"run `repro prepare {dataset_id} --synthetic {origin['num_train']} --val {origin['num_val']} "
                f"--seed {origin['seed']} --data-root {root} --force`")
    return f"run `repro prepare {dataset_id} --data-root {root} --force`"


# ---------------------------------------------------------------------------------------------- state

def status(root: Path | None = None, dataset: Dataset | str | None = None) -> str:
    """One word for `repro list`, from sizes only (no hashing):
    'missing' (no data root), 'incomplete' (a folder without a manifest), 'changed' (files missing, extra or of
    another size than the manifest says), 'ready' (prepared from the real archive), 'synthetic'.
    dataset: whose default data root to look at when root is None."""
    root = Path(root or default_root(dataset))
    if not root.is_dir() or atomic.is_empty_dir(root):
        return "missing"
    try:
        manifest = layout.read_manifest(root)
    except ReproError:
        return "incomplete"
    if layout.manifest_problems(root, manifest, deep=False, progress=False):
        return "changed"
    return "synthetic" if manifest.get("origin", {}).get("kind") == "synthetic" else "ready"


def verify(root: Path | None = None, deep: bool = True, progress: bool = True,
           dataset: Dataset | str | None = None, decode: bool = False) -> dict:
    """Check root against its manifest (deep: every sha256; else sizes) and return the manifest; with decode,
    also decode every image and annotation fully and check the labels again (`repro prepare --verify`).
    Raises ReproError naming the first missing/extra/changed/broken files and the `repro prepare <dataset> ...` fix."""
    ds = datasets.of(dataset)
    root = Path(root or default_root(ds))
    if not root.is_dir():
        raise ReproError(f"{ds.title} data root {root} does not exist",
                         fix=f"run `repro prepare {ds.id}` (or pass --data-root / set REPRO_DATA)")
    manifest = layout.read_manifest(root, fix=_prepare_fix(root, dataset=ds), dataset=ds.id)
    manifest = layout.check_manifest(root, deep=deep, fix=_prepare_fix(root, manifest, ds), progress=progress)
    if decode:
        origin = manifest.get("origin") or {}
        source = f" (from {origin['source']})" if origin.get("source") else ""
        layout.check_layout(root, manifest.get("counts"), progress=progress, dataset=manifest.get("dataset") or ds,
                            decode=True,
                            fix=f"the file is broken as prepared{source}: get an intact archive and "
                                f"{_prepare_fix(root, manifest, ds)}")
    return manifest


def dataset_facts(root: Path | None = None, split: str | None = None, dataset: Dataset | str | None = None) -> dict:
    """What a run record says about its data: root, split (default: the dataset's validation split), image count,
    manifest digest, synthetic or not. The layout is that of the dataset the manifest names.
    Checks file presence and sizes against the manifest (not hashes; `verify` does those)."""
    root = Path(root or default_root(dataset)).expanduser().resolve()
    manifest = verify(root, deep=False, progress=False, dataset=dataset)
    ds = datasets.of(manifest.get("dataset") or dataset)
    split = split or ds.val_split
    prefix = f"{ds.split(split).images}/"
    origin = manifest.get("origin", {})
    return {
        "root": str(root),
        "split": split,
        "num_images": sum(1 for p in manifest["files"] if p.startswith(prefix) and p.endswith(ds.image_suffix)),
        "manifest_sha256": manifest["files_sha256"],
        "synthetic": origin.get("kind") == "synthetic",
    }


# ---------------------------------------------------------------------------------------------- preparing

def _members(zf: zipfile.ZipFile, folder: str, zip_path: Path, title: str) -> list[tuple[zipfile.ZipInfo, str]]:
    """(member, path inside the data root) for every file under `folder/`; refuses unsafe names."""
    out = []
    for info in zf.infolist():
        name = info.filename
        if info.is_dir() or name.startswith("__MACOSX/") or Path(name).name == ".DS_Store":
            continue
        parts = Path(name).parts
        if name.startswith("/") or ".." in parts:
            raise ReproError(f"{zip_path} holds an unsafe path {name}: not the {title} archive",
                             fix="pass the right file with --zip, or the right mirror with --url")
        if len(parts) > 1 and parts[0] == folder:      # anything outside folder/ is not extracted
            out.append((info, "/".join(parts[1:])))
    if not out:
        raise ReproError(f"{zip_path} holds no files under {folder}/: not the {title} archive",
                         fix="pass the right file with --zip, or the right mirror with --url")
    return out


def archive_members(zip_path: Path, folder: str, dataset: Dataset | str | None = None
                    ) -> list[tuple[zipfile.ZipInfo, str]]:
    """(member, path inside the data root) of every file under `folder/` of the zip, from its central directory."""
    ds = datasets.of(dataset)
    try:
        with zipfile.ZipFile(zip_path) as zf:
            return _members(zf, folder, zip_path, ds.title)
    except (zipfile.BadZipFile, OSError) as exc:
        raise ReproError(f"{zip_path} is not a readable zip ({exc}); truncated download?",
                         fix=f"delete it and run `repro prepare {ds.id}` again") from None


def list_members(zip_path: Path, folder: str, dataset: Dataset | str | None = None) -> list[tuple[str, str]]:
    """(member name, path inside the data root) of every file under `folder/` of the zip."""
    return [(info.filename, rel) for info, rel in archive_members(zip_path, folder, dataset)]


def parse_counts(text: str | None, dataset: Dataset | str | None = None) -> dict[str, int] | None:
    """--counts TRAIN,VAL as {train split: n, val split: n}."""
    if not text:
        return None
    ds = datasets.of(dataset)
    try:
        train, val = (int(x) for x in text.split(","))
    except ValueError:
        example = f"{ds.counts[ds.train_split]},{ds.counts[ds.val_split]}"
        raise ReproError(f"--counts {text!r} is not TRAIN,VAL", fix=f"e.g. --counts {example}") from None
    return {ds.train_split: train, ds.val_split: val}


def prepare(root: Path | None = None, zip_path: Path | None = None, url: str | None = None,
            md5: str | None = None, sha1: str | None = None, counts: dict[str, int] | None = None,
            force: bool = False, progress: bool = True, dataset: Dataset | str | None = None) -> dict:
    """Download (or take --zip), check, extract atomically, check the layout, write the manifest. Returns the
    manifest. An already prepared root that matches its manifest (sizes) is left alone unless force=True; a root
    the harness did not make is never replaced. One command per data root at a time: a second one waits, then
    finds the first one's dataset."""
    ds = datasets.of(dataset)
    root = Path(root or default_root(ds)).expanduser().resolve()
    with contextlib.ExitStack() as held:
        try:
            held.enter_context(ownership.root_lock(root))
        except ownership.LockUnavailable:
            if not force and status(root) in ("ready", "synthetic"):
                return layout.read_manifest(root)      # a shared root in a folder we cannot write: nothing to do
            raise
        atomic.clean_stale(root)
        if root.exists() and not atomic.is_empty_dir(root):
            state = status(root)
            if not force and state in ("ready", "synthetic"):
                return layout.read_manifest(root)
            ownership.check_replaceable(root, ds.id, ds.id)
            if not force:
                raise ReproError(f"{root} holds a dataset prepared by repro that is now {state}",
                                 fix=f"run `repro prepare {ds.id} --data-root {root} --force` to prepare it again")
        return _build(ds, root, zip_path, url, md5, sha1, counts, force, progress)


def _build(ds: Dataset, root: Path, zip_path: Path | None, url: str | None, md5: str | None, sha1: str | None,
           counts: dict[str, int] | None, force: bool, progress: bool) -> dict:
    src = ds.archive
    counts = counts or ds.counts
    if md5 is None and sha1 is None and src is not None:    # a mirror or a local copy must hold the same bytes
        md5, sha1 = src.md5, src.sha1
    if zip_path is None:
        url = url or (src.url if src else None)
        if url is None:
            raise ReproError(f"{ds.file} names no [archive] to download {ds.title} from",
                             fix=f"pass --zip PATH or --url URL (or add an [archive] table to {ds.file})")
        zip_path = downloads_dir() / (Path(url.split("?")[0]).name or (src.filename if src else f"{ds.id}.zip"))
        from harness.fetch.http import download_url
        download_url(url, zip_path, timeout=float(os.environ.get("REPRO_HTTP_TIMEOUT") or 30), progress=progress)
        source_label = url
    else:
        zip_path = Path(zip_path).expanduser().resolve()
        if not zip_path.is_file():
            raise ReproError(f"--zip {zip_path} does not exist",
                             fix=f"pass the path of {src.filename if src else f'the {ds.title} zip'}")
        source_label = str(zip_path)
    folder = src.folder if src else ds.folder
    try:
        judged = _judge(ds, zip_path, root, folder, md5, sha1, counts, progress)
    except unpack.ChecksumMismatch:
        if zip_path.parent == downloads_dir():          # our own download: move it aside, never reuse it
            bad = zip_path.with_name(f"{zip_path.name}.bad-{clock.stamp()}")
            os.replace(zip_path, bad)
            raise ReproError(f"downloaded {zip_path.name} from {source_label} does not match the published "
                             f"md5/sha1; moved to {bad}",
                             fix=f"run `repro prepare {ds.id}` again, or use another --url / --zip") from None
        raise
    tmp = atomic.staging_dir(root)
    try:
        manifest = _unpack_checked(ds, zip_path, tmp, folder, source_label, counts, progress, *judged)
        if not force and _same_dataset(root, manifest):     # another host prepared it meanwhile
            shutil.rmtree(tmp, ignore_errors=True)
            return layout.read_manifest(root)
        atomic.move_into_place(tmp, root, replace=force)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return manifest


def _judge(ds: Dataset, zip_path: Path, root: Path, folder: str, md5: str | None, sha1: str | None,
           counts: dict[str, int], progress: bool):
    """Everything that can be known of the archive before extracting it, in this order: its md5/sha1 (when one
    is expected: a wrong archive is reported as that, not as the fault it causes), its member names (safe, in the
    dataset's layout), their declared sizes against the dataset's archive limits and the free disk space.
    Returns (members, pairs, digests): digests None when no checksum is expected (hashed alongside, later)."""
    digests = unpack.judge(zip_path, md5, sha1, ds.id, progress) if (md5 or sha1) else None
    where = f"{zip_path} ({folder}/)"
    fix = f"the archive is not a complete {folder}: use the official one (--zip/--url)"
    infos = archive_members(zip_path, folder, ds)
    members = [(info.filename, rel) for info, rel in infos]
    pairs, _ = layout.check_names([rel for _, rel in members], counts, fix, where, ds)
    unpack.check_sizes(zip_path, infos, ds, root.parent)
    return members, pairs, digests


def _unpack_checked(ds: Dataset, zip_path: Path, dest: Path, folder: str, source_label: str,
                    counts: dict[str, int], progress: bool, members: list[tuple[str, str]],
                    pairs: list[tuple[str, str]], digests: dict[str, str] | None) -> dict:
    """Members judged (see _judge) are extracted, hashed and label-checked in parallel (the archive's md5/sha1
    computed alongside when _judge did not); returns the manifest written in dest."""
    where = f"{zip_path} ({folder}/)"
    fix = f"the archive is not a complete {folder}: use the official one (--zip/--url)"
    alongside = unpack.ArchiveDigests(zip_path, dataset=ds.id) if digests is None else None
    files, facts = unpack.unpack(zip_path, members, dest, progress, alongside=alongside and alongside.start,
                                 pairs=pairs, dataset=ds)
    checked = digests or alongside.check()
    layout.check_pairs(pairs, facts, fix, where, ds)
    origin = {"kind": ds.id, "source": source_label, "zip_md5": checked["md5"], "zip_sha1": checked["sha1"]}
    return layout.write_manifest(dest, origin, counts, progress=progress, files=files, dataset=ds)


def _same_dataset(root: Path, manifest: dict) -> bool:
    """root now holds a ready dataset with exactly these files."""
    if status(root) != "ready":
        return False
    return layout.read_manifest(root)["files_sha256"] == manifest["files_sha256"]


def prepare_cli(data_root: Path | None, zip_path: Path | None, url: str | None, md5: str | None,
                sha1: str | None, counts: str | None, verify_only: bool, force: bool,
                dataset: Dataset | str | None = None) -> str:
    """`repro prepare <dataset> [...]`: prepare (or with verify_only, fully verify) and return the line to print."""
    ds = datasets.of(dataset)
    root = Path(data_root or default_root(ds)).expanduser().resolve()
    start = time.monotonic()
    if verify_only:
        if zip_path or url or md5 or sha1 or counts or force:
            raise ReproError("--verify checks a prepared data root and takes only --data-root",
                             fix=f"run `repro prepare {ds.id} --verify --data-root {root}`")
        manifest = verify(root, deep=True, dataset=ds, decode=True)
        verb = "verified (every image decoded)"
    else:
        manifest = prepare(root, zip_path, url, md5, sha1, parse_counts(counts, ds), force, dataset=ds)
        verb = "ready"
    c = manifest["counts"]
    train, val = ds.train_split, ds.val_split
    kind = "synthetic " if manifest.get("origin", {}).get("kind") == "synthetic" else ""
    return (f"{kind}{ds.title} {verb} at {root}: {c.get(train)} {train} / {c.get(val)} {val} images, "
            f"{len(manifest['files'])} files match the manifest {manifest['files_sha256'][:12]} "
            f"({time.monotonic() - start:.1f}s)")
