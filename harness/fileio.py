"""The one rule for writing a file and for hashing one.

Every file the harness writes that a reader may open while it is being written (records, job files, lock files,
manifests, batch files, ledgers) goes through `write_bytes_atomic`: a temporary name in the same folder, flushed
and fsynced, renamed over the target, and the folder fsynced, so a kill leaves either the old file or the new one.
`file_sha256` is the one file digest where no progress is shown (`harness.fetch.hashing` adds a bar for big files).
`read_json` is the one way a JSON file of the harness (job, record, batch file) is read: its value, or one
ReproError naming the file and the fix.
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any

from harness.errors import ReproError

CHUNK = 1 << 20          # what a hasher that shows progress reads at a time (harness.fetch.hashing)


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass                         # some filesystems refuse fsync on a folder; the rename is still atomic
    finally:
        os.close(fd)


def write_bytes_atomic(path: Path | str, data: bytes) -> Path:
    """Write DATA to PATH under a temporary name in the same folder, fsync it, rename it over PATH."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)
    return path


def write_text_atomic(path: Path | str, text: str) -> Path:
    return write_bytes_atomic(path, text.encode("utf-8"))


def jsonable(value: Any) -> Any:
    """NaN/inf become null (JSON has no NaN); numpy scalars become Python numbers; paths become strings."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if hasattr(value, "item") and callable(value.item) and getattr(value, "ndim", 1) == 0:
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Path):
        return str(value)
    return value


def write_json_atomic(path: Path | str, data: Any) -> Path:
    """DATA as indented JSON (NaN written as null), atomically."""
    text = json.dumps(jsonable(data), indent=2, allow_nan=False) + "\n"
    return write_text_atomic(path, text)


def file_sha256(path: Path | str) -> str:
    """The sha256 hex digest of a file, read in chunks (hashlib.file_digest)."""
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


def read_json(path: Path | str, fix: str) -> Any:
    """The value of a JSON file; a file that cannot be read or is not JSON is one ReproError with `fix`."""
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except OSError as exc:
        raise ReproError(f"cannot read {path}: {exc.strerror or exc}", fix=fix) from None
    except ValueError as exc:
        raise ReproError(f"{path} is not JSON ({exc})", fix=fix) from None
