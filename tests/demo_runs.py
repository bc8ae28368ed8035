"""A short real demo training run for the tests that need a checkpoint and a record of their own (tests/ is on
sys.path, as for golden_codec.py)."""
from __future__ import annotations

from pathlib import Path


def train_demo_briefly(data_root: Path, work: Path) -> Path:
    """A 2-step demo training run (2 images x accumulate 2 = the published batch of 4) on this machine: a real
    checkpoint and record for the tests that evaluate, batch or report one. Returns its run directory."""
    from harness.run.api import train
    train("eva02_demo", max_iters=2, samples_per_gpu=2, accumulate=2, checkpoint_interval=2, eval_interval=1000,
          data_root=data_root, work_dir=work, cfg_options=["data.workers_per_gpu=1"], echo=False)
    return work
