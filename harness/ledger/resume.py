"""Resumable evaluation: the sessions of one evaluation, the settings they must share, and `repro eval --resume`.

An evaluation writes its ledger in chunks (`ledger.parts/`, harness/ledger/store.py). When it is stopped (SIGTERM:
a Slurm time limit's signal, a preemption; or killed outright), the chunks hold every image it finished, and a
later *session* evaluates only the others:

- `repro eval ID --resume` continues the newest unfinished eval run of ID and protocol, `repro eval --work-dir DIR
  --resume` that one; a Slurm job requeued after its time limit's signal starts the same job again, which
  continues by itself (the engine always reads the chunks of its run directory).
- Every session marks itself in `ledger.parts/session<k>.json` with the run's settings: the checkpoint's sha256,
  protocol, engine, precision and the data manifest's digest. A session whose settings differ is refused, naming
  the field (a ledger of mixed settings would be no evaluation at all).
- The finished run merges the chunks into `ledger.npz` and removes `ledger.parts/`; the record says how many
  sessions it took (`"sessions": k`). Its metrics come from the ledger's int64 sums, so they equal an
  uninterrupted run's bit for bit.

Everything here is torch-free: `repro eval --resume` checks the settings before anything starts. The Slurm job
script's part is harness/ledger/slurm.py.
"""
from __future__ import annotations

import json
import shutil
from dataclasses import fields as dataclass_fields
from pathlib import Path

from harness.errors import ReproError
from harness.fileio import file_sha256, write_json_atomic
from harness.launch import LaunchOptions
from harness.ledger.store import LEDGER_FILE, PARTS_DIR, Ledger, chunk_paths, write_ledger

SESSION_GLOB = "session*.json"
# the settings every session of one evaluation shares: field name in messages -> where job.json holds it
SETTINGS = {
    "checkpoint": lambda job: (job.get("checkpoint") or {}).get("sha256"),
    "protocol": lambda job: job.get("protocol"),
    "engine": lambda job: job.get("eval_engine") or "stock",
    "precision": lambda job: job.get("precision") or "fp32",
    "data": lambda job: (job.get("dataset") or {}).get("manifest_sha256"),
}
FLAGS = {"checkpoint": "--checkpoint", "protocol": "--protocol", "engine": "--engine", "precision": "--precision",
         "data": "--data-root"}
FIX = "resume with the run's own settings (leave the flag out), or start a new evaluation without --resume"


class ResumeRefused(ReproError):
    """A resume whose settings differ from the interrupted run's, or a run that cannot be resumed."""


def settings_of(job: dict) -> dict:
    return {name: get(job) for name, get in SETTINGS.items()}


def _short(value) -> str:
    text = str(value)
    return f"{text[:12]}…" if len(text) == 64 and all(c in "0123456789abcdef" for c in text) else text


def compare_settings(recorded: dict, now: dict, where: str) -> None:
    """Refuse (one line, naming the first differing field) settings unlike the recorded ones."""
    for name in SETTINGS:
        if recorded.get(name) != now.get(name):
            raise ResumeRefused(f"{where}: the {name} differs from the interrupted evaluation's "
                                f"({_short(now.get(name))}, recorded {_short(recorded.get(name))})", fix=FIX)


def sessions(parts: Path) -> list[dict]:
    out = []
    for path in sorted(Path(parts).glob(SESSION_GLOB), key=lambda p: int(p.stem[7:] or 0)):
        try:
            out.append(json.loads(path.read_text()))
        except (OSError, ValueError):
            continue
    return out


def start_session(parts: Path, job: dict, write: bool = True) -> int:
    """Check this session's settings against the earlier sessions'; mark it (`write`: rank 0); return its number."""
    from harness.clock import iso_now
    parts = Path(parts)
    earlier = sessions(parts)
    now = settings_of(job)
    for previous in earlier:
        compare_settings(previous.get("settings") or {}, now, str(parts))
    number = len(earlier) + 1
    if write:
        launch = job.get("launch") or {}
        write_json_atomic(parts / f"session{number}.json", {
            "session": number, "started": iso_now(), "settings": now, "world_size": launch.get("world_size"),
            "launcher": launch.get("launcher"), "images_done_before": _images_done(parts)})
    return number


def _images_done(parts: Path) -> int:
    import numpy as np
    total = 0
    for path in chunk_paths(parts):
        with np.load(path, allow_pickle=False) as data:
            total += int(data["index"].shape[0])
    return total


def finish(run_dir: Path, ledger: Ledger, session: int) -> dict:
    """Write `<run>/ledger.npz` (atomically), then remove the chunks; {"sha256", "images"} for the record."""
    path = write_ledger(Path(run_dir) / LEDGER_FILE, ledger)
    shutil.rmtree(Path(run_dir) / PARTS_DIR, ignore_errors=True)
    return {"sha256": file_sha256(path), "images": ledger.num_images}


# ------------------------------------------------------------------------------------------------ repro eval --resume

