"""What `repro train --resume` continues, and with which settings.

Only an unfinished train run is resumed: one whose job.json `repro` wrote, with a complete checkpoint and either
no result.json (killed outright) or a failed one (stopped, crashed). A succeeded run is finished and never
restarted. The run continues with its own recorded settings (data root, schedule, batch, seed, overrides, launch);
a flag given again must agree with the recorded value, or the resume is refused naming that flag.
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from pathlib import Path

from harness.errors import ReproError
from harness.run.claim import read_state
from harness.run.job import Job
from harness.run.options import LaunchOptions
from harness.run.shape import UNSET


@dataclass
class TrainSettings:
    """How a training run trains: every one of these is recorded in job.json, and `--resume` takes them back."""
    seed: int | None = None
    pretrained: Path | str | None = None
    max_iters: int | None = None
    accumulate: int = 1
    allow_batch_mismatch: bool = False
    samples_per_gpu: int | None = None
    workers_per_gpu: int | None = None
    checkpoint_interval: int | None = None
    eval_interval: int | None = None
    deterministic: bool = False
    data_root: Path | str | None = None
    cfg_options: dict = field(default_factory=dict)      # parsed
    launch: LaunchOptions = field(default_factory=LaunchOptions)


def complete_checkpoint(run_dir: Path) -> Path | None:
    from harness.engine.train import find_resume_checkpoint  # torch-free, but lives with the engine
    return find_resume_checkpoint(run_dir)


def latest_unfinished(parent: Path, reproduction: str) -> tuple[Path, Job, Path] | None:
    """(run folder, job, checkpoint) of the newest run under `parent` that `resumable` accepts."""
    candidates = sorted((d for d in parent.glob("*") if d.is_dir() and any(d.glob("iter_*.pth"))),
                        key=lambda d: d.stat().st_mtime, reverse=True)
    for run_dir in candidates:
        try:
            return (run_dir, *resumable(run_dir, reproduction))
        except ReproError:
            continue
    return None


def resumable(run_dir: Path, reproduction: str) -> tuple[Job, Path]:
    """(its job, the checkpoint to continue from) for an unfinished train run; else the one-line refusal."""
    fix = "run without --resume to start a new run, or pass the unfinished run's directory with --work-dir"
    if not run_dir.is_dir():
        raise ReproError(f"nothing to resume: {run_dir} does not exist", fix=fix)
    state = read_state(run_dir)
    job = state.job
    if job is None:
        raise ReproError(f"nothing to resume: {run_dir} holds no repro run (no job.json)", fix=fix)
    if job.kind != "train" or job.reproduction != reproduction:
        raise ReproError(f"nothing to resume: {run_dir} is a {job.kind} run of {job.reproduction}, "
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


def recorded_settings(job: Job, given: TrainSettings) -> TrainSettings:
    """The interrupted job's settings; each one given (not None / not the default) must agree with it."""
    batch = job.get("batch", {})
    recorded = TrainSettings(
        seed=job.get("seed"), max_iters=job.get("max_iters"), accumulate=job.get("accumulate", 1),
        allow_batch_mismatch=bool(batch.get("allow_batch_mismatch")),
        samples_per_gpu=job.get("samples_per_gpu"), workers_per_gpu=job.get("workers_per_gpu"),
        checkpoint_interval=job.get("checkpoint_interval"), eval_interval=job.get("eval_interval"),
        deterministic=bool(job.get("deterministic")), data_root=job.get("data_root"),
        pretrained=job.get("pretrained", {}).get("path"), cfg_options=job.get("cfg_options", {}))
    unset = TrainSettings()
    compare = {"data_root": _same_path, "pretrained": _same_path}
    for f in fields(TrainSettings):
        if f.name == "launch":
            continue
        mine, value = getattr(given, f.name), getattr(recorded, f.name)
        if mine is None or mine == getattr(unset, f.name):
            continue
        if value is None or not compare.get(f.name, lambda a, b: a == b)(mine, value):
            flag = "--cfg-options" if f.name == "cfg_options" else "--" + f.name.replace("_", "-")
            raise ReproError(f"{flag} {_show(mine)} differs from the interrupted run's {_show(value)}",
                             fix=f"drop {flag} to resume with the run's own setting, or start a new run without "
                                 "--resume")
    return replace(recorded, launch=_launch(job, given.launch))


def _show(value) -> str:
    if value is None:
        return "(not set: the config's default)"
    if isinstance(value, dict):
        return " ".join(f"{k}={v!r}" for k, v in value.items()) or "(none)"
    return str(value)


def _launch(job: Job, given: LaunchOptions) -> LaunchOptions:
    """The recorded launch; options given again replace where it runs, but not how many processes train."""
    defaults = LaunchOptions()
    names = [f.name for f in fields(LaunchOptions)]
    launch = LaunchOptions(**{n: getattr(job.launch, n) for n in names
                              if getattr(job.launch, n, UNSET) is not UNSET})
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
