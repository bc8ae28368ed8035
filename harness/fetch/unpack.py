"""Extract a zip's members in one pass per file, in bounded memory: each member is streamed from the archive to
its file in blocks (its CRC checked by zipfile), hashed (sha256, for the manifest) as it is written, and, for an
image or annotation, its label-check facts taken from the bytes in memory (or from the file, for a member larger
than one block). Members are spread over worker processes (one per CPU), so extraction, hashing and label decoding
run in parallel.

Nothing in a zip is trusted: `check_sizes` judges the central directory against the dataset's archive limits
(Dataset.limits: max_member_bytes, max_compression_ratio, max_total_bytes, from its dataset.toml) and the free disk
space before anything is written, and a member that inflates past the size its header declares is stopped there
(a forged header). The archive's md5/sha1, when one is expected, is judged before extracting (`judge`); when none
is, `ArchiveDigests` computes them for the manifest in a thread while the members are extracted.

    checked = judge(zip_path, md5, sha1)                        # raises ChecksumMismatch
    total = check_sizes(zip_path, [(ZipInfo, path in dest), ...], dataset, dest.parent)
    files, facts = unpack(zip_path, [(member name, path in dest), ...], dest, pairs=[(image, annotation), ...],
                          dataset=dataset)
"""
from __future__ import annotations

import hashlib
import os
import shutil
import threading
import zipfile
from collections.abc import Callable
from pathlib import Path

from harness.errors import ReproError
from harness.fetch import layout
from harness.fetch.hashing import file_hashes
from harness.fetch.pool import chunk_results
from harness.registry import datasets
from harness.registry.datasets import Dataset

CHUNK = 64                  # members per task: large enough to amortise the hand-over, small for an even spread
BLOCK = 1 << 20             # bytes read from a member at a time; a member smaller is read in one call
RATIO_FROM = 1 << 20        # the compression ratio is judged for members declaring this many bytes or more
FS_BLOCK = 4096             # each file is counted as a whole number of these in the free-space check

_zip: zipfile.ZipFile | None = None     # the archive, opened once per unpack() in each process that extracts


def size_text(n: float) -> str:
    """1073741824 -> '1.0 GiB'."""
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB"):
        if n < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"


def _limit_fix(ds: Dataset, field: str) -> str:
    return (f"use the official {ds.title} archive (--zip/--url); if this one is right, raise {field} in "
            f"{ds.file}")


