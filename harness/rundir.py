"""A run directory is written once: claiming a `--work-dir` for a new run, and moving an earlier run aside.

A folder counts as a run directory (ours) when it holds a job file or a result record that `repro` wrote, and
nothing but the files a run makes (RUN_FILES). Reusing one that holds a run needs `--overwrite`, which renames it
to `<name>.old-<UTC stamp>` beside itself, whole, before the new run starts in a fresh folder: the earlier record,
logs and checkpoints are kept and nothing of two runs is ever mixed.

Everything else that is not empty is refused, `--overwrite` included, and never moved or deleted: a folder
without our marker may be the user's project, home directory or an mmseg work_dir of their own, and a run
directory holding a file a run does not make (notes, a report written there by hand) holds something of the
user's, which moving the folder would take away from where they put it.
"""
from __future__ import annotations

import fnmatch
import json
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from harness.errors import ReproError

# what a run (any launcher, any rank) and the commands reading it write into a run directory
RUN_FILES = ("job*.json", "job.sbatch", "result.json", "engine*.json", "failure*.txt", "console*.log",
             "config.py", "*.log", "*.log.json", "eval_*.json", "*.pth", "slurm-*.out", "verify*.xml", ".*.tmp",
             "ledger.npz")
# `repro import` copies its source files to imported/; the evaluation writes the report's gallery/, and mmseg's
# multi-process result collection .dist_test/ (left behind by a killed run), the ledger's chunks ledger.parts/
RUN_FOLDERS = ("imported", "gallery", ".dist_test", "ledger.parts")
RECORD_SCHEMA = "repro.result/1"


def _read_json(path: Path) -> dict | None:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


@dataclass
class RunDirState:
    """What a folder holds, as far as claiming it is concerned."""
    path: Path
    entries: list[str] = field(default_factory=list)
    job: dict | None = None          # the run's job.json (or a node's job file), when ours
    record: dict | None = None       # its result.json, when ours

    @property
    def ours(self) -> bool:
        return self.job is not None or self.record is not None

    @property
    def foreign(self) -> list[str]:
        """Entries a run does not make."""
        def made_by_a_run(name: str) -> bool:
            entry = self.path / name
            if entry.is_dir() and not entry.is_symlink():
                return name in RUN_FOLDERS
            return any(fnmatch.fnmatchcase(name, pattern) for pattern in RUN_FILES)
        return [name for name in self.entries if not made_by_a_run(name)]

    def describe(self) -> str:
        """`a run record (eval eva02_demo ss, succeeded, mIoU 31.87)` or `an unfinished train run of ...`."""
        if self.record is not None:
            rec = self.record
            miou = (rec.get("metrics") or {}).get("mIoU")
            facts = [f"{rec.get('kind')} {rec.get('reproduction')} {rec.get('protocol')}", str(rec.get("status"))]
            if isinstance(miou, (int, float)):
                facts.append(f"mIoU {miou:.2f}")
            return f"a run record ({', '.join(facts)})"
        job = self.job or {}
        checkpoints = sorted(self.path.glob("iter_*.pth"))
        have = f"; checkpoints: {len(checkpoints)}" if checkpoints else ""
        return f"an unfinished {job.get('kind')} run of {job.get('reproduction')} (no result.json{have})"


def read_state(path: Path) -> RunDirState:
    path = Path(path)
    state = RunDirState(path, sorted(entry.name for entry in path.iterdir()))
    record = _read_json(path / "result.json")
    if record is not None and record.get("schema") == RECORD_SCHEMA:
        state.record = record
    for name in ["job.json", *(n for n in state.entries if fnmatch.fnmatchcase(n, "job*.json") and n != "job.json")]:
        job = _read_json(path / name)
        if job is not None and job.get("kind") in ("eval", "train") and job.get("reproduction"):
            state.job = job
            break
    return state


def _names(entries: list[str], limit: int = 3) -> str:
    shown = ", ".join(entries[:limit])
    return shown + (f" and {len(entries) - limit} more" if len(entries) > limit else "")


