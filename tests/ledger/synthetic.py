"""Ledgers drawn from a known distribution, whose population aAcc / mIoU / mAcc are known in closed form.

Per image n and class c: the class is present with probability q_c; then its label area is 1 + Poisson(λ_c)
pixels. The image has a difficulty a_n ~ Beta(4, 2) (mean 2/3) shared by its classes (images differ, so pixels are
not independent: the bootstrap must resample images, not pixels); intersect ~ Binomial(label, a_n s_c); false
positives ~ Poisson(φ_c (1 − a_n)) in every image. Then E[intersect] = q_c (1 + λ_c) μ s_c, E[label] =
q_c (1 + λ_c), E[false positives] = φ_c (1 − μ), and union = label + false positives, so the population values
are IoU_c = E[I_c] / E[U_c], Acc_c = μ s_c, aAcc = Σ E[I_c] / Σ E[L_c].
"""
from __future__ import annotations

import numpy as np

from harness.ledger.store import Ledger

MU = 4 / 6                         # mean of Beta(4, 2)


class KnownDistribution:
    def __init__(self, classes: int = 12, seed: int = 1234):
        rng = np.random.default_rng(seed)
        self.q = rng.uniform(0.3, 0.9, classes)
        self.lam = rng.uniform(200, 3000, classes)
        self.s = rng.uniform(0.5, 1.0, classes)
        self.phi = rng.uniform(50, 800, classes)

    @property
    def classes(self) -> int:
        return self.q.size

    def truth(self) -> dict[str, float]:
        e_label = self.q * (1 + self.lam)
        e_inter = e_label * MU * self.s
        e_union = e_label + self.phi * (1 - MU)
        return {"aAcc": e_inter.sum() / e_label.sum() * 100, "mIoU": np.mean(e_inter / e_union) * 100,
                "mAcc": np.mean(MU * self.s) * 100}

    def draw(self, images: int, seed: int) -> Ledger:
        rng = np.random.default_rng(seed)
        c = self.classes
        present = rng.random((images, c)) < self.q
        label = present * (1 + rng.poisson(self.lam, size=(images, c)))
        a = rng.beta(4, 2, size=(images, 1))
        inter = rng.binomial(label, a * self.s)
        false_pos = rng.poisson(self.phi * (1 - a), size=(images, c))
        pred = inter + false_pos
        return ledger_of(inter, pred, label)


def ledger_of(inter, pred, label, names=None, pixels=None) -> Ledger:
    """A Ledger from (N, C) intersect / prediction / label areas (union = pred + label − intersect)."""
    inter, pred, label = (np.asarray(a, dtype=np.int64) for a in (inter, pred, label))
    n = inter.shape[0]
    names = np.array([f"ADE_val_{i + 1:08d}.jpg" for i in range(n)]) if names is None else np.asarray(names)
    pixels = label.sum(axis=1) + 10 if pixels is None else np.asarray(pixels, dtype=np.int64)
    return Ledger(names=names, index=np.arange(n, dtype=np.int64), pixels=pixels, intersect=inter,
                  union=pred + label - inter, pred=pred, label=label)
