"""A run folder's vocabulary: the names of the files a run writes into it, and reading them back.

Whatever reads a run folder (finalizing, settling, claiming, resuming, the verdict) imports the names from here,
never from the launcher. A leaf: it imports no other harness module but harness.errors.

    <run folder>/
      job.json            the job: everything the engine needs (harness/run/job.py); job.node<N>.json on node N
      job.sbatch          the Slurm script (harness/run/launch.py), job.slurm.json: its job id once submitted
      console.log         everything the processes printed
      engine.json         what rank 0 of the engine measured (metrics, artifacts, timing)
      failure.txt         the engine's one-line error (failure.rank<N>.txt on rank N)
      result.json         the record (harness/run/record.py), written last, once
"""
from __future__ import annotations

import fnmatch
import json
import os
from pathlib import Path

JOB_FILE = "job.json"
SBATCH_FILE = "job.sbatch"
SLURM_FILE = "job.slurm.json"   # the job id; named like the job files, which a run folder may hold
CONSOLE_LOG = "console.log"
ENGINE_FILE = "engine.json"
RESULT_FILE = "result.json"
FAILURE_FILE = "failure.txt"
FAILURE_GLOB = "failure*.txt"
SLURM_OUTPUT_GLOB = "slurm-*.out"
CLAIM_FILE = ".claim"    # held while a command claims the folder, until the job (or record, batch file) is in it

# what a run (any launcher, any rank) and the commands reading it write into a run folder
RUN_FILES = ("job*.json", SBATCH_FILE, RESULT_FILE, "engine*.json", FAILURE_GLOB, "console*.log",
             "config.py", "*.log", "*.log.json", "eval_*.json", "*.pth", SLURM_OUTPUT_GLOB, "verify*.xml", ".*.tmp",
             CLAIM_FILE)
# `repro import` copies its source files to imported/; the evaluation writes the report's gallery/, and mmseg's
# multi-process result collection .dist_test/ (left behind by a killed run)
RUN_FOLDERS = ("imported", "gallery", ".dist_test")


# a file to which the writers of job.json and result.json append each path they write: the test suite sets it and
# checks every file named there against docs/job.schema.json and docs/result.schema.json (tests/conftest.py)
AUDIT_ENV = "REPRO_AUDIT_LOG"


def note_written(path: Path) -> None:
    log = os.environ.get(AUDIT_ENV)
    if log:
        with open(log, "a") as fh:
            fh.write(f"{Path(path).resolve()}\n")


def job_file(node_rank: int = 0) -> str:
    """The job settings file of one node: node 0's is job.json (the run's), node N's job.node<N>.json."""
    return JOB_FILE if node_rank == 0 else f"job.node{node_rank}.json"


def failure_file(rank: int = 0) -> str:
    """The engine's one-line error of one rank: failure.txt (rank 0), failure.rank<N>.txt."""
    return FAILURE_FILE if rank == 0 else f"failure.rank{rank}.txt"


def is_run_file(name: str) -> bool:
    return any(fnmatch.fnmatchcase(name, pattern) for pattern in RUN_FILES)


def read_json(path: Path) -> dict | None:
    """A JSON object from `path`; None when the file is missing, unreadable, not JSON or not an object."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def failure_files(run_dir: Path) -> list[Path]:
    """The engine's failure files, rank 0's first."""
    return sorted(Path(run_dir).glob(FAILURE_GLOB), key=_failure_rank)


def _failure_rank(path: Path) -> int:
    suffix = path.stem.removeprefix("failure").removeprefix(".rank")
    return int(suffix) if suffix.isdigit() else 0


def rank_failures(run_dir: Path) -> str | None:
    """The engine's failure lines, rank 0's first (its error is the cause; other ranks' are mostly its echo)."""
    lines = []
    for path in failure_files(run_dir):
        text = path.read_text(errors="replace").strip()
        if text:
            rank = _failure_rank(path)
            lines.append(text.splitlines()[0] if rank == 0 else f"rank {rank}: {text.splitlines()[0]}")
    return "; ".join(lines) or None
