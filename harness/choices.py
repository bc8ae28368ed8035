"""The closed sets of values a flag or a record field may take, each stated once (CLI choices, validation, help).

A leaf: imports nothing, so the CLI, the launcher, the engine and the verifier all read the same tuple.
"""
from __future__ import annotations

LAUNCHERS = ("none", "torchrun", "slurm")      # one process here; torchrun processes per node; sbatch + srun
ENGINES = ("fast", "stock")                    # evaluation engines (harness/engine/evaluate_fast.py, mmseg's loop)
PRECISIONS = ("fp32", "tf32", "bf16")          # evaluation precision (harness/engine/precision.py)
DEVICES = ("auto", "cpu", "cuda")              # where a job runs; auto: resolved by the launcher's target
TIERS = ("released", "retrain", "baseline")    # verdict tiers (expected/tolerances.toml has one table each)
TIER_CHOICES = ("auto", *TIERS)                # --tier: auto derives the tier from the run's provenance
