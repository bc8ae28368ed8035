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

Everything here is torch-free: `repro eval --resume` (harness/run/resume.py: which run, with which settings)
checks the settings before anything starts. The Slurm job script's part is harness/run/launch.py (REQUEUE_LINES).
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

from harness.errors import ReproError
from harness.fileio import file_sha256, write_json_atomic
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


def window_batch_of(parts: Path) -> int | None:
    """The fast engine's windows per forward that the first session recorded (every later session keeps it: the
    batches an image's windows form are part of what makes its pixels)."""
    return next((s["window_batch"] for s in sessions(parts) if isinstance(s.get("window_batch"), int)), None)


def start_session(parts: Path, job: dict, write: bool = True, window_batch: int | None = None) -> int:
    """Check this session's settings against the earlier sessions'; mark it (`write`: rank 0) with the fast
    engine's `window_batch`; return its number."""
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
            "launcher": launch.get("launcher"), "images_done_before": _images_done(parts),
            "window_batch": window_batch})
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
