"""Which data roots the harness may replace, and one preparation per data root at a time.

A data root is ours when it holds our manifest (layout.MANIFEST): only then may `--force` replace it, and a
synthetic dataset may replace only a synthetic one, and a real dataset only one of the same id. Anything else is
refused, whatever the flags.
`root_lock` serialises the commands preparing one data root, whoever runs them: its lock file lives with the data
root, as `<root name>.lock` in the root's parent folder (the root itself is replaced whole, so it cannot hold it),
where every user and every REPRO_HOME that prepares that root finds the same file. It is made writable by all
(mode 0666) so that another user's command can take it too, and it is left in place (deleting a lock file another
command waits on would let a third one in).
"""
from __future__ import annotations

import sys
from contextlib import contextmanager
from pathlib import Path

from harness.errors import ReproError
from harness.fetch import atomic, layout
from harness.registry import datasets


def origin_kind(root: Path) -> str | None:
    """'synthetic', or the dataset's id ('ade20k') for a real one, for a root holding our manifest; None for
    anything else."""
    try:
        manifest = layout.read_manifest(root)
    except ReproError:
        return None
    dataset = manifest.get("dataset")
    if not isinstance(dataset, str) or not dataset:
        return None
    return "synthetic" if (manifest.get("origin") or {}).get("kind") == "synthetic" else dataset


def _title(dataset_id: str) -> str:
    known = datasets.all_datasets()
    return known[dataset_id].title if dataset_id in known else dataset_id


def synthetic_default(dataset_id: str) -> str:
    """Where `repro prepare <id> --synthetic N` puts its data unless told, as the messages spell it."""
    return f"<REPRO_HOME>/data/{dataset_id}{datasets.SYNTHETIC}/{datasets.get(dataset_id).folder}"


def check_replaceable(root: Path, by: str, dataset: str = datasets.DEFAULT) -> None:
    """Raise unless root is missing, empty, or a dataset we made that `by` may replace: by = 'synthetic' (a
    synthetic stand-in for `dataset`) or a dataset id (its real data)."""
    if not (root.exists() or root.is_symlink()) or atomic.is_empty_dir(root):
        return
    kind = origin_kind(root) if root.is_dir() and not root.is_symlink() else None
    if kind is None:
        raise ReproError(f"{root} holds files that `repro prepare` did not make (no {layout.MANIFEST}); "
                         f"it is never replaced or deleted",
                         fix="move them away, or choose another --data-root")
    if by == "synthetic" and kind != "synthetic":
        raise ReproError(f"{root} holds a real {_title(kind)} dataset, which is never replaced by a synthetic one",
                         fix=f"choose another --data-root for the synthetic dataset (default "
                             f"{synthetic_default(dataset)})")
    if by != "synthetic" and kind not in ("synthetic", by):
        raise ReproError(f"{root} holds the {_title(kind)} dataset, which is never replaced by {_title(by)}",
                         fix=f"choose another --data-root for {_title(by)}")


class LockUnavailable(ReproError):
    """The lock file cannot be made or opened (a folder this user may not write in)."""


def lock_path(root: Path) -> Path:
    """The lock file of a data root: `<name>.lock` beside it, in its parent folder."""
    root = Path(root)
    return root.parent / f"{root.name}.lock"


@contextmanager
def root_lock(root: Path):
    """Hold the lock of one data root; a second command waits (saying so) and then sees the first one's result."""
    from filelock import FileLock, Timeout

    path = lock_path(root)
    lock = FileLock(str(path), mode=0o666)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        lock.acquire(timeout=0)
    except Timeout:
        print(f"waiting for another `repro prepare` into {root} to finish (lock {path})", file=sys.stderr,
              flush=True)
        lock.acquire()
    except OSError as exc:
        raise LockUnavailable(f"cannot take the prepare lock {path} ({exc.strerror or exc}): preparing {root} needs a "
                         f"folder it may write in", fix="ask the owner of that folder, or choose another --data-root"
                         ) from None
    try:
        yield
    finally:
        lock.release()
