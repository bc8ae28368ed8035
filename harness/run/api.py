"""`repro eval` and `repro train` as two Python functions: preflight, run folder, launch, run record.

    from harness.run.api import evaluate, train
    from harness.run.options import LaunchOptions
    rec = train("eva02_demo", max_iters=40, data_root=root)                    # result.json as a dict
    rec = evaluate("eva02_demo", checkpoint=rec["_run_dir"] + "/" + rec["artifacts"]["best_checkpoint"],
                   data_root=root, launch=LaunchOptions("torchrun", gpus=2))

Both return the record they wrote (plus "_run_dir"), and raise RunFailed (a ReproError carrying the failed record)
when the processes fail. The flow, once:

1. preflight (harness/run/preflight.py): reproduction, config, checkpoint or pretrained weights, dataset, batch
   size; each failure is one line with its fix, raised before any run folder exists (a dry run prints the plan,
   then exits 2 with the first of them);
2. the run folder, claimed (harness/run/claim.py), and its job.json (harness/run/job.py);
3. the launch (harness/run/launch.py): one process, torchrun or Slurm, each running harness.engine.entry;
4. the record (harness/run/finalize.py): exit code, job.json and engine.json become result.json.
"""
from __future__ import annotations

import shlex
from dataclasses import fields, replace
from pathlib import Path

from harness import clock, paths, registry
from harness.errors import ReproError
from harness.run import launch as launching
from harness.run import preflight
from harness.run.claim import Claim, claim_default, plan_claim, release
from harness.run.finalize import finalize
from harness.run.folder import CONSOLE_LOG, ENGINE_FILE, RESULT_FILE, failure_files, job_file
from harness.run.job import Job, LaunchFacts, write_job
from harness.run.options import ENGINES, PRECISIONS, LaunchOptions, check_choice, target_device
from harness.run.record import read_result
from harness.run.resume import TrainSettings, latest_unfinished, recorded_settings, resumable
from harness.run.settle import settle
from harness.run.shape import from_dict
from harness.verify import provenance


class RunFailed(ReproError):
    """The engine ran and failed; `record` is the failed result.json that was written."""

    exit_code = 1

    def __init__(self, message: str, fix: str | None, record: dict):
        super().__init__(message, fix)
        self.record = record


class DryRunRefused(ReproError):
    """A dry run whose real run would be refused: the plan was printed, this is the (first) refusal; `plan` holds
    what a dry run returns."""

    def __init__(self, message: str, fix: str | None, plan: dict):
        super().__init__(message, fix)
        self.plan = plan


def _parse_cfg_options(options: dict | list | tuple | None) -> dict:
    """k=v strings (as on the command line) or a dict; values are parsed like mmcv's DictAction."""
    if not options:
        return {}
    if isinstance(options, dict):
        return dict(options)
    out = {}
    for item in options:
        if "=" not in item:
            raise ReproError(f"--cfg-options expects key=value, got '{item}'", fix="write e.g. model.test_cfg.mode=whole")
        key, value = item.split("=", 1)
        out[key] = _parse_value(value)
    return out


def _parse_value(text: str):
    import ast
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        if text.lower() in ("true", "false"):
            return text.lower() == "true"
        if text.lower() in ("none", "null"):
            return None
        return text


def _job_name(rep_id: str, kind: str) -> str:
    return f"repro-{rep_id}-{kind}"


