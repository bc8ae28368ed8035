"""mmseg's model zoo as reproductions: the metafiles of the installed mmsegmentation, read at run time.

`mmseg/.mim/model-index.yml` imports one `configs/<method>/<method>.yml` per method; each entry names its config,
its weights URL (file name ending in `-<first 8 hex of the sha256>.pth`) and the published metrics per dataset.
An entry with a result on a registered dataset (the `zoo_name` of its dataset.toml: ADE20K's "ADE20K") becomes the
reproduction `mmseg/<entry name>` with two protocols on the entry's config:

- ss: the config's own test pipeline;
- ms: mmseg's `tools/test.py --aug-test`, i.e. the test pipeline's MultiScaleFlipAug with img_ratios
  0.5-1.75 and flip (applied by harness/engine/config.py from the job's `test_aug`).

Its expected values are the metafile's mIoU (ss) and mIoU(ms+flip) (ms); nothing is written per entry.
REPRO_MMSEG_ZOO names another folder laid out like `mmseg/.mim` (a mirror, or a test's own index).
"""
from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

from harness import paths, tomlcheck
from harness.errors import ReproError
from harness.registry import datasets
from harness.registry.lookup import pick
from harness.registry.record import ExpectedSource, Reproduction, UrlWeights
from harness.tomlcheck import NAME, RELPATH

PREFIX = "mmseg/"
INDEX = "model-index.yml"
MS_RATIOS = (0.5, 0.75, 1.0, 1.25, 1.5, 1.75)     # mmseg 0.29.1 tools/test.py, --aug-test
MS_SETTINGS = {"test_aug": {"img_ratios": list(MS_RATIOS), "flip": True}}
# metafile metric -> (protocol, our metric), whatever the dataset
METRICS = {"mIoU": ("ss", "mIoU"), "mIoU(ms+flip)": ("ms", "mIoU")}
SHA_PREFIX = re.compile(r"-([0-9a-f]{8})\.pth$")
FIX = "use the metafiles of mmsegmentation 0.29.1 (reinstall it), or fix the index REPRO_MMSEG_ZOO names"
STAMPED = re.compile(r"_\d{8}_\d{6}-[0-9a-f]{8}\.pth$")    # mmseg's `<config>_YYYYMMDD_HHMMSS-<sha8>.pth`


def zoo_root() -> Path:
    """The folder holding model-index.yml: REPRO_MMSEG_ZOO, else the installed mmseg's `.mim` (not imported)."""
    override = paths.mmseg_zoo_override()
    if override is not None:
        return override
    from importlib.util import find_spec

    spec = find_spec("mmseg")
    if spec is None or not spec.submodule_search_locations:
        raise ReproError("mmsegmentation is not installed, so its model zoo cannot be read",
                         fix="use the engine environment (.nox/engine/bin/repro), or set REPRO_MMSEG_ZOO")
    return Path(next(iter(spec.submodule_search_locations))) / ".mim"


def mmseg_version() -> str:
    from importlib.metadata import PackageNotFoundError, version
    try:
        return version("mmsegmentation")
    except PackageNotFoundError:
        return "unknown"


def _yaml(path: Path):
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        return yaml.load(path.read_text(), Loader=loader)
    except (OSError, yaml.YAMLError) as exc:
        raise ReproError(f"cannot read the mmseg metafile {path}: {exc}",
                         fix="reinstall mmsegmentation (its .mim folder is damaged), or fix REPRO_MMSEG_ZOO") from exc


def _path_field(path: Path, field: str, value, kind):
    """A metafile field that becomes a path (the entry's name is a folder of runs/mmseg/, its config a file below
    the zoo root, its weights' file name a file of the weights cache): one name or relative path, nothing that
    climbs out (issue 24); else one error naming the metafile and the field."""
    if not isinstance(value, str):
        raise tomlcheck.fail(path, field, f"must be a string, found {value!r}", FIX)
    if problem := kind.problem(value):
        raise tomlcheck.fail(path, field, f"{problem}, found {value!r}", FIX)
    return value


