"""The batch file: `<batch folder>/batch.json`, the runs a batch started and what the batch command saw of them.

    {"schema": "repro.batch/1", "created": ..., "updated": ..., "command": "repro batch ...",
     "launcher": "none" | "torchrun" | "slurm", "slurm_job": "123" (an array's job id, or null),
     "runs": [{"task": 0, "reproduction": "eva02_demo", "protocol": "ss", "checkpoint": null,
               "run_dir": "00-eva02_demo-ss",      # relative to the batch folder (it travels as one folder)
               "state": "pending" | "running" | "succeeded" | "failed" | "not-started" | "submitted",
               "failure": null, "slurm_job": "123_0"}]}

`state` is what the batch command knew when it last wrote the file; readers (members.py) take each run's own
result.json as the truth, so a submitted array task that finished later reads as finished. Written atomically
after every change, so an interrupted batch still lists every run it meant to start.
"""
from __future__ import annotations

import re
from pathlib import Path

from harness import paths
from harness.clock import iso_now
from harness.errors import ReproError
from harness.fileio import read_json, write_json_atomic
from harness.run.claim import claim_default, claim_new, release

BATCH_FILE = "batch.json"
SCHEMA = "repro.batch/1"
STATES = ("pending", "running", "succeeded", "failed", "not-started", "submitted")


def run_dir_name(task: int, reproduction: str, protocol: str, width: int = 2) -> str:
    """`03-mmseg_segformer_mit-b0_512x512_160k_ade20k-ss`: ordered, one folder level, safe on any filesystem."""
    safe = re.sub(r"[^A-Za-z0-9_.-]+", "_", reproduction)
    return f"{task:0{width}d}-{safe}-{protocol}"


def claim_batch_dir(batch_dir: Path | str | None) -> Path:
    """A new, empty batch folder, claimed (harness/run/claim.py): `<runs>/batches/<UTC time>` by default; a given
    one must be new or empty. The claim ends with the first `save`."""
    if batch_dir is None:
        return claim_default(paths.runs_root() / "batches").path
    return claim_new(batch_dir, "--batch-dir")


def new_batch(entries, launcher: str, command: str) -> dict:
    width = max(2, len(str(len(entries) - 1)))
    return {"schema": SCHEMA, "created": iso_now(), "updated": iso_now(), "command": command, "launcher": launcher,
            "slurm_job": None,
            "runs": [{"task": i, "reproduction": e.reproduction, "protocol": e.protocol, "checkpoint": e.checkpoint,
                      "run_dir": run_dir_name(i, e.reproduction, e.protocol, width), "state": "pending",
                      "failure": None, "slurm_job": None} for i, e in enumerate(entries)]}


def save(batch_dir: Path, batch: dict) -> Path:
    batch["updated"] = iso_now()
    path = write_json_atomic(Path(batch_dir) / BATCH_FILE, batch)
    release(batch_dir)
    return path


def _file_of(path: Path | str) -> Path:
    path = Path(path)
    return path / BATCH_FILE if path.is_dir() else path


def is_batch(path: Path | str) -> bool:
    """A batch folder or its batch.json (a run directory holds result.json/job.json, never batch.json)."""
    file = _file_of(path)
    return file.name == BATCH_FILE and file.is_file()


def load_batch(path: Path | str) -> tuple[Path, dict]:
    """(batch folder, batch file) of a batch folder or batch.json; a file that is not one is refused in one line."""
    file = _file_of(path)
    batch = read_json(file, fix="pass a batch folder made by `repro batch` (it holds batch.json)")
    if not isinstance(batch, dict) or batch.get("schema") != SCHEMA or not isinstance(batch.get("runs"), list):
        raise ReproError(f"{file} is not a batch file ({SCHEMA})", fix="pass the batch.json that `repro batch` wrote")
    return file.parent.resolve(), batch
