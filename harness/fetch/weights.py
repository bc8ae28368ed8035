"""Released and pretrained weights: huggingface_hub downloads them, we prove they are the right bytes.

huggingface_hub does the transfer (its cache under <REPRO_HOME>/weights/hf, etag handling, in-call resume with
HTTP Range, progress bar); the revision is pinned to the commit in reproduction.toml and the endpoint can be a
mirror (`--endpoint`, else HF_ENDPOINT). Then our check, in this order of trust:

1. the sha256 published in reproduction.toml, where there is one;
2. else the sha256 recorded in <REPRO_HOME>/weights/lock.json by the first verified download of this
   repo@revision:filename;
3. else, for that first download, the sha256 the server itself declared (a Git LFS file's etag is its
   sha256) and the size it declared; the result is written to the lock file.

A file that fails its check is moved to <REPRO_HOME>/weights/quarantine/ and the reason printed; the cache entry is
removed so the next `repro download` fetches it again. `resolve()` is what loading code calls: it returns a path
only after the hash check passed, in this command or in an earlier one that saw the same file (the lock file records
size, mtime and inode of every verified file, so a 1.77 GB checkpoint is hashed once, not by every eval).
`repro download ID --from-file PATH` checks a file already on disk the same way and registers it in the lock file,
where `resolve()` finds it; that file is never moved, not even when it later fails its check.

Weights at a plain URL (mmseg's model zoo) go through harness/fetch/http.py instead (resumable with HTTP Range,
into <REPRO_HOME>/weights/url/); their file name ends in the first 8 hex digits of their sha256 (mmseg's
publish_model), which the download must match before its full sha256 is written to the lock file.
"""
from __future__ import annotations

import json
import os
import re
import shutil
from contextlib import contextmanager
from pathlib import Path

from harness import clock
from harness.errors import ReproError
from harness.fetch.hashing import sha256 as file_sha256
from harness.fileio import write_text_atomic
from harness.paths import weights_dir
from harness.registry import Reproduction, UrlWeights, WeightsFile

WHICH = ("weights", "pretrained")
LOCK = "lock.json"
SHA256 = re.compile(r"^[0-9a-f]{64}$")
APPROX_TOLERANCE = 0.02        # a file whose size is more than 2 % off the published approximate size is wrong


def hf_cache() -> Path:
    return weights_dir() / "hf"


def url_cache() -> Path:
    return weights_dir() / "url"


def quarantine_dir() -> Path:
    return weights_dir() / "quarantine"


def key(wf: WeightsFile | UrlWeights) -> str:
    if isinstance(wf, UrlWeights):
        return wf.url
    return f"{wf.repo}@{wf.revision}:{wf.filename}"


def weights_file(rep: Reproduction, which: str = "weights") -> WeightsFile:
    if which not in WHICH:
        raise ValueError(f"which must be one of {WHICH}, not {which!r}")
    wf = getattr(rep, which)
    if wf is None:
        kind = "released" if which == "weights" else "pretrained"
        raise ReproError(f"reproduction '{rep.id}' has no {kind} weights",
                         fix="its reproduction.toml lists none; train it with `repro train` instead"
                         if which == "weights" else "its reproduction.toml lists none")
    return wf


def download_command(rep: Reproduction, which: str) -> str:
    return f"repro download {rep.id}" + (" --pretrained" if which == "pretrained" else "")


# ---------------------------------------------------------------------------------------------- lock file

@contextmanager
def _locked_lockfile():
    from filelock import FileLock

    weights_dir().mkdir(parents=True, exist_ok=True)
    with FileLock(str(weights_dir() / f"{LOCK}.lock")):
        yield


def read_lock() -> dict:
    path = weights_dir() / LOCK
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return {}
    except (OSError, ValueError) as exc:
        raise ReproError(f"{path} is unreadable ({exc})",
                         fix="restore it from a backup; deleting it forgets the hashes of unpublished files") from None


