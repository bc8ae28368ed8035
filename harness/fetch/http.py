"""Downloading one URL to one file, resumably.

The transfer goes to `<dest>.part`; an interrupted transfer (dropped connection, stall, killed process) keeps it,
and the next call asks the server for the rest with an HTTP Range header. A server that ignores the Range header
is answered by starting over. The `.part` file is renamed to `dest` only when the server's full length has
arrived; checking the content (md5/sha1/sha256) is the caller's job. Connection and 5xx errors are retried by
urllib3 with backoff; a stream that breaks mid-file is resumed up to `retries` times in the same call.
"""
from __future__ import annotations

import os
from pathlib import Path

from harness.errors import ReproError

CHUNK = 64 << 10          # at most this much is lost when a connection drops mid-chunk


def _session(retries: int, backoff: float):
    import requests
    from requests.adapters import HTTPAdapter
    from urllib3.util.retry import Retry

    retry = Retry(total=retries, connect=retries, read=retries, status=retries, backoff_factor=backoff,
                  status_forcelist=(500, 502, 503, 504), allowed_methods=frozenset({"GET", "HEAD"}),
                  raise_on_status=False, respect_retry_after_header=True)
    session = requests.Session()
    adapter = HTTPAdapter(max_retries=retry)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


def download_url(url: str, dest: Path, timeout: float = 30.0, retries: int = 3, backoff: float = 0.25,
                 progress: bool = True, fix: str = "") -> Path:
    """Fetch url to dest (resuming dest.part if present) and return dest; raise ReproError on failure.

    timeout: seconds without any data before a connection counts as stalled.
    An existing dest is returned as is (the caller verifies it and removes it if it is wrong).
    """
    import requests

    dest = Path(dest)
    if dest.is_file():
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    fix = fix or f"run the same command again to resume (the partial file {part} is kept)"
    session = _session(retries, backoff)
    failures = 0
    try:
        while True:
            have = part.stat().st_size if part.exists() else 0
            headers = {"Range": f"bytes={have}-", "Accept-Encoding": "identity"} if have else \
                {"Accept-Encoding": "identity"}
            try:
                done = _transfer(session, url, part, have, headers, timeout, progress)
            except (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError) as exc:
                grown = part.exists() and part.stat().st_size > have
                failures = 0 if grown else failures + 1
                if failures > retries:
                    raise ReproError(f"downloading {url} failed: {_short(exc)}", fix=fix) from None
                continue
            if done:
                os.replace(part, dest)
                return dest
    finally:
        session.close()


def _short(exc: Exception) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text[:200]}"


def _transfer(session, url: str, part: Path, have: int, headers: dict, timeout: float, progress: bool) -> bool:
    """One GET; appends to part. True when the whole file has arrived."""
    with session.get(url, headers=headers, stream=True, timeout=(timeout, timeout)) as r:
        if r.status_code == 416 and have:          # asked past the end: the part may be whole already
            total = _total_from_content_range(r.headers.get("Content-Range"))
            if total == have:
                return True
            part.unlink()
            return False
        if r.status_code >= 400:
            raise ReproError(f"downloading {url} failed: HTTP {r.status_code} {r.reason}",
                             fix="check the URL (--url) or try again later; nothing was kept as good")
        if have and r.status_code == 200:          # the server ignored Range: start over
            have = 0
        elif have and r.status_code == 206:
            start = _start_from_content_range(r.headers.get("Content-Range"))
            if start != have:
                raise ReproError(f"downloading {url}: server resumed at byte {start}, asked for {have}",
                                 fix=f"delete {part} and run the same command again")
        length = r.headers.get("Content-Length")
        total = have + int(length) if length is not None else None
        bar = None
        if progress:
            from harness.console import bar as progress_bar
            bar = progress_bar(total, f"downloading {Path(url.split('?')[0]).name}", unit="B", unit_scale=True,
                               unit_divisor=1024, initial=have)
        try:
            with open(part, "ab" if have else "wb") as fh:
                for chunk in r.iter_content(CHUNK):
                    fh.write(chunk)
                    if bar is not None:
                        bar.update(len(chunk))
        finally:
            if bar is not None:
                bar.close()
        size = part.stat().st_size
        if total is not None and size < total:
            import requests
            raise requests.ConnectionError(f"connection closed at byte {size} of {total}")
        return True


def _start_from_content_range(value: str | None) -> int | None:
    try:
        return int(value.split()[1].split("-")[0])
    except (AttributeError, IndexError, ValueError):
        return None


def _total_from_content_range(value: str | None) -> int | None:
    try:
        return int(value.rsplit("/", 1)[1])
    except (AttributeError, IndexError, ValueError):
        return None
