"""Build a folder beside its destination and move it into place only when complete.

A staging folder is a sibling of the destination named `.<name>.partial-<host>-<pid>`, on the same filesystem, so
the final step is one rename: a process killed before it leaves the destination exactly as it was. Staging
folders left by dead processes of this host are removed by the next `staging_dir` call for the same destination
(other hosts' are left alone: their processes cannot be checked from here).
"""
from __future__ import annotations

import os
import shutil
import socket
from pathlib import Path

from harness.errors import ReproError


def _prefix(dest: Path) -> str:
    host = socket.gethostname().replace("-", "_").replace("/", "_") or "host"
    return f".{dest.name}.partial-{host}-"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def staging_dir(dest: Path) -> Path:
    """A fresh, empty staging folder for dest; stale ones from dead processes are removed first."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    for stale in dest.parent.glob(_prefix(dest) + "*"):
        pid = stale.name.rsplit("-", 1)[-1]
        if pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)):
            shutil.rmtree(stale, ignore_errors=True)
    tmp = dest.parent / f"{_prefix(dest)}{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    return tmp


def move_into_place(built: Path, dest: Path, replace: bool = False) -> None:
    """Rename the complete folder `built` to `dest`. An existing dest is an error unless replace=True, when the
    old folder is first renamed aside (`.<name>.old-<pid>`) and deleted only after the new one is in place."""
    old = None
    if is_empty_dir(dest):
        dest.rmdir()
    if dest.exists() or dest.is_symlink():
        if not replace:
            raise ReproError(f"{dest} already exists", fix="remove it, choose another --data-root, or pass --force")
        old = dest.parent / f".{dest.name}.old-{os.getpid()}"
        os.replace(dest, old)
    os.replace(built, dest)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def is_empty_dir(path: Path) -> bool:
    return path.is_dir() and not any(path.iterdir())
