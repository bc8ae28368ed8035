"""What `repro list` shows: each reproduction's facts joined with the state of this machine's files."""
from __future__ import annotations

from harness import registry
from harness.fetch import dataroot, weights
from harness.paths import data_root
from harness.verify.expected import published


def _dataset_state(dataset: str) -> str:
    """The state of the dataset's default data root (`<id>-synthetic`: its synthetic stand-in's, which REPRO_DATA
    never moves)."""
    root = data_root(dataset)
    return f"{dataroot.status(root)} ({root})"


def _weights_state(rep: registry.Reproduction) -> str:
    if rep.weights is None:
        return "trained by `repro demo`" if rep.baseline else "none"
    state = weights.status(rep, "weights")
    if rep.pretrained is not None:
        state += f", pretrained {weights.status(rep, 'pretrained')}"
    return state


def zoo_inventory(text: str | None = None) -> list[dict]:
    """`repro list --zoo`: the model zoo's entries (harness/registry/zoo.py), filtered by name/family/backbone."""
    from harness.registry import zoo
    from harness.registry.needs import config_needs

    rows = []
    for rep in zoo.zoo_reproductions().values():
        if text and not zoo.matches(rep, text):
            continue
        needs = config_needs(rep.config_path("ss"))
        rows.append({
            "id": rep.id, "family": rep.family, "backbone": rep.backbone, "dataset": rep.dataset,
            "config": rep.protocols["ss"], "protocols": sorted(rep.protocols),
            "published": rep.expected.values, "source": rep.expected.source,
            "weights_url": rep.weights.url if rep.weights else None,
            "sha256_prefix": rep.weights.sha256_prefix if rep.weights else None,
            "weights": weights.status(rep, "weights"),
            "needs": [*needs.imports, *(["fp16 (a CUDA GPU)"] if needs.fp16 else []),
                      *(f"mmcv op {op} (CUDA kernel on GPUs)" for op in needs.mmcv_ops)],
        })
    return rows


def inventory() -> list[dict]:
    from harness.paths import runs_root
    from harness.run.settle import settle_all
    settle_all(runs_root())    # Slurm runs that ended without their record get it now
    rows = []
    for rep in registry.all_reproductions().values():
        numbers = published(rep.id)
        rows.append({
            "id": rep.id,
            "title": rep.title,
            "model": rep.model,
            "dataset": rep.dataset,
            "protocols": sorted(rep.protocols),
            "baseline": numbers["baseline"],
            "published": numbers["protocols"],
            "weights": _weights_state(rep),
            "dataset_state": _dataset_state(rep.dataset),
        })
    return rows