def _entry(root: Path, metafile: str, model: dict, version: str, known: dict[str, str]) -> Reproduction | None:
    """known: metafile dataset name -> our dataset id."""
    results = model.get("Results") or []
    results = [results] if isinstance(results, dict) else results
    for result in results:
        if result.get("Dataset") not in known:
            continue
        dataset = known[result["Dataset"]]
        values: dict[str, dict[str, float]] = {}
        for name, value in (result.get("Metrics") or {}).items():
            if name in METRICS and isinstance(value, (int, float)):
                protocol, metric = METRICS[name]
                values.setdefault(protocol, {})[metric] = float(value)
        url = model.get("Weights") or ""
        match = SHA_PREFIX.search(url)
        meta = model.get("Metadata") or {}
        name = _path_field(root / metafile, "Name", model.get("Name"), NAME)
        _path_field(root / metafile, f"{name}.Config", model.get("Config"), RELPATH)
        if url:
            _path_field(root / metafile, f"{name}.Weights", url.rsplit("/", 1)[-1], NAME)
        source = f"{metafile} in mmsegmentation {version} (`{name}`)"
        return Reproduction(
            id=PREFIX + name, folder=root, title=name, model=f"{model.get('In Collection', '')} "
            f"{meta.get('backbone', '')}".strip(), dataset=dataset,
            protocols={"ss": model["Config"], "ms": model["Config"]}, training=None,
            weights=UrlWeights(url, match.group(1) if match else None) if url else None,
            code=str(model.get("Config", "")), custom_imports=(), protocol_settings={"ms": MS_SETTINGS},
            expected=ExpectedSource(values, source), source="mmseg-zoo",
            family=str(model.get("In Collection", "")), backbone=str(meta.get("backbone", "")),
            extra={"metafile": metafile, "mmseg_version": version, "crop_size": meta.get("crop size"),
                   "lr_schedule": meta.get("lr schd")})
    return None


@lru_cache(maxsize=4)
def _read(root: Path, stamp: float, known: tuple[tuple[str, str], ...]) -> dict[str, Reproduction]:
    index = _yaml(root / INDEX) or {}
    version = mmseg_version()
    found: dict[str, Reproduction] = {}
    for metafile in index.get("Import") or []:
        data = _yaml(root / _path_field(root / INDEX, "Import", metafile, RELPATH)) or {}
        for model in data.get("Models") or []:
            rep = _entry(root, metafile, model, version, dict(known))
            if rep is not None:
                found[rep.id] = rep
    return found


def zoo_reproductions() -> dict[str, Reproduction]:
    """Every zoo entry with a result on a registered dataset (ADE20K), by id `mmseg/<entry name>`."""
    root = zoo_root()
    if not (root / INDEX).is_file():
        raise ReproError(f"no {INDEX} in {root}", fix="install mmsegmentation 0.29.1 (it ships the zoo), or fix "
                                                      "REPRO_MMSEG_ZOO")
    known = tuple(sorted((name, ds.id) for name, ds in datasets.by_zoo_name().items()))
    return dict(_read(root, (root / INDEX).stat().st_mtime, known))


def get(reproduction_id: str) -> Reproduction:
    return pick(zoo_reproductions(), reproduction_id, "zoo entry", list_known=False,
                fix="run `repro list --zoo` (or `repro list --zoo --filter TEXT`) to see them")


def log_url(rep: Reproduction) -> str | None:
    """The entry's training log: its weights URL with `-<sha8>.pth` replaced by `.log.json`, the rule of mmseg 0.x's
    zoo, only where the weights name carries mmseg's timestamp (`_YYYYMMDD_HHMMSS-<sha8>.pth`): the few without
    one link their log from the method's README, which is not read here, so they have none (never a guessed URL)."""
    url = getattr(rep.weights, "url", "") or ""
    return SHA_PREFIX.sub(".log.json", url) if STAMPED.search(url) else None


def matches(rep: Reproduction, text: str) -> bool:
    """`repro list --zoo --filter TEXT`: a case-insensitive substring of the name, family or backbone."""
    needle = text.lower()
    return any(needle in part.lower() for part in (rep.id, rep.family, rep.backbone))