def _write_lock(data: dict) -> None:
    write_text_atomic(weights_dir() / LOCK, json.dumps(data, indent=2, sort_keys=True) + "\n")   # fsynced


def _fingerprint(path: Path) -> list[int]:
    st = path.stat()
    return [st.st_size, st.st_mtime_ns, st.st_ino]


def _record(wf: WeightsFile, path: Path, digest: str, source: str, local: bool) -> None:
    with _locked_lockfile():
        data = read_lock()
        entry = data.get(key(wf), {})
        entry.update({"sha256": digest, "size": path.stat().st_size})
        entry.setdefault("first_verified", clock.iso_now())
        entry.setdefault("source", source)
        checked = entry.setdefault("checked", {})
        checked[str(path)] = _fingerprint(path)
        if local:
            entry["path"] = str(path)
        data[key(wf)] = entry
        _write_lock(data)


# ---------------------------------------------------------------------------------------------- checking

def _approx_bytes(text: str) -> int | None:
    m = re.fullmatch(r"\s*([\d.]+)\s*([KMGT]?)B\s*", text or "")
    if not m:
        return None
    return int(float(m.group(1)) * 1000 ** " KMGT".index(m.group(2) or " "))


def expected(wf: WeightsFile) -> tuple[str | None, str]:
    """The sha256 the file must have and where that comes from (None: not known yet)."""
    if wf.sha256:
        return wf.sha256.lower(), "published in reproduction.toml"
    entry = read_lock().get(key(wf))
    if entry:
        return entry["sha256"], f"recorded in {weights_dir() / LOCK} on {entry.get('first_verified', '?')}"
    return None, ""


def _mismatch(wf: WeightsFile, path: Path, declared_sha: str | None = None, declared_size: int | None = None,
              progress: bool = True) -> tuple[str | None, str]:
    """(reason it is wrong or None, its sha256)."""
    size = path.stat().st_size
    if wf.size is not None and size != wf.size:
        return f"size {size} bytes, published {wf.size}", ""
    if declared_size is not None and size != declared_size:
        return f"size {size} bytes, the server declared {declared_size}", ""
    approx = _approx_bytes(wf.approx_size)
    if approx and abs(size - approx) > APPROX_TOLERANCE * approx:
        return f"size {size} bytes, published about {wf.approx_size}", ""
    digest = file_sha256(path, progress=progress)
    prefix = getattr(wf, "sha256_prefix", None)
    if prefix and not digest.startswith(prefix.lower()):
        return (f"sha256 {digest[:8]}… does not start with {prefix}, as its file name {wf.filename} says "
                f"(mmseg's publish_model names a file after its sha256)"), digest
    want, source = expected(wf)
    if want is None and declared_sha:
        want, source = declared_sha, "declared by the server (Git LFS etag)"
    if want is not None and digest != want:
        return f"sha256 {digest}, expected {want} ({source})", digest
    return None, digest


def quarantine(path: Path, reason: str, cache_pointer: Path | None = None) -> Path:
    """Move a bad file aside (never delete it) and drop the cache entry pointing at it; return where it went."""
    quarantine_dir().mkdir(parents=True, exist_ok=True)
    real = path.resolve()
    stamp = clock.stamp()
    dest = quarantine_dir() / f"{Path(real).name[:80]}.{stamp}.{os.getpid()}"
    if path.name != real.name:
        dest = quarantine_dir() / f"{path.name}.{stamp}.{os.getpid()}"
    shutil.move(str(real), dest)
    write_text_atomic(dest.with_name(dest.name + ".reason"), f"{path}\n{reason}\n")
    for link in (cache_pointer, path):
        if link is not None and link.is_symlink():
            link.unlink()
    return dest