def repro_command(job: Job, launch: LaunchOptions) -> str:
    """The `repro eval/train ...` command line that starts this run again (what a reviewer copies)."""
    argv = ["repro", job.kind, job.reproduction]
    if job.kind == "eval":
        argv += ["--protocol", job.protocol]
        if job.checkpoint:
            argv += ["--checkpoint", job.checkpoint["path"]]
        argv += ["--engine", job.get("eval_engine") or "stock", "--precision", job.get("precision") or "fp32"]
        argv += ["--show-dir", job.show_dir] if job.get("show_dir") else []
        argv += ["--show-limit", str(job.show_limit)] if job.get("show_limit") else []
    else:
        flags = {"--seed": job.seed, "--max-iters": job.get("max_iters"),
                 "--samples-per-gpu": job.samples_per_gpu, "--workers-per-gpu": job.get("workers_per_gpu"),
                 "--checkpoint-interval": job.get("checkpoint_interval"),
                 "--eval-interval": job.get("eval_interval"), "--pretrained": job.get("pretrained", {}).get("path")}
        argv += [part for flag, value in flags.items() if value is not None for part in (flag, str(value))]
        if job.get("accumulate", 1) != 1:
            argv += ["--accumulate", str(job.accumulate)]
        argv += ["--deterministic"] * bool(job.get("deterministic"))
        argv += ["--allow-batch-mismatch"] * bool(job.get("batch", {}).get("allow_batch_mismatch"))
    argv += ["--data-root", str(job.data_root), *launch.cli_flags()]
    argv += ["--device", job.device] if job.device else []
    argv += [f"--cfg-options={key}={value!r}" for key, value in (job.cfg_options or {}).items()]
    return shlex.join(argv)


def _device(requested: str, launch: LaunchOptions, notes: preflight.Notes) -> str:
    """cpu or cuda for the machines that run the job (Slurm: the GPU nodes); cuda asked for here without a GPU is
    a refusal."""
    device = target_device(requested, launch.launcher)
    if device == "cuda" and launch.launcher != "slurm":
        import torch
        if not torch.cuda.is_available():
            notes.fail(ReproError("--device cuda, but torch sees no CUDA device on this machine",
                                  fix="run on a GPU machine, submit with --launcher slurm, or pass --device cpu"))
    return device


def _claim_work_dir(work_dir, overwrite: bool, job: Job, notes: preflight.Notes) -> Claim:
    """The decision about --work-dir (nothing written yet); a refusal is raised, or a note in a dry run."""
    inputs = [(job.checkpoint or {}).get("path"), job.get("pretrained", {}).get("path"), job.data_root]
    try:
        claim = plan_claim(work_dir, overwrite, job, inputs)
    except ReproError as exc:
        notes.fail(exc)
        return Claim(Path(work_dir).expanduser().resolve(), "refused")
    if claim.action == "move-aside" and not notes.strict:
        notes.items.append(f"--overwrite: {claim.path} holds {claim.held}; it would be moved aside to "
                           f"{claim.path.name}.old-<timestamp>")
    return claim


def _prepare(job: Job, work_dir, launch: LaunchOptions, dry_run: bool, notes: preflight.Notes,
             resume_dir: Path | None = None, overwrite: bool = False) -> tuple[Path, launching.Plan, str]:
    """Resolve the config, claim the run folder, write job.json; return (run folder, plan, config text).

    A --work-dir is written once (harness/run/claim.py): one holding a run is refused, or with `overwrite` moved
    aside before this run starts in it; `resume_dir` is an unfinished train run continued in place."""
    from harness.engine.config import build_config  # imports mmcv (and torch); only eval/train get here

    kind_dir = job.protocol if job.kind == "eval" else "train"
    claim = None
    if resume_dir is not None:
        run_dir = resume_dir
    elif work_dir:
        claim = _claim_work_dir(work_dir, overwrite, job, notes)
        run_dir = claim.path
    elif dry_run:
        run_dir = paths.runs_root() / job.reproduction / kind_dir / "<timestamp>"
    else:
        run_dir = None
    job.run_dir = str(run_dir) if run_dir else ""
    try:
        cfg = build_config(job.as_dict())
    except ReproError:
        raise
    except Exception as exc:               # a config that does not load is one line, not a traceback
        raise ReproError(f"config {job.config} does not load: {type(exc).__name__}: {exc}",
                         fix="fix the config or the --cfg-options given") from exc
    if job.get("resume_from"):       # the engine resumes by itself; the printed config says from where
        cfg.resume_from = job.resume_from
    text = cfg.pretty_text
    if not dry_run:
        if claim is not None:
            moved = claim.apply()
            if moved is not None:
                job.previous_run = str(moved)
        elif run_dir is None:
            claim = claim_default(paths.runs_root() / job.reproduction / kind_dir)
            run_dir = claim.path
            job.run_dir = str(run_dir)
    if resume_dir is not None and not dry_run and launch.node_rank == 0:   # the interrupted attempt's outputs
        for stale in [RESULT_FILE, ENGINE_FILE, *(f.name for f in failure_files(run_dir))]:
            (run_dir / stale).unlink(missing_ok=True)
    job_path = run_dir / job_file(launch.node_rank)   # nodes sharing run_dir: one file each
    try:
        p = launching.plan(launch, job_path, run_dir, _job_name(job.reproduction, job.kind))
        job.launch.command = p.command
        job.launch.repro_command = repro_command(job, launch)
        job.started = clock.iso_now()
        if not dry_run:
            write_job(job_path, job)
    except BaseException:
        if claim is not None and not dry_run and claim.action != "join":
            claim.abandon()
        raise
    if claim is not None and not dry_run:
        release(run_dir)
    return run_dir, p, text


