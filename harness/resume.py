"""What `repro train --resume` continues, and with which settings.

Only an unfinished train run is resumed: one whose job.json `repro` wrote, with a complete checkpoint and either
no result.json (killed outright) or a failed one (stopped, crashed). A succeeded run is finished and never
restarted. The run continues with its own recorded settings (data root, schedule, batch, seed, overrides, launch);
a flag given again must agree with the recorded value, or the resume is refused naming that flag.
"""
from __future__ import annotations

from dataclasses import fields as dataclass_fields
from pathlib import Path

from harness.errors import ReproError
from harness.rundir import read_state


def complete_checkpoint(run_dir: Path) -> Path | None:
    from harness.engine.train import find_resume_checkpoint  # torch-free, but lives with the engine
    return find_resume_checkpoint(run_dir)


def latest_unfinished(parent: Path, reproduction: str) -> tuple[Path, dict, Path] | None:
    """(run directory, job, checkpoint) of the newest run under `parent` that `resumable` accepts."""
    candidates = sorted((d for d in parent.glob("*") if d.is_dir() and any(d.glob("iter_*.pth"))),
                        key=lambda d: d.stat().st_mtime, reverse=True)
    for run_dir in candidates:
        try:
            return (run_dir, *resumable(run_dir, reproduction))
        except ReproError:
            continue
    return None


def resumable(run_dir: Path, reproduction: str) -> tuple[dict, Path]:
    """(its job, the checkpoint to continue from) for an unfinished train run; else the one-line refusal."""
    fix = "run without --resume to start a new run, or pass the unfinished run's directory with --work-dir"
    if not run_dir.is_dir():
        raise ReproError(f"nothing to resume: {run_dir} does not exist", fix=fix)
    state = read_state(run_dir)
    job = state.job
    if job is None:
        raise ReproError(f"nothing to resume: {run_dir} holds no repro run (no job.json)", fix=fix)
    if job.get("kind") != "train" or job.get("reproduction") != reproduction:
        raise ReproError(f"nothing to resume: {run_dir} is a {job.get('kind')} run of {job.get('reproduction')}, "
                         f"not a train run of {reproduction}", fix=fix)
    if state.record is not None and state.record.get("status") != "failed":
        raise ReproError(f"{run_dir} is a finished run ({state.describe().removeprefix('a run record ')}); "
                         "--resume continues only unfinished runs", fix=fix)
    checkpoint = complete_checkpoint(run_dir)
    if checkpoint is None:
        raise ReproError(f"nothing to resume: no complete iter_*.pth checkpoint in {run_dir}", fix=fix)
    return job, checkpoint


def _same_path(a, b) -> bool:
    return Path(a).expanduser().resolve() == Path(b).expanduser().resolve()


def recorded_settings(job: dict, given: dict) -> dict:
    """train()'s arguments from the interrupted job; each given value (not None / not the default) must agree.

    `given` holds train()'s own arguments: seed, pretrained, max_iters, accumulate, allow_batch_mismatch,
    samples_per_gpu, workers_per_gpu, checkpoint_interval, eval_interval, deterministic, data_root, cfg_options
    (parsed to a dict) and launch.
    """
    from harness.launch import LaunchOptions

    batch = job.get("batch") or {}
    recorded = {
        "seed": job.get("seed"), "max_iters": job.get("max_iters"), "accumulate": job.get("accumulate", 1),
        "allow_batch_mismatch": bool(batch.get("allow_batch_mismatch")),
        "samples_per_gpu": job.get("samples_per_gpu"), "workers_per_gpu": job.get("workers_per_gpu"),
        "checkpoint_interval": job.get("checkpoint_interval"), "eval_interval": job.get("eval_interval"),
        "deterministic": bool(job.get("deterministic")), "data_root": job.get("data_root"),
        "pretrained": (job.get("pretrained") or {}).get("path"), "cfg_options": job.get("cfg_options") or {},
    }
    unset = {"accumulate": 1, "allow_batch_mismatch": False, "deterministic": False, "cfg_options": {}}
    compare = {"data_root": _same_path, "pretrained": _same_path}
    for name, value in recorded.items():
        mine = given.get(name)
        if mine is None or mine == unset.get(name, None):
            continue
        if value is None or not compare.get(name, lambda a, b: a == b)(mine, value):
            flag = "--cfg-options" if name == "cfg_options" else "--" + name.replace("_", "-")
            raise ReproError(f"{flag} {_show(mine)} differs from the interrupted run's {_show(value)}",
                             fix=f"drop {flag} to resume with the run's own setting, or start a new run without "
                                 "--resume")
    settings = dict(recorded)
    settings["launch"] = _launch(job.get("launch") or {}, given.get("launch") or LaunchOptions())
    return settings


def _show(value) -> str:
    if value is None:
        return "(not set: the config's default)"
    if isinstance(value, dict):
        return " ".join(f"{k}={v!r}" for k, v in value.items()) or "(none)"
    return str(value)


def _launch(recorded: dict, given):
    """The recorded launch; options given again replace where it runs, but not how many processes train."""
    from harness.launch import LaunchOptions

    defaults = LaunchOptions()
    names = [f.name for f in dataclass_fields(LaunchOptions)]
    launch = LaunchOptions(**{n: recorded[n] for n in names if n in recorded})
    for name in names:
        mine = getattr(given, name)
        if mine == getattr(defaults, name) or mine == getattr(launch, name):
            continue
        if name in ("gpus", "nnodes"):
            flag = "--" + name.replace("_", "-")
            raise ReproError(f"{flag} {mine} differs from the interrupted run's {getattr(launch, name)} "
                             "(the world size sets the batch and the data order)",
                             fix=f"drop {flag} to resume on the run's own process count, or start a new run")
        setattr(launch, name, mine)
    return launch