def _unregister(wf: WeightsFile, path: Path) -> None:
    """Forget a registered (--from-file) path: the lock file keeps the reference hash, not the file."""
    with _locked_lockfile():
        data = read_lock()
        entry = data.get(key(wf))
        if not entry:
            return
        entry.get("checked", {}).pop(str(path), None)
        if entry.get("path") == str(path):
            del entry["path"]
        _write_lock(data)


def _reject(rep: Reproduction, which: str, wf: WeightsFile, path: Path, reason: str,
            pointer: Path | None) -> ReproError:
    if not _in_cache(path):         # the user's own file (--from-file): never moved, only no longer used
        _unregister(wf, path)
        return ReproError(f"{wf.filename} for {rep.id} failed verification: {reason}; {path} is left where it is "
                          f"and no longer registered",
                          fix=f"run `{download_command(rep, which)}`, or `{download_command(rep, which)} "
                              f"--from-file PATH` with a good copy")
    moved = quarantine(path, reason, pointer)
    return ReproError(f"{wf.filename} for {rep.id} failed verification: {reason}; moved to {moved}",
                      fix=f"run `{download_command(rep, which)}` to fetch it again (from another --endpoint if it "
                          f"persists)")


# ---------------------------------------------------------------------------------------------- locating

def cached_path(wf: WeightsFile) -> Path | None:
    """The file in the huggingface_hub or URL cache or registered with --from-file, without any network access."""
    if isinstance(wf, UrlWeights):
        if (url_cache() / wf.filename).is_file():
            return url_cache() / wf.filename
    else:
        from huggingface_hub import try_to_load_from_cache

        found = try_to_load_from_cache(wf.repo, wf.filename, cache_dir=str(hf_cache()), revision=wf.revision)
        if isinstance(found, str) and os.path.exists(found):
            return Path(found)
    entry = read_lock().get(key(wf), {})
    if entry.get("path") and os.path.isfile(entry["path"]):
        return Path(entry["path"])
    return None


def _quarantined(wf: WeightsFile) -> bool:
    folder = quarantine_dir()
    if not folder.is_dir():
        return False
    for reason in folder.glob("*.reason"):
        first = reason.read_text().split("\n", 1)[0]
        if first.endswith(wf.filename) or Path(first).name == Path(wf.filename).name:
            return True
    return False


def status(rep: Reproduction, which: str = "weights") -> str:
    """One word for `repro list`, without hashing or network:
    'none' (the reproduction lists no such weights), 'missing', 'quarantined' (missing, a bad copy was moved
    aside), 'unverified' (on disk but not checked by `repro download`, or changed since), 'verified'."""
    wf = getattr(rep, which, None)
    if wf is None:
        return "none"
    path = cached_path(wf)
    if path is None:
        return "quarantined" if _quarantined(wf) else "missing"
    entry = read_lock().get(key(wf), {})
    if wf.sha256 and entry and entry.get("sha256") != wf.sha256.lower():
        return "unverified"
    if entry.get("checked", {}).get(str(path)) == _fingerprint(path):
        return "verified"
    return "unverified"


def resolve(rep: Reproduction, which: str = "weights", progress: bool = True) -> Path:
    """The verified local file of rep's released ('weights') or pretrained ('pretrained') weights.

    No network. A file the lock file saw verified with the same size, mtime and inode is not hashed again; any
    other is hashed and compared with the published or locked sha256, and a mismatch quarantines a downloaded
    file (a --from-file one is only unregistered). Raises ReproError with the `repro download ...` fix when the
    file is missing or unverified.
    """
    return resolve_with_sha256(rep, which, progress)[0]


