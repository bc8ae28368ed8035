"""Where files live: the one place that reads the path variables and decides the cache, the data root, the run
directories and the registries.

- REPRO_HOME (default: $XDG_CACHE_HOME/repro, else ~/.cache/repro) holds weights/ (verified downloads and the hash
  lock file), downloads/ and data/ (prepared datasets);
- REPRO_DATA overrides the data root of the real datasets (never the synthetic one's);
- REPRO_RUNS the root of run directories (default ./runs);
- REPRO_REPRODUCTIONS, REPRO_DATASETS, REPRO_EXPECTED: other registry folders than the repository's
  reproductions/, datasets/ and expected/ (a site's own, or a test's);
- REPRO_MMSEG_ZOO: a folder laid out like mmseg's `.mim` (model-index.yml + configs/) instead of the installed one.
"""
from __future__ import annotations

import os
from pathlib import Path

from harness import clock

REPO_ROOT = Path(__file__).resolve().parent.parent


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


def new_stamped_dir(parent: Path) -> Path:
    """parent/<UTC timestamp>[-n]/, created empty; never reuses a directory (mkdir decides, so racing callers differ)."""
    stamp = clock.stamp()
    for n in range(1000):
        candidate = parent / (stamp if n == 0 else f"{stamp}-{n}")
        try:
            candidate.mkdir(parents=True)
            return candidate
        except FileExistsError:
            continue
    raise RuntimeError(f"cannot create a fresh folder under {parent}")


def new_run_dir(reproduction: str, kind: str, root: Path | None = None) -> Path:
    """runs/<reproduction>/<protocol or train>/<UTC timestamp>/, created empty; never reuses a directory."""
    return new_stamped_dir((root or runs_root()) / reproduction / kind)
