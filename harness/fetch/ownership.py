"""Which data roots the harness may replace, and one preparation per data root at a time.

A data root is ours when it holds our manifest (layout.MANIFEST): only then may `--force` replace it, and a
synthetic dataset may replace only a synthetic one. Anything else is refused, whatever the flags.
`root_lock` serialises the commands preparing one data root on this machine; the lock files live under
<REPRO_HOME>/locks so the user's folders hold nothing but the dataset.
"""
from __future__ import annotations

import hashlib
import sys
from contextlib import contextmanager
from pathlib import Path

from harness.errors import ReproError
from harness.fetch import atomic, layout

SYNTHETIC_DEFAULT = "<REPRO_HOME>/data/ade20k-synthetic/ADEChallengeData2016"


def origin_kind(root: Path) -> str | None:
    """'ade20k' or 'synthetic' for a root holding our manifest; None for anything else."""
    try:
        manifest = layout.read_manifest(root)
    except ReproError:
        return None
    if manifest.get("dataset") != "ade20k":
        return None
    return (manifest.get("origin") or {}).get("kind") or "ade20k"


def check_replaceable(root: Path, by: str) -> None:
    """Raise unless root is missing, empty, or a dataset we made that a `by` ('ade20k'/'synthetic') may replace."""
    if not (root.exists() or root.is_symlink()) or atomic.is_empty_dir(root):
        return
    kind = origin_kind(root) if root.is_dir() and not root.is_symlink() else None
    if kind is None:
        raise ReproError(f"{root} holds files that `repro prepare` did not make (no {layout.MANIFEST}); "
                         f"it is never replaced or deleted",
                         fix="move them away, or choose another --data-root")
    if by == "synthetic" and kind != "synthetic":
        raise ReproError(f"{root} holds a real ADE20K dataset, which is never replaced by a synthetic one",
                         fix=f"choose another --data-root for the synthetic dataset (default {SYNTHETIC_DEFAULT})")


def lock_path(root: Path) -> Path:
    from harness.paths import repro_home

    digest = hashlib.sha256(str(root).encode()).hexdigest()[:16]
    return repro_home() / "locks" / f"{root.name}-{digest}.lock"


@contextmanager
def root_lock(root: Path):
    """Hold the lock of one data root; a second command waits (saying so) and then sees the first one's result."""
    from filelock import FileLock, Timeout

    path = lock_path(root)
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(str(path))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        print(f"waiting for another `repro prepare` into {root} to finish", file=sys.stderr, flush=True)
        lock.acquire()
    try:
        yield
    finally:
        lock.release()