def _print_dry_run(job: Job, p: launching.Plan, config_text: str, notes: preflight.Notes, echo) -> dict:
    """The plan, printed; returned as a dict, or raised with the refusal when the real run would be refused."""
    echo(f"# dry run: {job.kind} {job.reproduction} ({job.protocol}), nothing is started")
    echo(f"# run directory: {job.run_dir}")
    if job.get("resume_from"):
        echo(f"# resumes the unfinished run in {job.run_dir} from {job.resume_from}")
    echo(f"# as a repro command, defaults resolved: {job.launch.repro_command}")
    if p.script is not None:
        echo(f"# sbatch script ({p.script_path}):")
        echo(p.script.rstrip())
        echo("# submitted with:")
    echo(p.command)
    echo("# resolved config:")
    echo(config_text.rstrip())
    for note in notes.items:
        echo(f"# note: {note}")
    shown = {"dry_run": True, "command": p.command, "script": p.script, "notes": list(notes.items),
             "job": job.as_dict()}
    if notes.refusals:
        first = notes.refusals[0]
        more = f" (and {len(notes.refusals) - 1} more, see the notes above)" if len(notes.refusals) > 1 else ""
        raise DryRunRefused(f"dry run: the real run would be refused: {first.message}{more}", first.fix, shown)
    return shown


def _execute(job: Job, run_dir: Path, p: launching.Plan, launch: LaunchOptions, echo: bool) -> dict:
    log_path = run_dir / CONSOLE_LOG
    if launch.launcher == "slurm":
        try:
            job_id, _ = launching.submit_slurm(p, log_path)
        except launching.SbatchRefused as exc:
            return finalize(run_dir, 1, reason=exc.message)
        if not launch.slurm_wait:
            return {"status": "submitted", "slurm_job": job_id, "_run_dir": str(run_dir)}
        settle(run_dir, wait_s=120)   # the job's own finalize never ran (time limit, cancelled): Slurm's state
        return read_result(run_dir) | {"slurm_job": job_id, "_run_dir": str(run_dir)}
    try:
        rc = launching.supervise(p.argv, log_path, echo=echo)
    except KeyboardInterrupt:
        finalize(run_dir, 130, reason="interrupted (Ctrl-C)", node_rank=launch.node_rank)
        raise
    return finalize(run_dir, rc, node_rank=launch.node_rank)


def _result_or_raise(record: dict) -> dict:
    if record.get("status") == "failed":
        run_dir = record["_run_dir"]
        raise RunFailed(f"{record['kind']} of {record['reproduction']} failed: {record.get('failure')}",
                        fix=f"see {Path(run_dir) / CONSOLE_LOG} (record: {Path(run_dir) / RESULT_FILE})",
                        record=record)
    return record


def _new_job(kind: str, reproduction: str, protocol: str, launch: LaunchOptions, device: str,
             notes: preflight.Notes, **fields) -> Job:
    facts = from_dict(LaunchFacts, launch.record(), "launch")
    return Job(kind=kind, reproduction=reproduction, protocol=protocol, run_dir="", launch=facts, started="",
               device=_device(device, launch, notes), **fields)


