"""Streaming file hashes, with a progress bar for large files; without a bar, a sha256 is harness.fileio's."""
from __future__ import annotations

import hashlib
from pathlib import Path

from harness.fileio import CHUNK, file_sha256

BAR_FROM = 64 << 20       # files at least this big get a progress bar


def file_hashes(path: Path, algorithms: tuple[str, ...] = ("sha256",), progress: bool = True) -> dict[str, str]:
    """Hex digests of `path` for each algorithm, reading the file once."""
    size = path.stat().st_size
    if algorithms == ("sha256",) and not (progress and size >= BAR_FROM):
        return {"sha256": file_sha256(path)}           # no bar to show: the one file digest
    hashers = {name: hashlib.new(name) for name in algorithms}
    bar = None
    if progress and size >= BAR_FROM:
        from harness.console import bar as progress_bar
        bar = progress_bar(size, f"hashing {path.name}", unit="B", unit_scale=True, unit_divisor=1024)
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            for h in hashers.values():
                h.update(chunk)
            if bar is not None:
                bar.update(len(chunk))
    if bar is not None:
        bar.close()
    return {name: h.hexdigest() for name, h in hashers.items()}


def sha256(path: Path, progress: bool = True) -> str:
    return file_hashes(path, ("sha256",), progress)["sha256"]