def _unfinished(run_dir: Path, reproduction: str, protocol: str | None) -> dict:
    """The job of an unfinished eval run of `reproduction` (and `protocol` when given); else the refusal."""
    from harness.rundir import read_state
    fix = "run without --resume to start a new evaluation, or pass the unfinished run's directory with --work-dir"
    if not run_dir.is_dir():
        raise ResumeRefused(f"nothing to resume: {run_dir} does not exist", fix=fix)
    state = read_state(run_dir)
    job = state.job
    if job is None:
        raise ResumeRefused(f"nothing to resume: {run_dir} holds no repro run (no job.json)", fix=fix)
    if job.get("kind") != "eval" or job.get("reproduction") != reproduction:
        raise ResumeRefused(f"nothing to resume: {run_dir} is a {job.get('kind')} run of {job.get('reproduction')}, "
                            f"not an evaluation of {reproduction}", fix=fix)
    if protocol is not None and job.get("protocol") != protocol:
        raise ResumeRefused(f"{run_dir}: the protocol differs from the interrupted evaluation's ({protocol}, "
                            f"recorded {job.get('protocol')})", fix=FIX)
    if state.record is not None and state.record.get("status") != "failed":
        raise ResumeRefused(f"{run_dir} is a finished run ({state.describe().removeprefix('a run record ')}); "
                            "--resume continues only unfinished evaluations", fix=fix)
    return job


def find_unfinished(runs_root: Path, reproduction: str, protocol: str | None, work_dir=None) -> tuple[Path, dict]:
    """(run directory, its job) for `--resume`: `work_dir`, else the newest unfinished eval run under
    `<runs>/<id>/<protocol>/`."""
    if work_dir:
        run_dir = Path(work_dir).expanduser().resolve()
        return run_dir, _unfinished(run_dir, reproduction, protocol)
    parent = Path(runs_root) / reproduction / (protocol or "ss")
    candidates = sorted((d for d in parent.glob("*") if d.is_dir() and (d / "job.json").is_file()),
                        key=lambda d: d.stat().st_mtime, reverse=True)
    for run_dir in candidates:
        try:
            return run_dir, _unfinished(run_dir, reproduction, protocol)
        except ResumeRefused:
            continue
    raise ResumeRefused(f"nothing to resume: no unfinished evaluation of {reproduction} ({protocol or 'ss'}) under "
                        f"{parent} (finished runs are not resumed)",
                        fix="run without --resume, or pass the unfinished run's directory with --work-dir")


def resume_arguments(reproduction: str, runs_root: Path, work_dir, overwrite: bool, given: dict) -> tuple[Path, dict]:
    """(run directory, evaluate()'s arguments as the interrupted run recorded them) for `repro eval --resume`.

    `given` holds evaluate()'s arguments, None where not given: protocol, checkpoint, data_root, engine,
    precision, cfg_options (a list or dict), launch (LaunchOptions; the default one: not given). A given
    checkpoint or data root replaces the recorded one here and is compared, as it is resolved, by `check_job`;
    a given protocol, engine, precision or override must agree now. The launch may change (the images left are
    sharded over the processes there are); a given one replaces the recorded one.
    """
    if overwrite:
        raise ResumeRefused("--resume continues a run in place and --overwrite moves one aside: pass one of them")
    run_dir, job = find_unfinished(runs_root, reproduction, given.get("protocol"), work_dir)
    recorded = {"protocol": job.get("protocol"), "engine": job.get("eval_engine") or "stock",
                "precision": job.get("precision") or "fp32"}
    for name, value in recorded.items():
        if given.get(name) is not None and given[name] != value:
            raise ResumeRefused(f"{run_dir}: the {name} differs from the interrupted evaluation's ({given[name]}, "
                                f"recorded {value})", fix=FIX)
    options = given.get("cfg_options")
    if options and dict(options) != (job.get("cfg_options") or {}):
        raise ResumeRefused(f"{run_dir}: --cfg-options differ from the interrupted evaluation's "
                            f"({job.get('cfg_options') or 'none'})", fix=FIX)
    launch = given.get("launch") or LaunchOptions()
    if launch == LaunchOptions():
        names = {f.name for f in dataclass_fields(LaunchOptions)}
        launch = LaunchOptions(**{k: v for k, v in (job.get("launch") or {}).items() if k in names})
    return run_dir, dict(recorded, launch=launch, cfg_options=job.get("cfg_options") or {},
                         checkpoint=given.get("checkpoint") or (job.get("checkpoint") or {}).get("path"),
                         data_root=given.get("data_root") or job.get("data_root"),
                         show_dir=job.get("show_dir"), show_limit=job.get("show_limit"), recorded_job=job,
                         first_started=job.get("first_started") or job.get("started"))


def check_job(recorded_job: dict, job_fields: dict, run_dir: Path) -> None:
    """The resumed job's settings (checkpoint hashed and data manifest read as they are now) against the
    interrupted one's: the first that differs is refused, named."""
    compare_settings(settings_of(recorded_job), settings_of(job_fields), str(run_dir))