def _say_moved_aside(job: Job, say) -> None:
    if job.get("previous_run"):
        say(f"--overwrite: the earlier run in {job.run_dir} was moved aside to {job.previous_run}")


def evaluate(reproduction: str, protocol: str = "ss", checkpoint: Path | str | None = None,
             data_root: Path | str | None = None, work_dir: Path | str | None = None,
             launch: LaunchOptions | None = None, dry_run: bool = False,
             cfg_options: dict | list | None = None, echo=None, device: str = "auto", engine: str = "fast",
             precision: str = "fp32", overwrite: bool = False, show_dir: Path | str | None = None,
             show_limit: int | None = None, prepare_only: bool = False) -> dict:
    """Evaluate a checkpoint with the reproduction's protocol; return the result record (see module docstring).
    `engine` fast (batched windows, harness/engine/evaluate_fast.py) or stock (mmseg's loop); `precision`
    fp32 (the authors' protocol), tf32 or bf16 (harness/engine/precision.py). Both are recorded in result.json."""
    launch = launch or LaunchOptions()
    say = echo or print
    rep = registry.get(reproduction)
    launch.validate()
    check_choice("evaluation engine", engine, ENGINES)
    check_choice("precision", precision, PRECISIONS)
    rep.config_path(protocol)
    notes = preflight.Notes(strict=not dry_run)
    preflight.check_runnable(rep, protocol, device, launch.launcher, notes)
    ckpt = preflight.resolve_checkpoint(rep, Path(checkpoint) if checkpoint else None, notes)
    ckpt = provenance.checkpoint_provenance(ckpt, provenance.released_sha256(rep)) if ckpt else ckpt
    dataset = preflight.resolve_dataset(rep, Path(data_root) if data_root else None, None, notes)
    job = _new_job("eval", rep.id, protocol, launch, device, notes, config=str(rep.config_path(protocol)),
                   **rep.settings(protocol), custom_imports=list(rep.custom_imports), checkpoint=ckpt,
                   dataset=dataset, data_root=dataset["root"], cfg_options=_parse_cfg_options(cfg_options),
                   samples_per_gpu=1, seed=None, eval_engine=engine, precision=precision,
                   **_show_fields(show_dir, show_limit))
    run_dir, p, text = _prepare(job, work_dir, launch, dry_run, notes, overwrite=overwrite)
    if dry_run:
        return _print_dry_run(job, p, text, notes, say)
    if prepare_only:     # a batch starts it with others, as one Slurm job array (harness/batch)
        return {"status": "prepared", "job": job.as_dict(), "_run_dir": str(run_dir)}
    _say_moved_aside(job, say)
    return _result_or_raise(_execute(job, run_dir, p, launch, echo is not False))


def _show_fields(show_dir, show_limit) -> dict:
    """--show-dir DIR [--show-limit N]: where the engine saves predicted label maps (harness/engine/gallery.py)."""
    if show_dir is None:
        if show_limit is not None:
            raise ReproError("--show-limit needs --show-dir", fix="add `--show-dir DIR` (where the PNGs go)")
        return {}
    if show_limit is not None and show_limit < 1:
        raise ReproError(f"--show-limit {show_limit} saves nothing", fix="give a positive number, or leave it out")
    directory = Path(show_dir).expanduser().resolve()
    if directory.exists() and not directory.is_dir():
        raise ReproError(f"--show-dir {directory} is a file", fix="give a folder (it is created if missing)")
    return {"show_dir": str(directory), "show_limit": show_limit}


def _resume_target(reproduction: str, work_dir, overwrite: bool,
                   given: TrainSettings) -> tuple[Path, Path, Job, TrainSettings]:
    """(run folder, checkpoint, its job, the settings as the interrupted job recorded them) for --resume."""
    if overwrite:
        raise ReproError("--resume continues a run in place and --overwrite moves one aside: pass one of them")
    if work_dir:
        run_dir = Path(work_dir).expanduser().resolve()
        job, checkpoint = resumable(run_dir, reproduction)
    else:
        found = latest_unfinished(paths.runs_root() / reproduction / "train", reproduction)
        if found is None:
            raise ReproError(f"nothing to resume: no unfinished train run of {reproduction} with a checkpoint "
                             f"under {paths.runs_root() / reproduction / 'train'} (finished runs are not resumed)",
                             fix="run without --resume, or pass the unfinished run's directory with --work-dir")
        run_dir, job, checkpoint = found
    return run_dir, checkpoint, job, recorded_settings(job, given)