def resolve_with_sha256(rep: Reproduction, which: str = "weights", progress: bool = True) -> tuple[Path, str]:
    """resolve(), and the file's sha256: what a run record needs, without hashing the file a second time."""
    wf = weights_file(rep, which)
    path = cached_path(wf)
    if path is None:
        raise ReproError(f"{which} of {rep.id} ({wf.filename}, {wf.approx_size or 'size unknown'}) are not in "
                         f"{url_cache() if isinstance(wf, UrlWeights) else hf_cache()}" + (" (a bad copy was quarantined)" if _quarantined(wf) else ""),
                         fix=f"run `{download_command(rep, which)}`, or `{download_command(rep, which)} "
                             f"--from-file PATH` for a copy already on disk")
    want, _ = expected(wf)
    if want is None:
        raise ReproError(f"{path} has never been verified (no published sha256 and no entry in "
                         f"{weights_dir() / LOCK})", fix=f"run `{download_command(rep, which)}` to verify it")
    if _verified_before(wf, path, want):
        return path, want
    pointer = path if path.is_symlink() else None
    reason, digest = _mismatch(wf, path, progress=progress)
    if reason:
        raise _reject(rep, which, wf, path, reason, pointer)
    _record(wf, path, digest, "resolve", local=not _in_cache(path))
    return path, digest


def _verified_before(wf: WeightsFile, path: Path, want: str) -> bool:
    """The lock file saw this very file (size, mtime, inode) verified against the sha256 it must have."""
    entry = read_lock().get(key(wf), {})
    return entry.get("sha256") == want and entry.get("checked", {}).get(str(path)) == _fingerprint(path)


def sha256_of(rep: Reproduction, which: str = "weights") -> str | None:
    """The sha256 that `resolve()` checks the file against (published, else locked); None if neither exists.
    No hashing: use it to record the hash of a file `resolve()` has just returned."""
    return expected(weights_file(rep, which))[0]


def _in_cache(path: Path) -> bool:
    """A file the harness downloaded (so it may be quarantined), not the user's own."""
    return any(path.absolute().is_relative_to(cache) for cache in (hf_cache(), url_cache()))


# ---------------------------------------------------------------------------------------------- downloading

def _server_metadata(wf: WeightsFile, endpoint: str | None) -> tuple[str | None, int | None]:
    """The sha256 (LFS etag) and size the endpoint declares, where it can be asked; (None, None) otherwise."""
    from huggingface_hub import get_hf_file_metadata, hf_hub_url

    try:
        meta = get_hf_file_metadata(hf_hub_url(wf.repo, wf.filename, revision=wf.revision, endpoint=endpoint),
                                    endpoint=endpoint)
    except Exception:       # noqa: BLE001 - metadata is a bonus check; the download itself reports errors
        return None, None
    etag = (meta.etag or "").lower()
    return (etag if SHA256.match(etag) else None), meta.size


