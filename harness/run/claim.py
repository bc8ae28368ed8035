"""Claiming a run folder: the one written-once rule for every kind (`--work-dir`, the default stamped folders under
the runs root, batch folders, `repro import -o`).

A folder counts as a run folder (ours) when it holds a job file or a result record that `repro` wrote, and nothing
but the files a run makes (harness/run/folder.py: RUN_FILES). A new or empty folder is claimed; one holding a run
needs `--overwrite` (eval, train), which renames it to `<name>.old-<UTC stamp>` beside itself, whole, before the
new run starts in a fresh folder: the earlier record, logs and checkpoints are kept and nothing of two runs is
ever mixed. Everything else that is not empty is refused, `--overwrite` included, and never moved or deleted: a
folder without our marker may be the user's project, home directory or an mmseg work_dir of their own, and a run
folder holding a file a run does not make (notes, a report written there by hand) holds something of the user's.

Atomic against a concurrent claimant: the claim is the creation of `<folder>/.claim` with O_EXCL (after an
exclusive mkdir where the folder is new), checked afterwards to be the only entry; it is removed (`release`) once
the folder's own marker (job.json, result.json, batch.json) is in it. A symlink inside a folder is never followed:
it counts as a file a run does not make. Every folder the harness names itself lies inside the runs root
(REPRO_RUNS); only a folder the user names (--work-dir, -o, --batch-dir) may lie elsewhere.
"""
from __future__ import annotations

import os
import socket
from dataclasses import dataclass, field
from pathlib import Path

from harness import clock, paths
from harness.errors import ReproError
from harness.run.folder import CLAIM_FILE, JOB_FILE, RESULT_FILE, RUN_FOLDERS, is_run_file, read_json
from harness.run.job import Job, try_read_job
from harness.run.record import SCHEMA


@dataclass
class RunDirState:
    """What a folder holds, as far as claiming it is concerned."""
    path: Path
    entries: list[str] = field(default_factory=list)
    job: Job | None = None           # the run's job.json (or a node's job file), when ours
    record: dict | None = None       # its result.json, when ours

    @property
    def ours(self) -> bool:
        return self.job is not None or self.record is not None

    @property
    def foreign(self) -> list[str]:
        """Entries a run does not make (a symlink is never one a run makes)."""
        def made_by_a_run(name: str) -> bool:
            entry = self.path / name
            if entry.is_symlink():
                return False
            if entry.is_dir():
                return name in RUN_FOLDERS
            return is_run_file(name)
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
        job = self.job
        checkpoints = sorted(self.path.glob("iter_*.pth"))
        have = f"; checkpoints: {len(checkpoints)}" if checkpoints else ""
        return f"an unfinished {job.kind if job else None} run of {job.reproduction if job else None} " \
               f"(no result.json{have})"


def _regular(path: Path) -> bool:
    return path.is_file() and not path.is_symlink()


def read_state(path: Path) -> RunDirState:
    path = Path(path)
    state = RunDirState(path, sorted(entry.name for entry in path.iterdir()))
    record = read_json(path / RESULT_FILE) if _regular(path / RESULT_FILE) else None
    if record is not None and record.get("schema") == SCHEMA:
        state.record = record
    job_files = [n for n in state.entries if n.startswith("job") and n.endswith(".json") and n != JOB_FILE]
    for name in [JOB_FILE, *job_files]:
        if _regular(path / name):
            job = try_read_job(path / name)
            if job is not None:
                state.job = job
                break
    return state


def _names(entries: list[str], limit: int = 3) -> str:
    shown = ", ".join(entries[:limit])
    return shown + (f" and {len(entries) - limit} more" if len(entries) > limit else "")


def aside_name(path: Path, stamp: str | None = None) -> Path:
    """`<path>.old-<UTC stamp>`, beside it; `-1`, `-2`, ... when that name is taken."""
    stamp = stamp or clock.stamp()
    for n in range(1000):
        candidate = path.with_name(f"{path.name}.old-{stamp}" + (f"-{n}" if n else ""))
        if not os.path.lexists(candidate):
            return candidate
    raise ReproError(f"no free name to move {path} aside", fix="remove old `.old-*` run folders beside it")


