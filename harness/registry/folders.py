"""Our reproductions: one folder each under reproductions/, described by its reproduction.toml.

A reproduction is data, not code: an id, its dataset (an id of the dataset registry, datasets/, or `<id>-synthetic`),
the mmseg config of each evaluation protocol, the published training setup, where its released and pretrained
weights live and the modules its configs import (`custom_imports`, default: ours). Adding one needs no harness code.
"""
from __future__ import annotations

import os
import tomllib
from pathlib import Path

from harness.errors import ReproError
from harness import REPO_ROOT
from harness.registry import datasets
from harness.registry.lookup import pick
from harness.registry.record import OUR_MODULES, Reproduction, Training, WeightsFile

METADATA = "reproduction.toml"


def reproductions_root() -> Path:
    return Path(os.environ.get("REPRO_REPRODUCTIONS", REPO_ROOT / "reproductions")).resolve()


def _weights(data: dict | None) -> WeightsFile | None:
    return WeightsFile(**data) if data else None


def load_reproduction(folder: Path) -> Reproduction:
    path = folder / METADATA
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ReproError(f"cannot read {path}: {exc}", fix="fix the TOML syntax of that file") from exc
    known = {"id", "title", "model", "dataset", "protocols", "training", "weights", "pretrained",
             "baseline", "paper", "code", "custom_imports"}
    try:
        rep = Reproduction(
            id=data["id"], folder=folder, title=data["title"], model=data["model"], dataset=data["dataset"],
            protocols=dict(data["protocols"]), training=Training(**data["training"]),
            weights=_weights(data.get("weights")), pretrained=_weights(data.get("pretrained")),
            baseline=bool(data.get("baseline", False)), paper=data.get("paper", ""), code=data.get("code", ""),
            extra={k: v for k, v in data.items() if k not in known},
            custom_imports=tuple(data.get("custom_imports", OUR_MODULES)),
        )
    except (KeyError, TypeError) as exc:
        raise ReproError(f"{path}: missing or unknown field {exc}", fix="compare it with another reproduction.toml") from exc
    if rep.id != folder.name:
        raise ReproError(f"{path}: id '{rep.id}' differs from its folder name '{folder.name}'",
                         fix="make the folder name and the id equal")
    for protocol, name in rep.protocols.items():
        if not (folder / name).is_file():
            raise ReproError(f"{path}: protocol '{protocol}' names {name}, which does not exist")
    try:
        if not isinstance(rep.dataset, str):
            raise ReproError(f"must be a dataset id, found {rep.dataset!r}", fix="e.g. dataset = \"ade20k\"")
        datasets.resolve(rep.dataset)
    except ReproError as exc:
        raise ReproError(f"{path}: dataset: {exc.message}", fix=exc.fix) from None
    return rep


def all_reproductions(root: Path | None = None) -> dict[str, Reproduction]:
    root = root or reproductions_root()
    found: dict[str, Reproduction] = {}
    # ids equal folder names (checked in load_reproduction), so two folders can never claim one id
    for meta in sorted(root.glob(f"*/{METADATA}")):
        rep = load_reproduction(meta.parent)
        found[rep.id] = rep
    return found


def get(reproduction_id: str, root: Path | None = None) -> Reproduction:
    return pick(all_reproductions(root), reproduction_id, "reproduction", fix="run `repro list` to see them")
