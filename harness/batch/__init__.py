"""Batches: several reproductions × protocols started by one command, recorded in one batch file.

    repro batch eva02_demo --checkpoint CKPT                      # every protocol of eva02_demo, one after another
    repro batch 'mmseg/segformer*:ss' --launcher slurm --dry-run  # one Slurm job array, one task per run
    repro verify runs/batches/<stamp>                             # one verdict over all of its runs
    repro report --compare runs/batches/<stamp>                   # one comparison page

- select.py: which runs a batch holds (ids, `ID:PROTOCOL`, glob patterns over our reproductions and the zoo);
- batchfile.py: the batch file (`batch.json` in the batch folder), written atomically after every change;
- start.py: running the runs one after another here, or submitting them as one Slurm job array;
- members.py: reading a batch back: each run's state now (finished, failed, never finished, never started), for
  `repro verify` and `repro report`, which show every run, those without a record included.
"""
from __future__ import annotations

from harness.batch.batchfile import BATCH_FILE, is_batch, load_batch
from harness.batch.members import Member, batch_members
from harness.batch.select import Entry, select_entries

__all__ = ["BATCH_FILE", "Entry", "Member", "batch_members", "is_batch", "load_batch", "select_entries"]