def _take(path: Path, flag: str) -> None:
    """Create `<path>/.claim` exclusively, then check it is the folder's only entry; else the one-line refusal."""
    if path.is_symlink():
        raise ReproError(f"{flag} {path} is a symlink", fix=f"pass the folder it points to as {flag}")
    try:
        fd = os.open(path / CLAIM_FILE, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
    except FileExistsError:
        raise _being_claimed(path, flag) from None
    with os.fdopen(fd, "w") as fh:
        fh.write(f"{os.getpid()} {socket.gethostname()} {clock.iso_now()}\n")
    others = sorted(e.name for e in path.iterdir() if e.name != CLAIM_FILE)
    if others:        # another command claimed, filled and released it between our look and our claim
        release(path)
        raise ReproError(f"{flag} {path} was filled by another command meanwhile ({_names(others)})",
                         fix=f"pass another {flag}")


def _being_claimed(path: Path, flag: str) -> ReproError:
    return ReproError(f"{flag} {path} is being claimed by another command (it holds {CLAIM_FILE})",
                      fix=f"pass another {flag} (or, if no repro command is running, remove {path / CLAIM_FILE})")


def release(path: Path) -> None:
    """The claim is over: the folder's marker (job.json, result.json, batch.json) is in it."""
    (Path(path) / CLAIM_FILE).unlink(missing_ok=True)


@dataclass
class Claim:
    """A decision about a run folder, made before anything is written; `apply` carries it out."""
    path: Path
    action: str                      # "create" | "use" (empty) | "join" (another node's run) | "move-aside"
    held: str | None = None          # what the folder holds, for messages
    flag: str = "--work-dir"

    def apply(self) -> Path | None:
        """Claim the folder (moving the earlier run aside first, if so decided); return where that run went.
        Raises the one-line refusal when another command claimed it first."""
        if self.action == "join":
            return None
        moved = None
        if self.action == "move-aside":
            _take_over(self.path, self.flag)
            moved = aside_name(self.path)
            os.rename(self.path, moved)      # one rename in the same parent: the old run stays whole
            release(moved)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.mkdir(self.path)
        except FileExistsError:
            if self.action == "move-aside":
                raise ReproError(f"{self.flag} {self.path} was claimed by another command meanwhile",
                                 fix=f"pass another {self.flag}") from None
        _take(self.path, self.flag)
        return moved

    def abandon(self) -> None:
        """Undo a claim whose run never wrote its marker: the claim file goes, the folder too if left empty."""
        release(self.path)
        try:
            self.path.rmdir()
        except OSError:
            pass


def _take_over(path: Path, flag: str) -> None:
    """Before moving a run aside: claim the folder holding it, so two `--overwrite`s do not both move it."""
    try:
        fd = os.open(path / CLAIM_FILE, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
    except FileExistsError:
        raise _being_claimed(path, flag) from None
    os.close(fd)


def _joins(state: RunDirState, job: Job | None) -> bool:
    """A node of a multi-node run arriving at the run folder another node already started."""
    if state.record is not None or state.job is None or job is None:
        return False
    mine, theirs = job.launch, state.job.launch
    if (mine.nnodes or 1) < 2:
        return False
    same = ("launcher", "nnodes", "gpus", "master_addr", "master_port")
    return all(getattr(mine, k) == getattr(theirs, k) for k in same) and all(
        getattr(job, k) == getattr(state.job, k) for k in ("kind", "reproduction", "protocol"))


def plan_claim(folder: Path | str, overwrite: bool = False, job: Job | None = None, inputs=(),
               flag: str = "--work-dir") -> Claim:
    """Decide what to do with a folder the user named, or raise the one-line refusal; writes nothing.
    `job`: the run about to start (a node joining its run's folder); `inputs`: files this run reads."""
    path = Path(folder).expanduser().resolve()
    if not os.path.lexists(path):
        return Claim(path, "create", flag=flag)
    if not path.is_dir():
        raise ReproError(f"{flag} {path} is a file", fix=f"pass a new or empty folder as {flag}")
    state = read_state(path)
    if not state.entries:
        return Claim(path, "use", flag=flag)
    if CLAIM_FILE in state.entries and not state.ours:
        raise _being_claimed(path, flag)
    if not state.ours:
        raise ReproError(f"{flag} {path} is not empty and holds no repro run ({_names(state.entries)})",
                         fix=f"pass a new or empty folder as {flag} (repro never moves or deletes a folder it "
                             "did not make, --overwrite included)")
    foreign = state.foreign
    if foreign:
        raise ReproError(f"{flag} {path} holds a repro run and files a run does not make: {_names(foreign)}",
                         fix=f"move those files out of it, or pass another {flag} (--overwrite moves only a "
                             "folder holding nothing but a run)")
    if _joins(state, job):
        return Claim(path, "join", state.describe(), flag=flag)
    held = state.describe()
    if not overwrite:
        resume = ""
        if state.record is None and state.job is not None and state.job.kind == "train" \
                and any(path.glob("iter_*.pth")):
            resume = f", continue it with `repro train {state.job.reproduction} --resume --work-dir {path}`"
        how = (f"pass --overwrite to move that run aside to {path.name}.old-<timestamp> (kept){resume}, or "
               if job is not None else "")
        raise ReproError(f"{flag} {path} already holds {held}; a run directory is written once",
                         fix=f"{how}pass another {flag}")
    inside = [str(p) for p in inputs if p and Path(p).expanduser().resolve().is_relative_to(path)]
    if inside:
        raise ReproError(f"--overwrite would move {path} aside, but this run reads {_names(inside)} from it",
                         fix=f"copy that input elsewhere first, or pass another {flag}")
    return Claim(path, "move-aside", held, flag=flag)


def claim_new(folder: Path | str, flag: str) -> Path:
    """A folder the user named for a batch or an import: claimed when new or empty, else refused; never moved."""
    claim = plan_claim(folder, flag=flag)
    claim.apply()
    return claim.path


def inside_runs_root(path: Path) -> Path:
    """`path`, which the harness named itself, if it lies inside the runs root; else a one-line refusal."""
    root = paths.runs_root()
    if not Path(path).resolve().is_relative_to(root):
        raise ReproError(f"{path} would lie outside the runs root {root}",
                         fix="name the folder yourself (--work-dir / -o / --batch-dir), or set REPRO_RUNS")
    return path


def new_stamped_dir(parent: Path) -> Path:
    """parent/<UTC stamp>[-n]/, created empty; never reuses a folder (mkdir decides, so racing callers differ)."""
    stamp = clock.stamp()
    for n in range(1000):
        candidate = parent / (stamp if n == 0 else f"{stamp}-{n}")
        candidate.parent.mkdir(parents=True, exist_ok=True)
        try:
            candidate.mkdir()
            return candidate
        except FileExistsError:
            continue
    raise ReproError(f"cannot create a fresh folder under {parent}", fix="remove old run folders there")


def new_run_dir(reproduction: str, kind: str, root: Path | None = None) -> Path:
    """runs/<reproduction>/<protocol or train>/<UTC stamp>/, created empty (not claimed: pass it as a work_dir);
    never reuses a folder. Without `root`, it must lie inside the runs root."""
    parent = (root or paths.runs_root()) / reproduction / kind
    if root is None:
        inside_runs_root(parent)
    return new_stamped_dir(parent)


def claim_default(parent: Path) -> Claim:
    """The harness's own folder for a run, batch or import: a new stamped folder under `parent` (inside the runs
    root), claimed like any other."""
    claim = Claim(new_stamped_dir(inside_runs_root(parent)), "use", flag="the run folder")
    claim.apply()
    return claim
