"""A batch read back: every run it lists, with its state now, for `repro verify BATCH` and `repro report BATCH`.

A run's own result.json is the truth (a Slurm run that ended without one is settled first, harness/run/settle.py);
a run without one is shown as what it is: still queued or running, stopped before it finished, or never
started (refused by its preflight, or not reached), never left out.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from harness.batch.batchfile import is_batch, load_batch
from harness.errors import ReproError, printable
from harness.run.folder import RESULT_FILE
from harness.run.record import read_result
from harness.run.settle import settle

NOT_FINISHED, NOT_STARTED = "not finished", "not started"


@dataclass
class Member:
    batch: Path
    task: int
    reproduction: str
    protocol: str
    run_dir: Path
    state: str                 # succeeded | failed | not finished | not started
    reason: str | None = None
    record: dict | None = None

    @property
    def result_path(self) -> Path:
        return self.run_dir / RESULT_FILE

    @property
    def verifiable(self) -> bool:
        """A record with metrics: the verdict judges it (a failed record with metrics fails its status check)."""
        return bool(self.record and isinstance(self.record.get("metrics"), dict) and self.record["metrics"])

    @property
    def label(self) -> str:
        return f"{self.reproduction} {self.protocol} (task {self.task})"

    def line(self) -> str:
        """The run's FAIL line; its names, reason and folder come from files, so control characters are shown."""
        return printable(f"FAIL {self.label}: {self.state}: {self.reason or 'no reason recorded'} — {self.run_dir}")

    def stand_in(self) -> dict:
        """A record-shaped stand-in for the report of a run that has no record (never written by us to disk)."""
        return {"reproduction": self.reproduction, "protocol": self.protocol, "kind": "eval", "status": self.state,
                "failure": self.reason, "metrics": {}, "per_class": {}, "artifacts": {}, "timing": {}, "launch": {},
                "environment": {}}


def _member(batch_dir: Path, item: dict) -> Member:
    run_dir = (batch_dir / item["run_dir"]).resolve()
    member = Member(batch_dir, item.get("task", 0), item.get("reproduction"), item.get("protocol"), run_dir,
                    NOT_FINISHED, item.get("failure"))
    try:
        settle(run_dir)             # a Slurm task that ended without its record gets it now
    except ReproError as exc:       # still queued or running
        member.reason = exc.message
        return member
    if (run_dir / RESULT_FILE).is_file():
        member.record = read_result(run_dir)
        member.state = member.record.get("status") or "failed"
        member.reason = member.record.get("failure")
        return member
    state = item.get("state")
    if state == "not-started" or (state == "pending" and not run_dir.exists()):
        member.state = NOT_STARTED
        member.reason = item.get("failure") or "the batch stopped before this run started"
    elif state == "running":
        member.reason = item.get("failure") or f"the batch was stopped while it ran; no {RESULT_FILE} in {run_dir}"
    else:
        job = item.get("slurm_job")
        member.reason = item.get("failure") or (f"no {RESULT_FILE} yet" + (f" (Slurm job {job})" if job else ""))
    return member


def batch_members(path: Path | str) -> list[Member]:
    batch_dir, batch = load_batch(path)
    return [_member(batch_dir, item) for item in batch["runs"]]


def expand(paths) -> tuple[list[Path], list[Member]]:
    """Split command-line paths into plain runs and the members of the batches among them."""
    plain: list[Path] = []
    members: list[Member] = []
    for item in paths:
        if is_batch(item):
            members += batch_members(item)
        else:
            plain.append(Path(item))
    if not plain and not members:
        raise ReproError("the batch lists no run", fix="pass a batch folder made by `repro batch`")
    return plain, members