def train(reproduction: str, settings: TrainSettings | None = None, *, resume: bool = False,
          work_dir: Path | str | None = None, dry_run: bool = False, echo=None, device: str = "auto",
          overwrite: bool = False, **given) -> dict:
    """Train with the reproduction's recipe, then evaluate (ss); return the result record.

    `settings` (or its fields as keywords: seed=..., max_iters=..., launch=..., cfg_options as k=v strings or a
    dict) say how it trains. `resume` continues an unfinished run (--work-dir, else the newest) with its own
    recorded settings; the settings given must agree with them (harness/run/resume.py)."""
    known = {f.name for f in fields(TrainSettings)}
    unknown = sorted(set(given) - known)
    if unknown:
        raise TypeError(f"train() got unexpected settings {unknown}; known: {sorted(known)}")
    given = {k: v for k, v in given.items() if v is not None or k not in ("launch", "cfg_options")}
    s = replace(settings or TrainSettings(), **given)
    s = replace(s, cfg_options=_parse_cfg_options(s.cfg_options), launch=s.launch or LaunchOptions())
    say = echo or print
    rep = registry.get(reproduction)
    if rep.training is None:     # a zoo entry: released weights only
        raise ReproError(f"reproduction '{rep.id}' has no published training recipe to retrain",
                         fix=f"evaluate its released weights with `repro eval {rep.id}`")
    resume_dir = resume_from = previous = None
    if resume:
        resume_dir, resume_from, previous, s = _resume_target(rep.id, work_dir, overwrite, s)
    launch = s.launch
    launch.validate()
    if s.accumulate < 1:
        raise ReproError("--accumulate must be at least 1")
    notes = preflight.Notes(strict=not dry_run)
    spg = s.samples_per_gpu or rep.training.samples_per_gpu
    try:   # a dry run still prints the target's config, with the mismatch as the refusal
        batch = preflight.check_batch(rep, launch.world_size, spg, s.accumulate, s.allow_batch_mismatch)
    except ReproError as exc:
        notes.fail(exc)
        batch = {"published_total_batch": rep.training.total_batch,
                 "total_batch": launch.world_size * spg * s.accumulate,
                 "allow_batch_mismatch": s.allow_batch_mismatch, "warning": exc.one_line().removeprefix("error: ")}
    pt = preflight.resolve_pretrained(rep, Path(s.pretrained) if s.pretrained else None, notes)
    dataset = preflight.resolve_dataset(rep, Path(s.data_root) if s.data_root else None, None, notes)
    job = _new_job("train", rep.id, "ss", launch, device, notes, config=str(rep.train_config_path),
                   checkpoint=None, pretrained=pt, dataset=dataset, data_root=dataset["root"],
                   cfg_options=s.cfg_options, samples_per_gpu=spg, workers_per_gpu=s.workers_per_gpu,
                   seed=rep.training.seed if s.seed is None else s.seed, deterministic=s.deterministic,
                   max_iters=s.max_iters or rep.training.max_iters, accumulate=s.accumulate, batch=batch,
                   resume=bool(resume), checkpoint_interval=s.checkpoint_interval, eval_interval=s.eval_interval)
    if previous is not None:
        job.first_started = previous.get("first_started") or previous.started
        job.resume_from = str(resume_from)
    run_dir, p, text = _prepare(job, work_dir, launch, dry_run, notes, resume_dir, overwrite=overwrite)
    if dry_run:
        return _print_dry_run(job, p, text, notes, say)
    _say_moved_aside(job, say)
    return _result_or_raise(_execute(job, run_dir, p, launch, echo is not False))


__all__ = ["DryRunRefused", "RunFailed", "TrainSettings", "evaluate", "train"]
