"""Finding an id in one of the registries (reproductions, zoo entries, datasets), or saying which ids are close."""
from __future__ import annotations

import difflib

from harness.errors import ReproError


def pick(known: dict, wanted: str, kind: str, fix: str, list_known: bool = True):
    """known[wanted]; else a ReproError naming up to three close ids, and every id when list_known."""
    if wanted in known:
        return known[wanted]
    close = difflib.get_close_matches(wanted, known, n=3)
    hint = f" Did you mean: {', '.join(close)}?" if close else ""
    listed = f" Available: {', '.join(known) or 'none'}" if list_known else ""
    raise ReproError(f"Unknown {kind} '{wanted}'.{hint}{listed}", fix=fix)
