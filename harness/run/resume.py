"""What `repro train --resume` and `repro eval --resume` continue, and with which settings.

Only an unfinished train run is resumed: one whose job.json `repro` wrote, with a complete checkpoint and either
no result.json (killed outright) or a failed one (stopped, crashed). A succeeded run is finished and never
restarted. The run continues with its own recorded settings (data root, schedule, batch, seed, overrides, launch);
a flag given again must agree with the recorded value, or the resume is refused naming that flag.

An evaluation is resumed the same way, from the images its ledger chunks hold instead of a checkpoint: an eval run
with no result.json or a failed one; its settings (checkpoint, protocol, engine, precision, data) must agree
(harness/ledger/resume.py keeps the sessions, which the engine checks again).
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from pathlib import Path

from harness.errors import ReproError
from harness.ledger.resume import FIX as RESUME_FIX
from harness.ledger.resume import ResumeRefused, compare_settings, settings_of
from harness.run.claim import read_state
from harness.run.folder import JOB_FILE
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
    cfg_options: dict = field(default_factory=dict)      # KEY -> VALUE text (harness/cfg_options.normalize)
    launch: LaunchOptions = field(default_factory=LaunchOptions)
    reference: tuple[str, ...] = ()                  # --reference (harness/curves); --resume keeps the job's own
    allow_setup_difference: tuple[str, ...] = ()
    stop_when_off_track: bool = False


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


def _unfinished(run_dir: Path, reproduction: str, kind: str, what: str, fix: str,
                refusal: type[ReproError] = ReproError) -> Job:
    """The job of an unfinished `kind` run of `reproduction` in `run_dir` (`what`: "a train run", "an evaluation",
    as the refusal names it); else the one-line refusal."""
    if not run_dir.is_dir():
        raise refusal(f"nothing to resume: {run_dir} does not exist", fix=fix)
    state = read_state(run_dir)
    job = state.job
    if job is None:
        raise refusal(f"nothing to resume: {run_dir} holds no repro run (no job.json)", fix=fix)
    if job.kind != kind or job.reproduction != reproduction:
        raise refusal(f"nothing to resume: {run_dir} is a {job.kind} run of {job.reproduction}, "
                      f"not {what} of {reproduction}", fix=fix)
    if state.record is not None and state.record.get("status") != "failed":
        raise refusal(f"{run_dir} is a finished run ({state.describe().removeprefix('a run record ')}); "
                      "--resume continues only unfinished runs", fix=fix)
    return job


def resumable(run_dir: Path, reproduction: str) -> tuple[Job, Path]:
    """(its job, the checkpoint to continue from) for an unfinished train run; else the one-line refusal."""
    fix = "run without --resume to start a new run, or pass the unfinished run's directory with --work-dir"
    job = _unfinished(run_dir, reproduction, "train", "a train run", fix)
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
        if f.name in ("launch", "reference", "allow_setup_difference", "stop_when_off_track"):
            continue
        mine, value = getattr(given, f.name), getattr(recorded, f.name)
        if mine is None or mine == getattr(unset, f.name):
            continue
        if value is None or not compare.get(f.name, lambda a, b: a == b)(mine, value):
            flag = "--cfg-options" if f.name == "cfg_options" else "--" + f.name.replace("_", "-")
            raise ReproError(f"{flag} {_show(mine)} differs from the interrupted run's {_show(value)}",
                             fix=f"drop {flag} to resume with the run's own setting, or start a new run without "
                                 "--resume")
    return replace(recorded, launch=_launch(job, given.launch), reference=given.reference,
                   allow_setup_difference=given.allow_setup_difference,
                   stop_when_off_track=given.stop_when_off_track)


def _show(value) -> str:
    if value is None:
        return "(not set: the config's default)"
    if isinstance(value, dict):
        return " ".join(f"{k}={v}" for k, v in value.items()) or "(none)"
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


# ------------------------------------------------------------------------------------------------ repro eval --resume
# An evaluation continues from the images its ledger chunks hold (harness/ledger/resume.py: the sessions and the
# settings they share); here: which run `--resume` continues, and with which of its recorded settings.

def _unfinished_eval(run_dir: Path, reproduction: str, protocol: str | None) -> Job:
    """The job of an unfinished eval run of `reproduction` (and `protocol` when given); else the refusal."""
    fix = "run without --resume to start a new evaluation, or pass the unfinished run's directory with --work-dir"
    job = _unfinished(run_dir, reproduction, "eval", "an evaluation", fix, ResumeRefused)
    if protocol is not None and job.protocol != protocol:
        raise ResumeRefused(f"{run_dir}: the protocol differs from the interrupted evaluation's ({protocol}, "
                            f"recorded {job.protocol})", fix=RESUME_FIX)
    return job


def find_unfinished_eval(runs_root: Path, reproduction: str, protocol: str | None,
                         work_dir=None) -> tuple[Path, Job]:
    """(run folder, its job) for `repro eval --resume`: `work_dir`, else the newest unfinished eval run under
    `<runs>/<id>/<protocol>/`."""
    if work_dir:
        run_dir = Path(work_dir).expanduser().resolve()
        return run_dir, _unfinished_eval(run_dir, reproduction, protocol)
    parent = Path(runs_root) / reproduction / (protocol or "ss")
    candidates = sorted((d for d in parent.glob("*") if d.is_dir() and (d / JOB_FILE).is_file()),
                        key=lambda d: d.stat().st_mtime, reverse=True)
    for run_dir in candidates:
        try:
            return run_dir, _unfinished_eval(run_dir, reproduction, protocol)
        except ResumeRefused:
            continue
    raise ResumeRefused(f"nothing to resume: no unfinished evaluation of {reproduction} ({protocol or 'ss'}) under "
                        f"{parent} (finished runs are not resumed)",
                        fix="run without --resume, or pass the unfinished run's directory with --work-dir")


def eval_resume_arguments(reproduction: str, runs_root: Path, work_dir, overwrite: bool,
                          given: dict) -> tuple[Path, dict]:
    """(run folder, evaluate()'s arguments as the interrupted run recorded them) for `repro eval --resume`.

    `given` holds evaluate()'s arguments, None where not given: protocol, checkpoint, data_root, engine,
    precision, cfg_options (a dict), launch (LaunchOptions; the default one: not given). A given checkpoint or
    data root replaces the recorded one here and is compared, as it is resolved, by `check_eval_job`; a given
    protocol, engine, precision or override must agree now. The launch may change (the images left are sharded
    over the processes there are); a given one replaces the recorded one.
    """
    if overwrite:
        raise ResumeRefused("--resume continues a run in place and --overwrite moves one aside: pass one of them")
    run_dir, job = find_unfinished_eval(runs_root, reproduction, given.get("protocol"), work_dir)
    recorded = {"protocol": job.protocol, "engine": job.get("eval_engine") or "stock",
                "precision": job.get("precision") or "fp32"}
    for name, value in recorded.items():
        if given.get(name) is not None and given[name] != value:
            raise ResumeRefused(f"{run_dir}: the {name} differs from the interrupted evaluation's ({given[name]}, "
                                f"recorded {value})", fix=RESUME_FIX)
    options = given.get("cfg_options")
    if options and dict(options) != (job.get("cfg_options") or {}):
        raise ResumeRefused(f"{run_dir}: --cfg-options differ from the interrupted evaluation's "
                            f"({job.get('cfg_options') or 'none'})", fix=RESUME_FIX)
    launch = given.get("launch") or LaunchOptions()
    if launch == LaunchOptions():
        names = [f.name for f in fields(LaunchOptions)]
        launch = LaunchOptions(**{n: getattr(job.launch, n) for n in names
                                  if getattr(job.launch, n, UNSET) not in (UNSET, None)})
    return run_dir, dict(recorded, launch=launch, cfg_options=job.get("cfg_options") or {},
                         checkpoint=given.get("checkpoint") or job.get("checkpoint", {}).get("path"),
                         data_root=given.get("data_root") or job.get("data_root"),
                         show_dir=job.get("show_dir"), show_limit=job.get("show_limit"), recorded_job=job,
                         first_started=job.get("first_started") or job.started)


def check_eval_job(recorded_job: Job, job: Job, run_dir: Path) -> None:
    """The resumed job's settings (checkpoint hashed and data manifest read as they are now) against the
    interrupted one's: the first that differs is refused, named."""
    compare_settings(settings_of(recorded_job), settings_of(job), str(run_dir))
