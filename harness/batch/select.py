"""Which runs a batch holds: reproduction ids (ours or `mmseg/<entry>`), `ID:PROTOCOL`, and glob patterns."""
from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from pathlib import Path

from harness import registry
from harness.errors import ReproError


@dataclass(frozen=True)
class Entry:
    reproduction: str
    protocol: str
    checkpoint: str | None = None


def _known_ids(zoo: bool) -> list[str]:
    ids = sorted(registry.all_reproductions())
    if zoo:
        try:
            ids += sorted(registry.zoo_reproductions())
        except ReproError:      # no mmseg installed here: the zoo is simply not there
            pass
    return ids


def _split(word: str) -> tuple[str, str | None]:
    """`ID:PROTOCOL` (a zoo id holds a slash, never a colon) or `ID`."""
    rep, sep, protocol = word.rpartition(":")
    return (rep, protocol) if sep else (word, None)


def _protocols(rep_id: str, wanted: list[str], explicit: str | None) -> list[str]:
    have = list(registry.get(rep_id).protocols)
    if explicit is not None:
        if explicit not in have:
            raise ReproError(f"{rep_id} has no protocol '{explicit}'", fix=f"use one of: {', '.join(have)}")
        return [explicit]
    return [p for p in have if not wanted or p in wanted]


def checkpoints_by_id(values: list[str], rep_ids: list[str]) -> dict[str, str]:
    """`--checkpoint ID=PATH` (repeatable), or `--checkpoint PATH` when the batch holds one reproduction."""
    out: dict[str, str] = {}
    for value in values:
        rep, sep, path = value.partition("=")
        if not (sep and rep in rep_ids):
            if len(set(rep_ids)) != 1:
                raise ReproError(f"--checkpoint {value!r} names no reproduction of this batch",
                                 fix="write --checkpoint ID=PATH for each reproduction that needs one "
                                     f"({', '.join(sorted(set(rep_ids)))})")
            rep, path = rep_ids[0], value
        out[rep] = str(Path(path).expanduser().resolve())
    return out


def select_entries(ids: list[str], select: list[str] | None = None, protocols: list[str] | None = None,
                   checkpoints: list[str] | None = None) -> list[Entry]:
    """The batch's runs in order: each ID (or ID:PROTOCOL), then each reproduction matching a --select pattern,
    each with the protocols asked for (default: all it has). A run asked for twice is kept once."""
    wanted = list(protocols or [])
    pairs: list[tuple[str, str]] = []
    for word in ids:
        rep_id, explicit = _split(word)
        rep = registry.get(rep_id)             # an unknown id is refused here, naming it
        chosen = _protocols(rep.id, wanted, explicit)
        if not chosen:
            raise ReproError(f"{rep.id} has none of the protocols asked for ({', '.join(wanted)})",
                             fix=f"its protocols are: {', '.join(sorted(rep.protocols))}")
        pairs += [(rep.id, p) for p in chosen]
    for pattern in select or []:
        rep_pattern, explicit = _split(pattern)
        matched = [i for i in _known_ids(zoo=rep_pattern.startswith(registry.ZOO_PREFIX) or "/" in rep_pattern)
                   if fnmatch.fnmatchcase(i, rep_pattern)]
        if not matched:
            raise ReproError(f"--select {pattern!r} matches no reproduction",
                             fix="see `repro list` (ours) and `repro list --zoo` (mmseg/<entry>) for the ids")
        for rep_id in matched:
            have = list(registry.get(rep_id).protocols)
            chosen = [p for p in have if (explicit is None or p == explicit) and (not wanted or p in wanted)]
            pairs += [(rep_id, p) for p in chosen]
    unique = list(dict.fromkeys(pairs))
    if not unique:
        raise ReproError("the batch holds no run", fix="name reproductions (ID or ID:PROTOCOL) or --select PATTERN")
    by_id = checkpoints_by_id(list(checkpoints or []), [rep for rep, _ in unique])
    return [Entry(rep, protocol, by_id.get(rep)) for rep, protocol in unique]
