"""Extract a zip's members in one pass per file: each member is read once (its CRC checked by zipfile), hashed
(sha256, for the manifest), written, and, for an image or annotation, its label-check facts taken from the bytes
in memory. Members are spread over worker processes (one per CPU), so extraction, hashing and label decoding run
in parallel; the archive's own md5/sha1 is computed meanwhile by `ArchiveDigests` in a thread of the caller.

    digests = ArchiveDigests(zip_path, md5, sha1)
    files, facts = unpack(zip_path, [(member name, path in dest), ...], dest, alongside=digests.start,
                          pairs=[(image, annotation), ...], dataset=dataset)
    digests.check()         # raises ChecksumMismatch
"""
from __future__ import annotations

import hashlib
import multiprocessing
import os
import threading
import zipfile
from collections.abc import Callable
from pathlib import Path

from harness.errors import ReproError
from harness.fetch import layout
from harness.fetch.hashing import file_hashes
from harness.registry import datasets
from harness.registry.datasets import Dataset

CHUNK = 64                  # members per task: large enough to amortise the hand-over, small for an even spread
MAX_WORKERS = 8

_zip: zipfile.ZipFile | None = None     # the archive, opened once per unpack() in each process that extracts


def workers() -> int:
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:
        cpus = os.cpu_count() or 1
    return max(1, min(MAX_WORKERS, cpus))


def _facts(kind: str | None, data: bytes, ignored: int) -> tuple | None:
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


def _extract_chunk(task: tuple[str, list[tuple[str, str, str | None]], int]
                   ) -> list[tuple[str, int, str, tuple | None]]:
    """Extract (member, rel, kind) of the open archive into dest; return (rel, size, sha256, facts) of each.
    An error comes back as ("", member, message, None) so the caller raises one ReproError."""
    dest, members, ignored = task
    out = []
    for name, rel, kind in members:
        try:
            data = _zip.read(name)
            target = os.path.join(dest, rel)
            with open(target, "wb") as fh:
                fh.write(data)
        except (zipfile.BadZipFile, OSError, EOFError, ValueError, _zlib_error()) as exc:
            return [("", name, str(exc), None)]          # "" is no file's path: marks the error
        out.append((rel, len(data), hashlib.sha256(data).hexdigest(), _facts(kind, data, ignored)))
    return out


def _zlib_error():
    import zlib
    return zlib.error


def unpack(zip_path: Path, members: list[tuple[str, str]], dest: Path, progress: bool = True,
           processes: int | None = None, alongside: Callable[[], None] | None = None,
           pairs: list[tuple[str, str]] = (), dataset: Dataset | str | None = None
           ) -> tuple[dict[str, list], dict[str, tuple]]:
    """Extract `members` ((name in the zip, path under dest)) into dest, which exists and is empty.
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
        pool = None
        if processes == 1 or len(tasks) == 1:
            _open(str(zip_path))
            results = map(_extract_chunk, tasks)
        else:
            context = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods()
                                                  else None)
            pool = context.Pool(min(processes, len(tasks)), initializer=_open, initargs=(str(zip_path),))
            results = pool.imap_unordered(_extract_chunk, tasks)
        if alongside is not None:
            alongside()
        finished = False
        try:
            for chunk in results:
                for rel, size, digest, fact in chunk:
                    if rel == "":
                        raise ReproError(f"{zip_path}: member {size} is damaged ({digest})",
                                         fix=f"delete the zip and run `repro prepare {ds.id}` again")
                    files[rel] = [size, digest]
                    if fact is not None:
                        facts[rel] = fact
                if bar is not None:
                    bar.update(len(chunk))
            finished = True
        finally:
            if pool is not None:
                if finished:            # idle workers exit on close(); terminate() can wait seconds on its locks
                    pool.close()
                else:
                    pool.terminate()
                pool.join()
            else:
                _open(None)
    finally:
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
                                   f"corrupt or another file",
                                   fix=f"delete it and run `repro prepare {dataset}` again (or pass --zip with the "
                                       f"right file; --md5/--sha1 only if you trust this one)")
    return digests


class ArchiveDigests:
    """md5/sha1 of the archive, computed in a thread (from `start()`) while it is being extracted; `check()` waits
    and raises ChecksumMismatch, if any. Hashing releases the GIL, so the thread barely slows the extraction."""

    def __init__(self, path: Path, md5: str | None, sha1: str | None, dataset: str = datasets.DEFAULT):
        self.path, self.md5, self.sha1, self.dataset = path, md5, sha1, dataset
        self.digests: dict[str, str] = {}
        self.error: BaseException | None = None
        self.thread = threading.Thread(target=self._run, name="archive-digests", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def _run(self) -> None:
        try:
            self.digests = file_hashes(self.path, ("md5", "sha1"), progress=False)
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
