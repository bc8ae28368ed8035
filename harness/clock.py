"""The harness's two timestamp formats, each written in one place.

`iso_now()` is what records hold (`2026-12-06T07:30:00+00:00`, seconds, UTC); `stamp()` is what folder and file
names hold (`20261206T073000Z`: sorts, no colons). Anything older than these (`time.strftime`, `%H:%M:%SZ`) is read
by `parse_iso`, never written.
"""
from __future__ import annotations

from datetime import UTC, datetime

STAMP_FORMAT = "%Y%m%dT%H%M%SZ"


def now() -> datetime:
    return datetime.now(UTC)


def iso_now() -> str:
    return now().isoformat(timespec="seconds")


def stamp(when: datetime | None = None) -> str:
    return (when or now()).strftime(STAMP_FORMAT)


def parse_iso(text: str) -> datetime:
    """A record's timestamp back as an aware datetime (`Z` suffixes accepted)."""
    when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return when if when.tzinfo else when.replace(tzinfo=UTC)