def _hf_error(rep: Reproduction, which: str, wf: WeightsFile, exc: Exception, endpoint: str | None) -> ReproError:
    from huggingface_hub import constants
    from huggingface_hub.errors import (
        EntryNotFoundError,
        HfHubHTTPError,
        LocalEntryNotFoundError,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    where = endpoint or constants.ENDPOINT
    if isinstance(exc, LocalEntryNotFoundError) and isinstance(exc.__cause__, HfHubHTTPError):
        exc = exc.__cause__         # the server answered, with an error: report that, not "offline"
    local_fix = f"`{download_command(rep, which)} --from-file PATH` for a copy already on disk"
    if isinstance(exc, LocalEntryNotFoundError) or "offline" in type(exc).__name__.lower():
        offline = constants.is_offline_mode()
        why = "HF_HUB_OFFLINE=1 is set" if offline else f"{where} cannot be reached"
        return ReproError(f"{wf.filename} ({wf.approx_size}) for {rep.id} is not in the cache and {why}",
                          fix=f"run `{download_command(rep, which)}` with network access"
                              f"{' and HF_HUB_OFFLINE unset' if offline else ''} (it fetches {wf.url}), or {local_fix}")
    if isinstance(exc, (RepositoryNotFoundError, RevisionNotFoundError)):
        return ReproError(f"{where} has no {wf.repo} at revision {wf.revision} ({type(exc).__name__})",
                          fix=f"check --endpoint/HF_ENDPOINT, or {local_fix}")
    code = getattr(getattr(exc, "response", None), "status_code", "?")
    if isinstance(exc, EntryNotFoundError) or code == 404:
        return ReproError(f"{where} has no file {wf.filename} in {wf.repo}@{wf.revision[:12]} (HTTP 404)",
                          fix=f"check --endpoint/HF_ENDPOINT, or {local_fix}")
    if isinstance(exc, HfHubHTTPError):
        return ReproError(f"downloading {wf.filename} from {where} failed: HTTP {code}",
                          fix=f"retry `{download_command(rep, which)}` later or with another --endpoint, or {local_fix}")
    text = " ".join(str(exc).split())[:300]
    return ReproError(f"downloading {wf.filename} from {where} failed: {type(exc).__name__}: {text}",
                      fix=f"retry `{download_command(rep, which)}` (a partial transfer is not kept as good), or "
                          f"{local_fix}")


def download(rep: Reproduction, which: str = "weights", endpoint: str | None = None, progress: bool = True) -> Path:
    """Fetch (or find in the cache) and verify one weights file; record it in the lock file; return its path."""
    from huggingface_hub import hf_hub_download

    wf = weights_file(rep, which)
    if isinstance(wf, UrlWeights):
        return _download_url(rep, which, wf, endpoint, progress)
    endpoint = (endpoint or os.environ.get("HF_ENDPOINT") or "").rstrip("/") or None   # read now, not at import
    from harness import console
    if not progress or not console.is_terminal():   # its bar redraws with \r: a log would get one glued line
        from huggingface_hub.utils import disable_progress_bars
        disable_progress_bars()
    try:
        path = Path(hf_hub_download(wf.repo, wf.filename, revision=wf.revision, cache_dir=str(hf_cache()),
                                    endpoint=endpoint))
    except ReproError:
        raise
    except Exception as exc:        # every failure becomes one line naming it and the fix
        raise _hf_error(rep, which, wf, exc, endpoint) from exc
    want = expected(wf)[0]
    if want is not None and _verified_before(wf, path, want):       # already in the cache, verified as it is
        return path
    declared_sha, declared_size = (None, None)
    if want is None:                 # first download: also check what the server declares
        declared_sha, declared_size = _server_metadata(wf, endpoint)
        if declared_sha is None:
            declared_sha = _blob_name_sha(path)
    reason, digest = _mismatch(wf, path, declared_sha, declared_size, progress)
    if reason:
        raise _reject(rep, which, wf, path, reason, path if path.is_symlink() else None)
    _record(wf, path, digest, f"huggingface_hub from {endpoint or 'default endpoint'}", local=False)
    return path


def mirrored(url: str, endpoint: str | None) -> str:
    """`--endpoint` for a URL source: the same path on another host (a mirror, or a test's loopback server)."""
    if not endpoint:
        return url
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    return endpoint.rstrip("/") + parts.path + (f"?{parts.query}" if parts.query else "")


def _download_url(rep: Reproduction, which: str, wf: UrlWeights, endpoint: str | None, progress: bool) -> Path:
    """Fetch a URL source (resuming a partial transfer), check the sha256 prefix its name carries, lock the rest."""
    from harness.fetch.http import download_url

    if not wf.sha256_prefix and not wf.sha256:
        raise ReproError(f"{wf.url} names no sha256 prefix (`-<8 hex>.pth`) and none is published, so a download "
                         f"of it cannot be checked", fix=f"verify a copy yourself and register it with "
                                                         f"`{download_command(rep, which)} --from-file PATH`")
    dest = url_cache() / wf.filename
    want = expected(wf)[0]
    if dest.is_file() and want is not None and _verified_before(wf, dest, want):
        return dest
    url = mirrored(wf.url, endpoint)
    path = download_url(url, dest, progress=progress,
                        fix=f"run `{download_command(rep, which)}` again: it resumes the partial file")
    reason, digest = _mismatch(wf, path, progress=progress)
    if reason:
        raise _reject(rep, which, wf, path, reason, None)
    _record(wf, path, digest, url, local=False)
    return path


def download_locked_url(url: str, dest: Path, endpoint: str | None = None, progress: bool = False,
                        fix: str = "") -> tuple[Path, str]:
    """A file at a URL whose name carries no hash (a training log): fetched through http.py (resumable); its sha256
    is written to the lock file at the first download and checked against it after. (path, sha256)."""
    from harness.fetch.http import download_url

    wf = UrlWeights(url, None)
    source = mirrored(url, endpoint)
    path = download_url(source, dest, progress=progress, fix=fix)
    reason, digest = _mismatch(wf, path, progress=progress)
    if reason:
        moved = quarantine(path, reason)
        raise ReproError(f"{url} failed verification: {reason}; moved to {moved}",
                         fix=fix or "download it again (from another --endpoint if it persists)")
    _record(wf, path, digest, source, local=False)
    return path, digest


def _blob_name_sha(path: Path) -> str | None:
    """huggingface_hub names a cached blob after its etag: for Git LFS files that is the content's sha256."""
    name = path.resolve().name.lower()
    return name if SHA256.match(name) else None


def register_file(rep: Reproduction, which: str, source: Path, progress: bool = True) -> Path:
    """Verify a file already on disk (size, sha256 against the published or locked value) and register it in
    the lock file so `resolve()` uses it in place. A file without any known hash becomes the locked reference."""
    wf = weights_file(rep, which)
    source = Path(source).expanduser().resolve()
    if not source.is_file():
        raise ReproError(f"--from-file {source} is not a file", fix="pass the path of the downloaded weights file")
    reason, digest = _mismatch(wf, source, progress=progress)
    if reason:
        raise ReproError(f"{source} is not {wf.filename} of {rep.id}: {reason}",
                         fix=f"pass the right file, or run `{download_command(rep, which)}` to download it")
    _record(wf, source, digest, f"--from-file {source}", local=True)
    return source


# ---------------------------------------------------------------------------------------------- CLI entry

def download_cli(ids: tuple[str, ...], pretrained: bool, all_: bool, endpoint: str | None,
                 from_file: Path | None):
    """`repro download`: yields the lines to print, one per file. With several files it carries on past a
    failure (its line says why) and raises one ReproError at the end; a single file's failure raises at once."""
    from harness import registry

    if from_file is not None:
        if len(ids) != 1 or all_:
            raise ReproError("--from-file registers one file: give exactly one reproduction id",
                             fix="e.g. `repro download eva02_L_sz512 --from-file ~/eva02_L_ade_seg_upernet_sz512.pth`")
        rep = registry.get(ids[0])
        which = "pretrained" if pretrained else "weights"
        path = register_file(rep, which, from_file)
        yield f"{rep.id} {which}: verified and registered {path}"
        return
    if all_:
        reps = list(registry.all_reproductions().values())
    elif ids:
        reps = [registry.get(i) for i in ids]
    else:
        raise ReproError("no reproduction given", fix="name one (see `repro list`) or pass --all")
    failures, seen = [], set()
    for rep in reps:
        for which in (("weights", "pretrained") if pretrained else ("weights",)):
            wf = getattr(rep, which)
            if wf is None:
                if not all_:
                    yield f"{rep.id} {which}: none listed, nothing to download"
                continue
            if key(wf) in seen:
                continue
            seen.add(key(wf))
            try:
                path = download(rep, which, endpoint)
                yield f"{rep.id} {which}: verified {path}"
            except ReproError as exc:
                if len(reps) == 1 and not pretrained:
                    raise
                failures.append(f"{rep.id} {which}")
                yield f"{rep.id} {which}: FAILED {exc.one_line()}"
    if failures:
        raise ReproError(f"{len(failures)} download(s) failed: {', '.join(failures)} (reasons above)",
                         fix="fix each as its line says, then run the same command again")