def aside_name(path: Path, now: datetime | None = None) -> Path:
    """`<path>.old-<UTC stamp>`, beside it; `-1`, `-2`, ... when that name is taken."""
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%dT%H%M%SZ")
    for n in range(1000):
        candidate = path.with_name(f"{path.name}.old-{stamp}" + (f"-{n}" if n else ""))
        if not os.path.lexists(candidate):
            return candidate
    raise ReproError(f"no free name to move {path} aside", fix="remove old `.old-*` run folders beside it")


@dataclass
class Claim:
    """A decision about a run directory, made before anything is written; `apply` carries it out."""
    path: Path
    action: str                      # "create" | "use" (empty) | "join" (another node's run) | "move-aside"
    held: str | None = None          # what the folder holds, for messages

    def apply(self) -> Path | None:
        """Create the folder (moving the earlier run aside first, if so decided); return where that run went."""
        moved = None
        if self.action == "move-aside":
            moved = aside_name(self.path)
            os.rename(self.path, moved)      # one rename in the same parent: the old run stays whole
        self.path.mkdir(parents=True, exist_ok=True)
        return moved


def _joins(state: RunDirState, job: dict) -> bool:
    """A node of a multi-node run arriving at the run directory another node already started."""
    if state.record is not None or state.job is None:
        return False
    mine, theirs = job.get("launch") or {}, state.job.get("launch") or {}
    if (mine.get("nnodes") or 1) < 2:
        return False
    same = ("launcher", "nnodes", "gpus", "master_addr", "master_port")
    return all(mine.get(k) == theirs.get(k) for k in same) and all(
        job.get(k) == state.job.get(k) for k in ("kind", "reproduction", "protocol"))


def plan_claim(work_dir: Path, overwrite: bool, job: dict, inputs: list[str | Path] = ()) -> Claim:
    """Decide what to do with `--work-dir`, or raise the one-line refusal; writes nothing."""
    path = Path(work_dir).expanduser().resolve()
    if not path.exists():
        return Claim(path, "create")
    if not path.is_dir():
        raise ReproError(f"--work-dir {path} is a file", fix="pass a new or empty folder as --work-dir")
    state = read_state(path)
    if not state.entries:
        return Claim(path, "use")
    if not state.ours:
        raise ReproError(f"--work-dir {path} is not empty and holds no repro run ({_names(state.entries)})",
                         fix="pass a new or empty folder as --work-dir (repro never moves or deletes a folder it "
                             "did not make, --overwrite included)")
    foreign = state.foreign
    if foreign:
        raise ReproError(f"--work-dir {path} holds a repro run and files a run does not make: {_names(foreign)}",
                         fix="move those files out of it, or pass another --work-dir (--overwrite moves only a "
                             "folder holding nothing but a run)")
    if _joins(state, job):
        return Claim(path, "join", state.describe())
    held = state.describe()
    if not overwrite:
        resume = ""
        if state.record is None and (state.job or {}).get("kind") == "train" and any(path.glob("iter_*.pth")):
            resume = f", continue it with `repro train {state.job['reproduction']} --resume --work-dir {path}`"
        elif state.record is None and (state.job or {}).get("kind") == "eval" and (path / "ledger.parts").is_dir():
            resume = f", continue it with `repro eval {state.job['reproduction']} --resume --work-dir {path}`"
        raise ReproError(f"--work-dir {path} already holds {held}; a run directory is written once",
                         fix=f"pass --overwrite to move that run aside to {path.name}.old-<timestamp> (kept){resume}"
                             ", or pass another --work-dir")
    inside = [str(p) for p in inputs if p and Path(p).expanduser().resolve().is_relative_to(path)]
    if inside:
        raise ReproError(f"--overwrite would move {path} aside, but this run reads {_names(inside)} from it",
                         fix="copy that input elsewhere first, or pass another --work-dir")
    return Claim(path, "move-aside", held)
