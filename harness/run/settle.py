"""Settle a Slurm run that ended without its record: the job ran out of time, lost its node, or was cancelled.

A Slurm run's record is written by the last line of its job script (`python -m harness.run.finalize`). When
Slurm kills the script first there is no result.json, only job.json and job.slurm.json (the job id). The next `repro`
command that reads the run directory (`verify`, `report`, `list`) calls `settle(run_dir)`: it asks Slurm for the
job's state (`scontrol show job`; without accounting there is no sacct) and, once the job has ended, writes the
failed record with that state and the engine's own failure lines. A run still queued or running is left alone.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from pathlib import Path

from harness.errors import ReproError
from harness.run.finalize import finalize
from harness.run.folder import JOB_FILE, RESULT_FILE, SLURM_FILE, rank_failures, read_json

# Slurm job states that mean the job will not run (again) by itself
ENDED = {"BOOT_FAIL", "CANCELLED", "COMPLETED", "DEADLINE", "FAILED", "NODE_FAIL", "OUT_OF_MEMORY", "PREEMPTED",
         "TIMEOUT", "SPECIAL_EXIT", "REVOKED"}
_FIELD = re.compile(r"(?:^|\s)([A-Za-z][\w/:]*)=")


def parse_scontrol(line: str) -> dict[str, str]:
    """One `scontrol show job -o` line as a dict; values may hold spaces (JobName, Command, StdOut)."""
    marks = list(_FIELD.finditer(line))
    return {m.group(1): line[m.end():marks[i + 1].start() if i + 1 < len(marks) else len(line)].strip()
            for i, m in enumerate(marks)}


def slurm_job(job_id: str) -> dict | None:
    """Slurm's view of a job: its fields, {} when Slurm no longer knows it, None when scontrol is not here."""
    if not shutil.which("scontrol"):
        return None
    try:
        out = subprocess.run(["scontrol", "show", "job", "-o", str(job_id)], capture_output=True, text=True,
                             timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if out.returncode != 0:
        text = (out.stderr + out.stdout).lower()
        # a job: "slurm_load_jobs error: Invalid job id specified"; an array task: "Job 7_1 not found"
        return {} if "invalid job id" in text or f"job {str(job_id).lower()} not found" in text else None
    lines = [ln for ln in out.stdout.splitlines() if ln.startswith("JobId=")]
    return parse_scontrol(lines[0]) if lines else {}


def _gone_from_its_array(job_id: str) -> bool:
    """An array task Slurm does not know while it still knows the array: Slurm 22.05 keeps no record of a task
    cancelled while the whole array was pending (measured: `scancel 7_1` before any task of 7 started makes
    `scontrol show job 7_1` an invalid job id at once, while `7` still lists the other tasks)."""
    array, _, task = str(job_id).partition("_")
    return bool(task) and bool(slurm_job(array))


def _exit_code(info: dict) -> int:
    """Slurm's ExitCode is `code:signal`; as a process exit code: -signal, else code, else 1 (no record: failed)."""
    code, _, sig = (info.get("ExitCode") or "0:0").partition(":")
    if sig.isdigit() and int(sig):
        return -int(sig)
    return int(code) if code.isdigit() and int(code) else 1


def describe(job_id: str, info: dict, array_known: bool = False) -> str:
    """Why the run has no record, in Slurm's words: `Slurm job 12 ended TIMEOUT (TimeLimit) ...`.
    `array_known`: the task `<array>_<i>` is unknown but its array is not (see _gone_from_its_array)."""
    if not info and array_known:
        array = job_id.partition("_")[0]
        return (f"Slurm job {job_id} ended CANCELLED while pending; it never started (Slurm drops a task cancelled "
                f"before its array {array} was split, leaving no record of it)")
    if not info:
        return f"Slurm job {job_id} is no longer known to Slurm and ended before the run was finalized"
    reason = info.get("Reason")
    why = f" ({reason})" if reason and reason != "None" else ""
    text = f"Slurm job {job_id} ended {info.get('JobState', 'UNKNOWN')}"
    if not info.get("BatchHost") and info.get("NodeList") in (None, "", "(null)"):
        return f"{text} while pending{why}; it never started"     # the reason is why it was still pending
    return f"{text}{why} before the run was finalized"


def settle(run_dir: Path | str, wait_s: float = 0) -> dict | None:
    """Write the failed record of a Slurm run that ended without one; return it (None: nothing to settle).

    `wait_s`: how long to wait for a job that is still completing (the submitting `repro --slurm-wait` uses it).
    Raises ReproError for a job still queued or running, so a reader says so instead of "no record".
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir() or (run_dir / RESULT_FILE).exists() or not (run_dir / JOB_FILE).exists():
        return None
    job_id = (read_json(run_dir / SLURM_FILE) or {}).get("job_id")
    if not job_id:
        return None
    deadline = time.monotonic() + wait_s
    while True:
        info = slurm_job(job_id)
        if info is None:
            return None                 # not on the cluster: whether the job still runs cannot be told here
        if (run_dir / RESULT_FILE).exists():
            return None                 # its finalize step wrote the record meanwhile
        state = info.get("JobState", "").split("+")[0] if info else ""
        if not info or state in ENDED:
            break
        if time.monotonic() >= deadline:
            raise ReproError(f"{run_dir}: Slurm job {job_id} is {state or 'not finished'}; its record is not written yet",
                             fix=f"wait until it ends (squeue -j {job_id}), then run this again")
        time.sleep(1)
    ranks = rank_failures(run_dir)      # what the engine itself said before it was stopped, rank 0's first
    reason = describe(job_id, info, array_known=not info and _gone_from_its_array(job_id)) + \
        (f"; {ranks}" if ranks else "")
    return finalize(run_dir, _exit_code(info), reason=reason, slurm=info or None)


def settle_all(root: Path | str) -> list[dict]:
    """Settle every ended Slurm run under a runs root, at any depth (a zoo run is runs/mmseg/<name>/<protocol>/
    <stamp>); running jobs are skipped, symlinked folders are not followed (for `repro list`)."""
    settled = []
    for folder, dirs, files in os.walk(root):
        dirs.sort()
        if SLURM_FILE not in files:
            continue
        try:
            record = settle(folder)
        except ReproError:
            continue
        if record is not None:
            settled.append(record)
    return settled
