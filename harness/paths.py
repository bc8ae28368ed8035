"""Where files live: the one place that decides the cache, the data root and run directories.

REPRO_HOME (default: the user's cache directory, ~/.cache/repro) holds weights/ (verified downloads and the
hash lock file) and data/ (prepared datasets). REPRO_DATA overrides the data root of the real datasets (never the
synthetic one's), REPRO_RUNS the root of run directories (default ./runs; the folders in it are named and claimed by
harness/run/claim.py).
"""
from __future__ import annotations

import os
from pathlib import Path

from harness import REPO_ROOT  # noqa: F401  (where it has always been importable from)


def repro_home() -> Path:
    if os.environ.get("REPRO_HOME"):
        return Path(os.environ["REPRO_HOME"]).expanduser().resolve()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return (Path(base) / "repro").resolve()


def weights_dir() -> Path:
    return repro_home() / "weights"


def data_root(dataset: str | None = None) -> Path:
    """The prepared dataset's root, <REPRO_HOME>/data/<name>/<its folder> (datasets/<id>/dataset.toml names the
    folder), e.g. <REPRO_HOME>/data/ade20k/ADEChallengeData2016 and, for its synthetic stand-in,
    <REPRO_HOME>/data/ade20k-synthetic/ADEChallengeData2016. REPRO_DATA moves the real datasets only: a synthetic
    default there would sit on (and could replace) the real data."""
    from harness.registry import datasets

    dataset = dataset or datasets.DEFAULT
    found, synthetic = datasets.resolve(dataset)
    if os.environ.get("REPRO_DATA") and not synthetic:
        return Path(os.environ["REPRO_DATA"]).expanduser().resolve()
    return repro_home() / "data" / dataset / found.folder


def downloads_dir() -> Path:
    """Archives being fetched (kept as <name>.part while incomplete, so a later command resumes them)."""
    return repro_home() / "downloads"


def runs_root() -> Path:
    return Path(os.environ.get("REPRO_RUNS", "runs")).expanduser().resolve()
