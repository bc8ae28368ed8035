"""`repro prepare ade20k`: the zip, checked; extracted beside the data root and moved in only when complete;
layout and labels checked; every file recorded in a manifest. Also the state and facts other rooms ask for.
A data root is replaced only if we made it (see ownership); one command prepares a given root at a time.

The facts about the archive (URL, md5, sha1, counts) are in ade20k.toml beside this file.

    status(root) -> str                     for `repro list`; no hashing
    verify(root, deep=True) -> dict         raises ReproError naming the file and the fix; returns the manifest
    dataset_facts(root, split) -> dict      {root, split, num_images, manifest_sha256, synthetic} for result.json
"""
from __future__ import annotations

import os
import shutil
import time
import tomllib
import zipfile
from pathlib import Path

from harness.errors import ReproError
from harness.fetch import atomic, layout, ownership, unpack
from harness.paths import downloads_dir

SOURCE = Path(__file__).with_name("ade20k.toml")


def source() -> dict:
    return tomllib.loads(SOURCE.read_text())


def default_root() -> Path:
    from harness.paths import data_root
    return data_root("ade20k")


def _prepare_fix(root: Path, manifest: dict | None = None) -> str:
    origin = (manifest or {}).get("origin") or {}
    if origin.get("kind") == "synthetic":
        return (f"run `repro prepare ade20k --synthetic {origin['num_train']} --val {origin['num_val']} "
                f"--seed {origin['seed']} --data-root {root} --force`")
    return f"run `repro prepare ade20k --data-root {root} --force`"


# ---------------------------------------------------------------------------------------------- state

def status(root: Path | None = None) -> str:
    """One word for `repro list`, from sizes only (no hashing):
    'missing' (no data root), 'incomplete' (a folder without a manifest), 'changed' (files missing, extra or of
    another size than the manifest says), 'ready' (prepared from the real archive), 'synthetic'."""
    root = Path(root or default_root())
    if not root.is_dir() or atomic.is_empty_dir(root):
        return "missing"
    try:
        manifest = layout.read_manifest(root)
    except ReproError:
        return "incomplete"
    if layout.manifest_problems(root, manifest, deep=False, progress=False):
        return "changed"
    return "synthetic" if manifest.get("origin", {}).get("kind") == "synthetic" else "ready"


def verify(root: Path | None = None, deep: bool = True, progress: bool = True) -> dict:
    """Check root against its manifest (deep: every sha256; else sizes) and return the manifest.
    Raises ReproError naming the first missing/extra/changed files and the `repro prepare ade20k ...` fix."""
    root = Path(root or default_root())
    if not root.is_dir():
        raise ReproError(f"ADE20K data root {root} does not exist",
                         fix="run `repro prepare ade20k` (or pass --data-root / set REPRO_DATA)")
    manifest = layout.read_manifest(root, fix=_prepare_fix(root))
    return layout.check_manifest(root, deep=deep, fix=_prepare_fix(root, manifest), progress=progress)


def dataset_facts(root: Path | None = None, split: str = "validation") -> dict:
    """What a run record says about its data: root, split, image count, manifest digest, synthetic or not.
    Checks file presence and sizes against the manifest (not hashes; `verify` does those)."""
    root = Path(root or default_root()).expanduser().resolve()
    manifest = verify(root, deep=False, progress=False)
    if split not in layout.SPLITS:
        raise ValueError(f"split must be one of {layout.SPLITS}")
    prefix = f"images/{split}/"
    origin = manifest.get("origin", {})
    return {
        "root": str(root),
        "split": split,
        "num_images": sum(1 for p in manifest["files"] if p.startswith(prefix) and p.endswith(".jpg")),
        "manifest_sha256": manifest["files_sha256"],
        "synthetic": origin.get("kind") == "synthetic",
    }


# ---------------------------------------------------------------------------------------------- preparing

def _members(zf: zipfile.ZipFile, folder: str, zip_path: Path) -> list[tuple[zipfile.ZipInfo, str]]:
    """(member, path inside the data root) for every file under `folder/`; refuses unsafe names."""
    out = []
    for info in zf.infolist():
        name = info.filename
        if info.is_dir() or name.startswith("__MACOSX/") or Path(name).name == ".DS_Store":
            continue
        parts = Path(name).parts
        if name.startswith("/") or ".." in parts:
            raise ReproError(f"{zip_path} holds an unsafe path {name}: not the ADE20K archive",
                             fix="pass the right file with --zip, or the right mirror with --url")
        if len(parts) > 1 and parts[0] == folder:      # anything outside folder/ is not extracted
            out.append((info, "/".join(parts[1:])))
    if not out:
        raise ReproError(f"{zip_path} holds no files under {folder}/: not the ADE20K archive",
                         fix="pass the right file with --zip, or the right mirror with --url")
    return out


def list_members(zip_path: Path, folder: str) -> list[tuple[str, str]]:
    """(member name, path inside the data root) of every file under `folder/` of the zip."""
    try:
        with zipfile.ZipFile(zip_path) as zf:
            return [(info.filename, rel) for info, rel in _members(zf, folder, zip_path)]
    except (zipfile.BadZipFile, OSError) as exc:
        raise ReproError(f"{zip_path} is not a readable zip ({exc}); truncated download?",
                         fix="delete it and run `repro prepare ade20k` again") from None


def parse_counts(text: str | None) -> dict[str, int] | None:
    if not text:
        return None
    try:
        train, val = (int(x) for x in text.split(","))
    except ValueError:
        raise ReproError(f"--counts {text!r} is not TRAIN,VAL", fix="e.g. --counts 20210,2000") from None
    return {"training": train, "validation": val}