def check_sizes(zip_path: Path, members: list[tuple[zipfile.ZipInfo, str]], dataset: Dataset | str | None,
                dest_parent: Path) -> int:
    """Judge the sizes the zip declares, before anything is written: raise ReproError naming the first member
    beyond the dataset's max_member_bytes or max_compression_ratio, a total beyond max_total_bytes, or a total
    the disk holding dest_parent has no room for. Returns the declared total."""
    ds = datasets.of(dataset)
    limits = ds.limits
    total = 0
    for info, _ in members:
        size, packed = info.file_size, info.compress_size
        if size > limits.max_member_bytes:
            raise ReproError(f"{zip_path}: member {info.filename} declares {size_text(size)}, more than the "
                             f"{size_text(limits.max_member_bytes)} a {ds.title} archive member may hold "
                             f"(max_member_bytes); nothing was extracted",
                             fix=_limit_fix(ds, "max_member_bytes"))
        if size >= RATIO_FROM and size > limits.max_compression_ratio * max(packed, 1):
            raise ReproError(f"{zip_path}: member {info.filename} declares {size_text(size)} from "
                             f"{size_text(packed)} compressed, a ratio of {size / max(packed, 1):.0f}:1 beyond the "
                             f"{limits.max_compression_ratio:g}:1 a {ds.title} archive member may have "
                             f"(max_compression_ratio; a zip bomb?); nothing was extracted",
                             fix=_limit_fix(ds, "max_compression_ratio"))
        total += size
    if total > limits.max_total_bytes:
        raise ReproError(f"{zip_path}: its members declare {size_text(total)} in all, more than the "
                         f"{size_text(limits.max_total_bytes)} a {ds.title} archive may hold (max_total_bytes); "
                         f"nothing was extracted", fix=_limit_fix(ds, "max_total_bytes"))
    need = sum(-(-info.file_size // FS_BLOCK) * FS_BLOCK for info, _ in members)
    there = Path(dest_parent)
    while not there.exists() and there != there.parent:     # the folder is made later: ask its filesystem
        there = there.parent
    free = shutil.disk_usage(there).free
    if need > free:
        raise ReproError(f"{zip_path} unpacks to {size_text(need)} but {dest_parent} has {size_text(free)} free; "
                         f"nothing was extracted",
                         fix=f"free {size_text(need - free)} there, or choose another --data-root")
    return total


workers = layout.workers       # one process per CPU this process may use, at most layout.MAX_WORKERS


def _facts(kind: str | None, data: bytes | Path, ignored: int) -> tuple | None:
    if kind == "image":
        return layout.image_facts(data)
    if kind == "annotation":
        return layout.annotation_facts(data, ignored)
    return None


def _open(zip_path: str | None) -> None:
    global _zip
    if _zip is not None:
        _zip.close()
    _zip = zipfile.ZipFile(zip_path) if zip_path else None


class _Forged(Exception):
    """A member's bytes disagree with the size its header declares."""


def _copy(info: zipfile.ZipInfo, target: str) -> tuple[int, str, bytes | None]:
    """Stream one member of the open archive to target, BLOCK bytes at a time; return (size, sha256, its bytes
    when it is smaller than a block, else None). Raises _Forged at the first byte past the declared size."""
    declared = info.file_size
    # zipfile stops at file_size and then checks the CRC: let two bytes more through, read at most one of them,
    # and a member inflating past its header is seen here as that (not as a CRC error after the fact). The ZipInfo
    # is this process's own copy of the central directory entry: changed for the read, then restored.
    info.file_size = declared + 2
    small = declared < BLOCK
    digest = hashlib.sha256()
    size = 0
    kept = b"" if small else None
    try:
        with _zip.open(info) as src, open(target, "wb") as dst:
            while data := src.read(min(BLOCK, declared + 1 - size)):
                size += len(data)
                if size > declared:
                    raise _Forged
                dst.write(data)
                digest.update(data)
                if small:
                    kept = kept + data if kept else data        # one read, as a rule
    finally:
        info.file_size = declared
    if size != declared:
        raise _Forged(size)
    return size, digest.hexdigest(), kept


def _extract_chunk(task: tuple[str, list[tuple[str, str, str | None]], int]
                   ) -> list[tuple[str, int, str, tuple | None]]:
    """Extract (member, rel, kind) of the open archive into dest; return (rel, size, sha256, facts) of each.
    An error comes back as ("", message, fix or None, None) so the caller raises one ReproError."""
    dest, members, ignored = task
    out = []
    for name, rel, kind in members:
        target = os.path.join(dest, rel)
        try:
            info = _zip.getinfo(name)
            size, digest, data = _copy(info, target)
            fact = _facts(kind, data if data is not None else Path(target), ignored)
        except _Forged as short:
            if short.args:
                return [("", f"member {name} holds {short.args[0]} bytes, its header declares {info.file_size}: "
                             f"a damaged or forged archive", None, None)]
            return [("", f"member {name} inflates beyond the {size_text(info.file_size)} its header declares "
                         f"(a forged header: a zip bomb?); extraction stopped there", None, None)]
        except (zipfile.BadZipFile, OSError, EOFError, ValueError, KeyError, _zlib_error()) as exc:
            return [("", f"member {name} is damaged ({exc})", None, None)]      # "" is no file's path: the error
        out.append((rel, size, digest, fact))
    return out


def _zlib_error():
    import zlib
    return zlib.error


def unpack(zip_path: Path, members: list[tuple[str, str]], dest: Path, progress: bool = True,
           processes: int | None = None, alongside: Callable[[], None] | None = None,
           pairs: list[tuple[str, str]] = (), dataset: Dataset | str | None = None
           ) -> tuple[dict[str, list], dict[str, tuple]]:
    """Extract `members` ((name in the zip, path under dest)) into dest, which exists and is empty; the caller
    has judged their declared sizes (check_sizes). Memory stays within a few BLOCKs per process.
    `alongside` is called once the worker processes exist (so a thread it starts is not running when they fork).
    `pairs` are the (image, annotation) paths layout.check_names found: those files get label-check facts.
    Returns ({rel: [size, sha256]}, {rel: label-check facts}) for the manifest and layout.check_pairs."""
    ds = datasets.of(dataset)
    rels = [rel for _, rel in members]
    if len(set(rels)) != len(rels):
        twice = sorted({r for r in rels if rels.count(r) > 1})[:3]
        raise ReproError(f"{zip_path} holds {', '.join(twice)} more than once: not the {ds.title} archive",
                         fix="pass the right file with --zip, or the right mirror with --url")
    for folder in sorted({os.path.dirname(rel) for rel in rels}):
        (dest / folder).mkdir(parents=True, exist_ok=True)
    kinds = {**{image: "image" for image, _ in pairs}, **{annotation: "annotation" for _, annotation in pairs}}
    typed = [(name, rel, kinds.get(rel)) for name, rel in members]
    tasks = [(str(dest), typed[i:i + CHUNK], ds.raw_ignored) for i in range(0, len(typed), CHUNK)]
    processes = processes or workers()
    bar = None
    if progress:
        from harness.console import bar as progress_bar
        bar = progress_bar(len(members), "extracting", unit="files")
    files: dict[str, list] = {}
    facts: dict[str, tuple] = {}
    try:
        with chunk_results(_extract_chunk, tasks, processes, initializer=_open, initargs=(str(zip_path),)) as results:
            if alongside is not None:
                alongside()
            for chunk in results:
                for rel, size, digest, fact in chunk:
                    if rel == "":
                        raise ReproError(f"{zip_path}: {size}",
                                         fix=digest or f"delete the zip and run `repro prepare {ds.id}` again")
                    files[rel] = [size, digest]
                    if fact is not None:
                        facts[rel] = fact
                if bar is not None:
                    bar.update(len(chunk))
    finally:
        _open(None)             # the archive opened here when no pool did the work
        if bar is not None:
            bar.close()
    return files, facts


class ChecksumMismatch(ReproError):
    """The archive's md5/sha1 differs from the expected one."""


def check_digests(path: Path, digests: dict[str, str], md5: str | None, sha1: str | None,
                  dataset: str = datasets.DEFAULT) -> dict[str, str]:
    for name, want in (("md5", md5), ("sha1", sha1)):
        if want and digests[name] != want.lower():
            raise ChecksumMismatch(f"{path} has {name} {digests[name]}, expected {want}: the archive is truncated, "
                                   f"corrupt or another file; nothing was extracted",
                                   fix=f"delete it and run `repro prepare {dataset}` again (or pass --zip with the "
                                       f"right file; --md5/--sha1 only if you trust this one)")
    return digests


def archive_hashes(path: Path, progress: bool = False) -> dict[str, str]:
    """md5 and sha1 of the archive, each in its own thread (hashing releases the GIL): the time of the slower."""
    found: dict[str, str] = {}
    errors: list[BaseException] = []

    def one(name: str, bar: bool) -> None:
        try:
            found.update(file_hashes(path, (name,), progress=bar))
        except BaseException as exc:       # noqa: BLE001 - raised in the caller's thread below
            errors.append(exc)

    helper = threading.Thread(target=one, args=("sha1", False), name="archive-sha1", daemon=True)
    helper.start()
    one("md5", progress)
    helper.join()
    if errors:
        raise errors[0]
    return found


def judge(path: Path, md5: str | None, sha1: str | None, dataset: str = datasets.DEFAULT,
          progress: bool = False) -> dict[str, str]:
    """Hash the archive now and raise ChecksumMismatch unless it has the expected md5/sha1: before extracting."""
    try:
        digests = archive_hashes(path, progress)
    except OSError as exc:
        raise ReproError(f"cannot read {path} ({exc})", fix=f"pass a readable file with --zip, or run "
                                                            f"`repro prepare {dataset}` to download it") from None
    return check_digests(path, digests, md5, sha1, dataset)


class ArchiveDigests:
    """md5/sha1 of an archive no checksum is expected for (the manifest records them), computed in a thread (from
    `start()`) while it is being extracted; `check()` waits and returns them. Hashing releases the GIL, so the
    thread barely slows the extraction."""

    def __init__(self, path: Path, md5: str | None = None, sha1: str | None = None,
                 dataset: str = datasets.DEFAULT):
        self.path, self.md5, self.sha1, self.dataset = path, md5, sha1, dataset
        self.digests: dict[str, str] = {}
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="archive-digests", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def _run(self) -> None:
        try:
            self.digests = archive_hashes(self.path)
        except BaseException as exc:       # noqa: BLE001 - handed to the caller's thread by check()
            self.error = exc

    def check(self) -> dict[str, str]:
        if self.thread.ident is None:       # never started (the extraction failed first): hash now
            self._run()
        else:
            self.thread.join()
        if self.error is not None:
            raise self.error
        return check_digests(self.path, self.digests, self.md5, self.sha1, self.dataset)
