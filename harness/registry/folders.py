"""Our reproductions: one folder each under reproductions/, described by its reproduction.toml.

A reproduction is data, not code: an id, its dataset (an id of the dataset registry, datasets/, or `<id>-synthetic`),
the mmseg config of each evaluation protocol, the published training setup, where its released and pretrained
weights live and the modules its configs import (`custom_imports`, default: ours). Adding one needs no harness code.
"""
from __future__ import annotations

from pathlib import Path

from harness import paths, tomlcheck
from harness.errors import ReproError
from harness.registry import datasets
from harness.registry.lookup import pick
from harness.registry.record import OUR_MODULES, Reproduction, Training, WeightsFile
from harness.tomlcheck import NAME, RELPATH, List, Map, Optional, Table

METADATA = "reproduction.toml"


def reproductions_root() -> Path:
    return paths.reproductions_root()


_WEIGHTS = Table({"repo": RELPATH, "revision": NAME, "filename": RELPATH, "approx_size": Optional(str, ""),
                  "sha256": Optional(str), "size": Optional(int)})
SCHEMA = Table({
    "id": NAME, "title": str, "model": str, "dataset": NAME, "protocols": Map(RELPATH),
    "training": Table({"gpus": int, "nnodes": int, "samples_per_gpu": int, "total_batch": int, "max_iters": int,
                       "seed": Optional(int)}),
    "weights": Optional(_WEIGHTS), "pretrained": Optional(_WEIGHTS), "baseline": Optional(bool, False),
    "paper": Optional(str, ""), "code": Optional(str, ""), "custom_imports": Optional(List(str), list(OUR_MODULES)),
})


def _weights(data: dict | None) -> WeightsFile | None:
    return WeightsFile(**data) if data else None


def load_reproduction(folder: Path) -> Reproduction:
    path = folder / METADATA
    data = tomlcheck.read(path, SCHEMA, "reproduction", fix="compare it with another reproduction.toml")
    rep = Reproduction(
        id=data["id"], folder=folder, title=data["title"], model=data["model"], dataset=data["dataset"],
        protocols=data["protocols"], training=Training(**data["training"]),
        weights=_weights(data["weights"]), pretrained=_weights(data["pretrained"]), baseline=data["baseline"],
        paper=data["paper"], code=data["code"], custom_imports=tuple(data["custom_imports"]),
    )
    if rep.id != folder.name:
        raise ReproError(f"{path}: id '{rep.id}' differs from its folder name '{folder.name}'",
                         fix="make the folder name and the id equal")
    for protocol, name in rep.protocols.items():
        if not (folder / name).is_file():
            raise ReproError(f"{path}: protocol '{protocol}' names {name}, which does not exist")
    try:
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
