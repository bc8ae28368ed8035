"""Where files live: the one place that reads the path variables and decides the cache, the data root, the run
directories and the registries.

- REPRO_HOME (default: $XDG_CACHE_HOME/repro, else ~/.cache/repro) holds weights/ (verified downloads and the hash
  lock file), downloads/ and data/ (prepared datasets);
- REPRO_DATA overrides the data root of the real datasets (never the synthetic one's);
- REPRO_RUNS the root of run directories (default ./runs);
- REPRO_REPRODUCTIONS, REPRO_DATASETS, REPRO_EXPECTED: other registry folders than the repository's
  reproductions/, datasets/ and expected/ (a site's own, or a test's);
- REPRO_MMSEG_ZOO: a folder laid out like mmseg's `.mim` (model-index.yml + configs/) instead of the installed one.
The run folders under REPRO_RUNS are named and claimed by harness/run/claim.py.
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


def data_home(dataset: str) -> Path:
    """<REPRO_HOME>/data/<dataset>: where a dataset's prepared root is kept (harness.registry.datasets.data_root
    adds the dataset's folder)."""
    return repro_home() / "data" / dataset


def real_data_override() -> Path | None:
    """REPRO_DATA: the data root of the real datasets (never a synthetic one's), or None."""
    value = os.environ.get("REPRO_DATA")
    return Path(value).expanduser().resolve() if value else None


def downloads_dir() -> Path:
    """Archives being fetched (kept as <name>.part while incomplete, so a later command resumes them)."""
    return repro_home() / "downloads"


def runs_root() -> Path:
    return Path(os.environ.get("REPRO_RUNS", "runs")).expanduser().resolve()


def _folder(variable: str, default: Path) -> Path:
    return Path(os.environ.get(variable) or default).expanduser().resolve()


def reproductions_root() -> Path:
    """Our reproductions' registry: REPRO_REPRODUCTIONS, else the repository's reproductions/."""
    return _folder("REPRO_REPRODUCTIONS", REPO_ROOT / "reproductions")


def datasets_root() -> Path:
    """The dataset registry: REPRO_DATASETS, else the repository's datasets/."""
    return _folder("REPRO_DATASETS", REPO_ROOT / "datasets")


def expected_dir() -> Path:
    """The expected tables and tolerances: REPRO_EXPECTED, else the repository's expected/."""
    return _folder("REPRO_EXPECTED", REPO_ROOT / "expected")


def mmseg_zoo_override() -> Path | None:
    """REPRO_MMSEG_ZOO, a folder laid out like mmseg's `.mim`; None: the installed mmseg's own."""
    value = os.environ.get("REPRO_MMSEG_ZOO")
    return Path(value).expanduser().resolve() if value else None