def prepare(root: Path | None = None, zip_path: Path | None = None, url: str | None = None,
            md5: str | None = None, sha1: str | None = None, counts: dict[str, int] | None = None,
            force: bool = False, progress: bool = True) -> dict:
    """Download (or take --zip), check, extract atomically, check the layout, write the manifest. Returns the
    manifest. An already prepared root that matches its manifest (sizes) is left alone unless force=True; a root
    the harness did not make is never replaced. One command per data root at a time: a second one waits, then
    finds the first one's dataset."""
    root = Path(root or default_root()).expanduser().resolve()
    with ownership.root_lock(root):
        atomic.clean_stale(root)
        if root.exists() and not atomic.is_empty_dir(root):
            state = status(root)
            if not force and state in ("ready", "synthetic"):
                return layout.read_manifest(root)
            ownership.check_replaceable(root, "ade20k")
            if not force:
                raise ReproError(f"{root} holds a dataset prepared by repro that is now {state}",
                                 fix=f"run `repro prepare ade20k --data-root {root} --force` to prepare it again")
        return _build(root, zip_path, url, md5, sha1, counts, force, progress)


def _build(root: Path, zip_path: Path | None, url: str | None, md5: str | None, sha1: str | None,
           counts: dict[str, int] | None, force: bool, progress: bool) -> dict:
    src = source()
    counts = counts or dict(src["counts"])
    if md5 is None and sha1 is None:                    # a mirror or a local copy must hold the same bytes
        md5, sha1 = src.get("md5"), src.get("sha1")
    if zip_path is None:
        url = url or src["url"]
        zip_path = downloads_dir() / (Path(url.split("?")[0]).name or src["filename"])
        from harness.fetch.http import download_url
        download_url(url, zip_path, timeout=float(os.environ.get("REPRO_HTTP_TIMEOUT") or 30), progress=progress)
        source_label = url
    else:
        zip_path = Path(zip_path).expanduser().resolve()
        if not zip_path.is_file():
            raise ReproError(f"--zip {zip_path} does not exist", fix="pass the path of ADEChallengeData2016.zip")
        source_label = str(zip_path)
    tmp = atomic.staging_dir(root)
    try:
        manifest = _unpack_checked(zip_path, tmp, src["folder"], source_label, md5, sha1, counts, progress)
        if not force and _same_dataset(root, manifest):     # another host prepared it meanwhile
            shutil.rmtree(tmp, ignore_errors=True)
            return layout.read_manifest(root)
        atomic.move_into_place(tmp, root, replace=force)
    except unpack.ChecksumMismatch:
        shutil.rmtree(tmp, ignore_errors=True)
        if zip_path.parent == downloads_dir():          # our own download: move it aside, never reuse it
            bad = zip_path.with_name(f"{zip_path.name}.bad-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}")
            os.replace(zip_path, bad)
            raise ReproError(f"downloaded {zip_path.name} from {source_label} does not match the published "
                             f"md5/sha1; moved to {bad}",
                             fix="run `repro prepare ade20k` again, or use another --url / --zip") from None
        raise
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return manifest


def _unpack_checked(zip_path: Path, dest: Path, folder: str, source_label: str, md5: str | None,
                    sha1: str | None, counts: dict[str, int], progress: bool) -> dict:
    """One pass over the archive: names checked first, then members extracted, hashed and label-checked in
    parallel while the archive's md5/sha1 is computed alongside; returns the manifest written in dest.
    The checksums are judged first: a wrong archive is reported as that, not as the fault it causes."""
    where = f"{zip_path} ({folder}/)"
    fix = "the archive is not a complete ADEChallengeData2016: use the official one (--zip/--url)"
    digests = unpack.ArchiveDigests(zip_path, md5, sha1)
    try:
        members = list_members(zip_path, folder)
        pairs, _ = layout.check_names([rel for _, rel in members], counts, fix, where)
        files, facts = unpack.unpack(zip_path, members, dest, progress, alongside=digests.start)
    except ReproError:
        digests.check()
        raise
    checked = digests.check()
    layout.check_pairs(pairs, facts, fix, where)
    origin = {"kind": "ade20k", "source": source_label, "zip_md5": checked["md5"], "zip_sha1": checked["sha1"]}
    return layout.write_manifest(dest, origin, counts, progress=progress, files=files)


def _same_dataset(root: Path, manifest: dict) -> bool:
    """root now holds a ready dataset with exactly these files."""
    if status(root) != "ready":
        return False
    return layout.read_manifest(root)["files_sha256"] == manifest["files_sha256"]


def prepare_cli(data_root: Path | None, zip_path: Path | None, url: str | None, md5: str | None,
                sha1: str | None, counts: str | None, verify_only: bool, force: bool) -> str:
    """`repro prepare ade20k [...]`: prepare (or with verify_only, fully verify) and return the line to print."""
    root = Path(data_root or default_root()).expanduser().resolve()
    start = time.monotonic()
    if verify_only:
        if zip_path or url or md5 or sha1 or counts or force:
            raise ReproError("--verify checks a prepared data root and takes only --data-root",
                             fix=f"run `repro prepare ade20k --verify --data-root {root}`")
        manifest = verify(root, deep=True)
        verb = "verified"
    else:
        manifest = prepare(root, zip_path, url, md5, sha1, parse_counts(counts), force)
        verb = "ready"
    c = manifest["counts"]
    kind = "synthetic " if manifest.get("origin", {}).get("kind") == "synthetic" else ""
    return (f"{kind}ADE20K {verb} at {root}: {c['training']} training / {c['validation']} validation images, "
            f"{len(manifest['files'])} files match the manifest {manifest['files_sha256'][:12]} "
            f"({time.monotonic() - start:.1f}s)")
