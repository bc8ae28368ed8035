"""Where reproductions come from: our folders under reproductions/ (folders.py) and the installed mmseg's model
zoo (zoo.py). Both give the same record (record.py); `get()` takes either id, `mmseg/<entry name>` for the zoo.
`all_reproductions()` is our folders (what `repro list` shows); `zoo_reproductions()` the zoo's entries.
The datasets they name are another registry, datasets/ (`harness.registry.datasets`).
"""
from __future__ import annotations

from pathlib import Path

from harness.registry.folders import METADATA, all_reproductions, load_reproduction, reproductions_root
from harness.registry.folders import get as _get_folder
from harness.registry.record import ExpectedSource, Reproduction, Training, UrlWeights, WeightsFile
from harness.registry.zoo import PREFIX as ZOO_PREFIX
from harness.registry.zoo import zoo_reproductions


def get(reproduction_id: str, root: Path | None = None) -> Reproduction:
    if reproduction_id.startswith(ZOO_PREFIX):
        from harness.registry import zoo
        return zoo.get(reproduction_id)
    return _get_folder(reproduction_id, root)


__all__ = ["METADATA", "ZOO_PREFIX", "ExpectedSource", "Reproduction", "Training", "UrlWeights", "WeightsFile",
           "all_reproductions", "get", "load_reproduction", "reproductions_root", "zoo_reproductions"]
