"""Build a folder beside its destination and move it into place only when complete.

A staging folder is a sibling of the destination named `.<name>.partial-<host>-<pid>`, on the same filesystem, so
the final step is one rename: a process killed before it leaves the destination exactly as it was. Replacing a
destination first renames the old one to `.<name>.old-<host>-<pid>` and deletes it once the new one is in place.
Leftovers of dead processes of this host are handled by the next `clean_stale` (every `staging_dir` call runs it):
staging folders are removed; an old folder is renamed back when the destination is missing (the process died
between the two renames), else removed. Other hosts' leftovers are left alone: their processes cannot be checked
from here.
"""
from __future__ import annotations

import os
import shutil
import socket
from pathlib import Path

from harness.errors import ReproError


def _host() -> str:
    return socket.gethostname().replace("-", "_").replace("/", "_") or "host"


def _prefix(dest: Path, kind: str = "partial") -> str:
    return f".{dest.name}.{kind}-{_host()}-"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _stale(dest: Path, kind: str) -> list[Path]:
    """This host's `kind` leftovers for dest whose process is gone."""
    found = []
    for path in dest.parent.glob(_prefix(dest, kind) + "*"):
        pid = path.name.rsplit("-", 1)[-1]
        if pid.isdigit() and int(pid) != os.getpid() and not _alive(int(pid)):
            found.append(path)
    return sorted(found)


def clean_stale(dest: Path) -> None:
    """Remove dead processes' staging folders; restore or remove their old (replaced) folders."""
    if not dest.parent.is_dir():
        return
    for stale in _stale(dest, "partial"):
        shutil.rmtree(stale, ignore_errors=True)
    for old in _stale(dest, "old"):
        if not (dest.exists() or dest.is_symlink()):
            os.replace(old, dest)           # killed between the two renames: the old folder is still whole
        else:
            shutil.rmtree(old, ignore_errors=True)


def staging_dir(dest: Path) -> Path:
    """A fresh, empty staging folder for dest; stale leftovers of dead processes are cleaned first."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    clean_stale(dest)
    tmp = dest.parent / f"{_prefix(dest)}{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    return tmp


def move_into_place(built: Path, dest: Path, replace: bool = False) -> None:
    """Rename the complete folder `built` to `dest`. An existing dest is an error unless replace=True, when the
    old folder is first renamed aside (`.<name>.old-<host>-<pid>`) and deleted only after the new one is in place.
    The caller decides whether dest may be replaced at all (see ownership.check_replaceable)."""
    old = None
    if is_empty_dir(dest):
        dest.rmdir()
    if dest.exists() or dest.is_symlink():
        if not replace:
            raise ReproError(f"{dest} already exists", fix="remove it, choose another --data-root, or pass --force")
        old = dest.parent / f"{_prefix(dest, 'old')}{os.getpid()}"
        os.replace(dest, old)
    os.replace(built, dest)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def is_empty_dir(path: Path) -> bool:
    return path.is_dir() and not any(path.iterdir())
