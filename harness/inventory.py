"""What `repro list` shows: each reproduction's facts joined with the state of this machine's files."""
from __future__ import annotations

from harness import registry
from harness.fetch import ade20k, synthetic, weights
from harness.paths import data_root
from harness.verify.expected import published


def _dataset_state(dataset: str) -> str:
    root = synthetic.default_root() if dataset == "ade20k-synthetic" else data_root(dataset)
    return f"{ade20k.status(root)} ({root})"


def _weights_state(rep: registry.Reproduction) -> str:
    if rep.weights is None:
        return "trained by `repro demo`" if rep.baseline else "none"
    state = weights.status(rep, "weights")
    if rep.pretrained is not None:
        state += f", pretrained {weights.status(rep, 'pretrained')}"
    return state


def inventory() -> list[dict]:
    from harness.paths import runs_root
    from harness.settle import settle_all
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
