"""`repro eval` and `repro train` as two Python functions: preflight, run directory, launch, run record.

    from harness.launch import LaunchOptions
    from harness.runs import evaluate, train
    rec = train("eva02_demo", max_iters=40, data_root=root)                    # result.json as a dict
    rec = evaluate("eva02_demo", checkpoint=rec["_run_dir"] + "/" + rec["artifacts"]["best_checkpoint"],
                   data_root=root, launch=LaunchOptions("torchrun", gpus=2))

Both return the record they wrote (plus "_run_dir"), and raise RunFailed (a ReproError carrying the failed record)
when the processes fail. The flow, once:

1. preflight (harness/preflight.py): reproduction, config, checkpoint or pretrained weights, dataset, batch size;
   each failure is one line with its fix, raised before any run directory exists;
2. the run directory and its job.json: everything the engine needs, as plain data;
3. the launch (harness/launch.py): one process, torchrun or Slurm, each running harness.engine.entry;
4. `finalize`: rank 0 of the engine leaves engine.json (metrics, artifacts, timing); this module turns the exit
   code, job.json and engine.json into result.json, written once and atomically. A non-zero exit, or an expected
   output that is missing, makes a failed record with the reason.
"""
from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from harness import launch as launch_mod
from harness import paths, preflight, registry, rundir
from harness.errors import ReproError
from harness.record import RESULT_FILE, read_result, write_json_atomic, write_result
from harness.verify import provenance

ENGINE_FILE = "engine.json"
FAILURE_FILE = "failure.txt"


class RunFailed(ReproError):
    """The engine ran and failed; `record` is the failed result.json that was written."""

    exit_code = 1

    def __init__(self, message: str, fix: str | None, record: dict):
        super().__init__(message, fix)
        self.record = record


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


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


def repro_command(job: dict, launch: launch_mod.LaunchOptions) -> str:
    """The `repro eval/train ...` command line that starts this run again (what a reviewer copies)."""
    import shlex

    argv = ["repro", job["kind"], job["reproduction"]]
    if job["kind"] == "eval":
        argv += ["--protocol", job["protocol"]]
        if job.get("checkpoint"):
            argv += ["--checkpoint", job["checkpoint"]["path"]]
        argv += ["--engine", job.get("eval_engine") or "stock", "--precision", job.get("precision") or "fp32"]
        argv += ["--show-dir", job["show_dir"]] if job.get("show_dir") else []
        argv += ["--show-limit", str(job["show_limit"])] if job.get("show_limit") else []
    else:
        flags = {"--seed": job.get("seed"), "--max-iters": job.get("max_iters"),
                 "--samples-per-gpu": job.get("samples_per_gpu"), "--workers-per-gpu": job.get("workers_per_gpu"),
                 "--checkpoint-interval": job.get("checkpoint_interval"), "--eval-interval": job.get("eval_interval"),
                 "--pretrained": (job.get("pretrained") or {}).get("path")}
        argv += [part for flag, value in flags.items() if value is not None for part in (flag, str(value))]
        if job.get("accumulate", 1) != 1:
            argv += ["--accumulate", str(job["accumulate"])]
        argv += ["--deterministic"] * bool(job.get("deterministic"))
        argv += ["--allow-batch-mismatch"] * bool((job.get("batch") or {}).get("allow_batch_mismatch"))
        from harness.curves.setup import command_flags
        argv += command_flags(job.get("curves"))
    argv += ["--data-root", str(job["data_root"]), *launch.cli_flags()]
    argv += ["--device", job["device"]] if job.get("device") else []
    argv += [f"--cfg-options={key}={value!r}" for key, value in (job.get("cfg_options") or {}).items()]
    return shlex.join(argv)


def _prepare(kind: str, reproduction: str, protocol: str, work_dir, launch, dry_run: bool, job_fields: dict,
             notes: preflight.Notes, resume_dir: Path | None = None, overwrite: bool = False,
             resume_from: Path | None = None) -> tuple[dict, Path, launch_mod.Plan, str]:
    """Resolve the config, create the run directory, write job.json; return (job, run_dir, plan, config text).

    A --work-dir is written once (harness/rundir.py): one holding a run is refused, or with `overwrite` moved
    aside before this run starts in it; `resume_dir` is an unfinished train run continued in place."""
    from harness.engine.config import build_config  # imports mmcv (and torch); only eval/train get here

    job = dict(job_fields, kind=kind, protocol=protocol)
    job["launch"] = launch.record()
    job["device"] = _target_device(job.pop("device", None) or "auto", launch, notes)
    claim = None
    if resume_dir is not None:
        run_dir = resume_dir
        job["resume_from"] = str(resume_from)
    elif work_dir:
        claim = _claim_work_dir(work_dir, overwrite, job, notes)
        run_dir = claim.path
    elif dry_run:
        run_dir = paths.runs_root() / reproduction / (protocol if kind == "eval" else "train") / "<timestamp>"
    else:
        run_dir = None
    job["run_dir"] = str(run_dir) if run_dir else None
    try:
        cfg = build_config(job)
    except ReproError:
        raise
    except Exception as exc:               # a config that does not load is one line, not a traceback
        raise ReproError(f"config {job['config']} does not load: {type(exc).__name__}: {exc}",
                         fix="fix the config or the --cfg-options given") from exc
    if job.get("resume_from"):       # the engine resumes by itself; the printed config says from where
        cfg.resume_from = job["resume_from"]
    text = cfg.pretty_text
    if claim is not None and not dry_run:
        moved = claim.apply()
        if moved is not None:
            job["previous_run"] = str(moved)
    if run_dir is None:
        run_dir = paths.new_run_dir(reproduction, protocol if kind == "eval" else "train")
        job["run_dir"] = str(run_dir)
    if resume_dir is not None and not dry_run and launch.node_rank == 0:   # the interrupted attempt's outputs
        for stale in [RESULT_FILE, ENGINE_FILE, *(f.name for f in run_dir.glob("failure*.txt"))]:
            (run_dir / stale).unlink(missing_ok=True)
    job_path = run_dir / launch_mod.job_file(launch.node_rank)   # nodes sharing run_dir: one file each
    p = launch_mod.plan(launch, job_path, run_dir, _job_name(reproduction, kind))
    job["launch"]["command"] = p.command
    job["launch"]["repro_command"] = repro_command(job, launch)
    job["started"] = _now()
    if not dry_run:
        write_json_atomic(job_path, job)
    return job, run_dir, p, text


def _target_device(requested: str, launch, notes: preflight.Notes) -> str:
    """cpu or cuda for the machines that run the job (Slurm: the GPU nodes); cuda asked for here without a GPU is
    an error (a note in a dry run)."""
    from harness.engine.config import target_device
    device = target_device(requested, launch.launcher)
    if device == "cuda" and launch.launcher != "slurm":
        import torch
        if not torch.cuda.is_available():
            notes.fail(ReproError("--device cuda, but torch sees no CUDA device on this machine",
                                  fix="run on a GPU machine, submit with --launcher slurm, or pass --device cpu"))
    return device


def _claim_work_dir(work_dir, overwrite: bool, job: dict, notes: preflight.Notes) -> rundir.Claim:
    """The decision about --work-dir (nothing written yet); a refusal is raised, or a note in a dry run."""
    inputs = [(job.get("checkpoint") or {}).get("path"), (job.get("pretrained") or {}).get("path"), job.get("data_root")]
    try:
        claim = rundir.plan_claim(work_dir, overwrite, job, inputs)
    except ReproError as exc:
        notes.fail(exc)
        return rundir.Claim(Path(work_dir).expanduser().resolve(), "refused")
    if claim.action == "move-aside" and not notes.strict:
        notes.items.append(f"--overwrite: {claim.path} holds {claim.held}; it would be moved aside to "
                           f"{claim.path.name}.old-<timestamp>")
    return claim


def _print_dry_run(job: dict, p: launch_mod.Plan, config_text: str, notes: preflight.Notes, echo) -> dict:
    echo(f"# dry run: {job['kind']} {job['reproduction']} ({job['protocol']}), nothing is started")
    echo(f"# run directory: {job['run_dir']}")
    if job.get("resume_from"):
        echo(f"# resumes the unfinished run in {job['run_dir']} from {job['resume_from']}")
    echo(f"# as a repro command, defaults resolved: {job['launch']['repro_command']}")
    if p.script is not None:
        echo(f"# sbatch script ({p.script_path}):")
        echo(p.script.rstrip())
        echo("# submitted with:")
    echo(p.command)
    echo("# resolved config:")
    echo(config_text.rstrip())
    for note in notes.items:
        echo(f"# note: {note}")
    return {"dry_run": True, "command": p.command, "script": p.script, "notes": list(notes.items), "job": job}


def _execute(job: dict, run_dir: Path, p: launch_mod.Plan, launch, echo: bool) -> dict:
    log_path = run_dir / launch_mod.CONSOLE_LOG
    if launch.launcher == "slurm":
        try:
            job_id, _ = launch_mod.submit_slurm(p, log_path)
        except launch_mod.SbatchRefused as exc:
            return finalize(run_dir, 1, reason=exc.message)
        if not launch.slurm_wait:
            return {"status": "submitted", "slurm_job": job_id, "_run_dir": str(run_dir)}
        from harness.settle import settle
        settle(run_dir, wait_s=120)   # the job's own finalize never ran (time limit, cancelled): Slurm's state
        return read_result(run_dir) | {"slurm_job": job_id, "_run_dir": str(run_dir)}
    try:
        rc = launch_mod.supervise(p.argv, log_path, echo=echo)
    except KeyboardInterrupt:
        finalize(run_dir, 130, reason="interrupted (Ctrl-C)", node_rank=launch.node_rank)
        raise
    return finalize(run_dir, rc, node_rank=launch.node_rank)


def _result_or_raise(record: dict) -> dict:
    if record.get("status") == "failed":
        run_dir = record["_run_dir"]
        raise RunFailed(f"{record['kind']} of {record['reproduction']} failed: {record.get('failure')}",
                        fix=f"see {Path(run_dir) / launch_mod.CONSOLE_LOG} (record: {Path(run_dir) / RESULT_FILE})",
                        record=record)
    return record


def evaluate(reproduction: str, protocol: str = "ss", checkpoint: Path | str | None = None,
             data_root: Path | str | None = None, work_dir: Path | str | None = None,
             launch: launch_mod.LaunchOptions | None = None, dry_run: bool = False,
             cfg_options: dict | list | None = None, echo=None, device: str = "auto", engine: str = "fast",
             precision: str = "fp32", overwrite: bool = False, show_dir: Path | str | None = None,
             show_limit: int | None = None, prepare_only: bool = False) -> dict:
    """Evaluate a checkpoint with the reproduction's protocol; return the result record (see module docstring).
    `engine` fast (batched windows, harness/engine/evaluate_fast.py) or stock (mmseg's loop); `precision`
    fp32 (the authors' protocol), tf32 or bf16 (harness/engine/precision.py). Both are recorded in result.json."""
    launch = launch or launch_mod.LaunchOptions()
    say = echo or print
    rep = registry.get(reproduction)
    launch.validate()
    engine_fields = _eval_engine_fields(engine, precision)
    rep.config_path(protocol)
    notes = preflight.Notes(strict=not dry_run)
    preflight.check_runnable(rep, protocol, device, launch.launcher, notes)
    ckpt = preflight.resolve_checkpoint(rep, Path(checkpoint) if checkpoint else None, notes)
    ckpt = provenance.checkpoint_provenance(ckpt, provenance.released_sha256(rep)) if ckpt else ckpt
    dataset = preflight.resolve_dataset(rep, Path(data_root) if data_root else None, None, notes)
    fields = {"reproduction": rep.id, "config": str(rep.config_path(protocol)), **rep.settings(protocol),
              "custom_imports": list(rep.custom_imports), "checkpoint": ckpt, "dataset": dataset,
              "data_root": dataset["root"], "cfg_options": _parse_cfg_options(cfg_options),
              "samples_per_gpu": 1, "seed": None, "device": device, **engine_fields,
              **_show_fields(show_dir, show_limit)}
    job, run_dir, p, text = _prepare("eval", rep.id, protocol, work_dir, launch, dry_run, fields, notes,
                                     overwrite=overwrite)
    if dry_run:
        return _print_dry_run(job, p, text, notes, say)
    if prepare_only:     # a batch starts it with others, as one Slurm job array (harness/batch)
        return {"status": "prepared", "job": job, "_run_dir": str(run_dir)}
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


def _eval_engine_fields(engine: str, precision: str) -> dict:
    from harness.engine.precision import PRECISIONS
    if engine not in ("fast", "stock"):
        raise ReproError(f"unknown evaluation engine '{engine}'", fix="use --engine fast or --engine stock")
    if precision not in PRECISIONS:
        raise ReproError(f"unknown precision '{precision}'", fix=f"use --precision {' | '.join(PRECISIONS)}")
    return {"eval_engine": engine, "precision": precision}


def _say_moved_aside(job: dict, say) -> None:
    if job.get("previous_run"):
        say(f"--overwrite: the earlier run in {job['run_dir']} was moved aside to {job['previous_run']}")


def latest_train_dir(reproduction: str) -> Path | None:
    """The newest unfinished run under runs/<id>/train with a complete checkpoint (what --resume continues)."""
    from harness.resume import latest_unfinished
    found = latest_unfinished(paths.runs_root() / reproduction / "train", reproduction)
    return found[0] if found else None


def _resume_target(reproduction: str, work_dir, overwrite: bool, given: dict) -> tuple[Path, Path, dict]:
    """(run directory, checkpoint, train()'s arguments as the interrupted job recorded them) for --resume."""
    from harness import resume as resuming
    if overwrite:
        raise ReproError("--resume continues a run in place and --overwrite moves one aside: pass one of them")
    if work_dir:
        run_dir = Path(work_dir).expanduser().resolve()
        job, checkpoint = resuming.resumable(run_dir, reproduction)
    else:
        found = resuming.latest_unfinished(paths.runs_root() / reproduction / "train", reproduction)
        if found is None:
            raise ReproError(f"nothing to resume: no unfinished train run of {reproduction} with a checkpoint "
                             f"under {paths.runs_root() / reproduction / 'train'} (finished runs are not resumed)",
                             fix="run without --resume, or pass the unfinished run's directory with --work-dir")
        run_dir, job, checkpoint = found
    given = dict(given, cfg_options=_parse_cfg_options(given.get("cfg_options")))
    return run_dir, checkpoint, resuming.recorded_settings(job, given)


def train(reproduction: str, seed: int | None = None, pretrained: Path | str | None = None, resume: bool = False,
          max_iters: int | None = None, accumulate: int = 1, allow_batch_mismatch: bool = False,
          samples_per_gpu: int | None = None, workers_per_gpu: int | None = None,
          checkpoint_interval: int | None = None, eval_interval: int | None = None, deterministic: bool = False,
          data_root: Path | str | None = None, work_dir: Path | str | None = None,
          launch: launch_mod.LaunchOptions | None = None, dry_run: bool = False,
          cfg_options: dict | list | None = None, echo=None, device: str = "auto", overwrite: bool = False,
          reference: list[str] | tuple[str, ...] = (), allow_setup_difference: list[str] | tuple[str, ...] = (),
          stop_when_off_track: bool = False) -> dict:
    """Train with the reproduction's recipe, then evaluate (ss); return the result record.

    `resume` continues an unfinished run (--work-dir, else the newest) with its own recorded settings; the
    arguments given must agree with them (harness/resume.py)."""
    launch = launch or launch_mod.LaunchOptions()
    say = echo or print
    rep = registry.get(reproduction)
    if rep.training is None:     # a zoo entry: released weights only
        raise ReproError(f"reproduction '{rep.id}' has no published training recipe to retrain",
                         fix=f"evaluate its released weights with `repro eval {rep.id}`")
    resume_dir = resume_from = None
    if resume:
        resume_dir, resume_from, recorded = _resume_target(rep.id, work_dir, overwrite, dict(
            seed=seed, pretrained=pretrained, max_iters=max_iters, accumulate=accumulate,
            allow_batch_mismatch=allow_batch_mismatch, samples_per_gpu=samples_per_gpu,
            workers_per_gpu=workers_per_gpu, checkpoint_interval=checkpoint_interval, eval_interval=eval_interval,
            deterministic=deterministic, data_root=data_root, cfg_options=cfg_options, launch=launch))
        (seed, pretrained, max_iters, accumulate, allow_batch_mismatch, samples_per_gpu, workers_per_gpu,
         checkpoint_interval, eval_interval, deterministic, data_root, cfg_options, launch) = (recorded[k] for k in (
            "seed", "pretrained", "max_iters", "accumulate", "allow_batch_mismatch", "samples_per_gpu",
            "workers_per_gpu", "checkpoint_interval", "eval_interval", "deterministic", "data_root", "cfg_options",
            "launch"))
    launch.validate()
    if accumulate < 1:
        raise ReproError("--accumulate must be at least 1")
    notes = preflight.Notes(strict=not dry_run)
    spg = samples_per_gpu or rep.training.samples_per_gpu
    try:   # a dry run still prints the target's config, with the mismatch as a note
        batch = preflight.check_batch(rep, launch.world_size, spg, accumulate, allow_batch_mismatch)
    except ReproError as exc:
        notes.fail(exc)
        batch = {"published_total_batch": rep.training.total_batch, "total_batch": launch.world_size * spg * accumulate,
                 "allow_batch_mismatch": allow_batch_mismatch, "warning": exc.one_line().removeprefix("error: ")}
    from harness.curves.setup import before_launch      # references and the setup check (harness/curves)
    curves = before_launch(rep, reference, allow_setup_difference, stop_when_off_track, dict(
        config=str(rep.train_config_path), samples_per_gpu=spg, max_iters=max_iters or rep.training.max_iters,
        accumulate=accumulate, seed=seed, cfg_options=_parse_cfg_options(cfg_options), device=device,
        data_root=data_root), launch, notes)
    pt = preflight.resolve_pretrained(rep, Path(pretrained) if pretrained else None, notes)
    dataset = preflight.resolve_dataset(rep, Path(data_root) if data_root else None, None, notes)
    fields = {"reproduction": rep.id, "config": str(rep.train_config_path), "checkpoint": None, "pretrained": pt,
              "dataset": dataset, "data_root": dataset["root"], "cfg_options": _parse_cfg_options(cfg_options),
              "samples_per_gpu": spg, "workers_per_gpu": workers_per_gpu,
              "seed": rep.training.seed if seed is None else seed, "deterministic": deterministic,
              "max_iters": max_iters or rep.training.max_iters, "accumulate": accumulate, "batch": batch,
              "resume": bool(resume), "checkpoint_interval": checkpoint_interval, "eval_interval": eval_interval,
              "device": device, "curves": curves}
    if resume_dir is not None:
        previous = _read_json(resume_dir / launch_mod.JOB_FILE) or {}
        fields["first_started"] = previous.get("first_started", previous.get("started"))
        if not reference and previous.get("curves"):     # the references the run was started with
            fields["curves"] = previous["curves"]
    job, run_dir, p, text = _prepare("train", rep.id, "ss", work_dir, launch, dry_run, fields, notes, resume_dir,
                                     overwrite=overwrite, resume_from=resume_from)
    if dry_run:
        return _print_dry_run(job, p, text, notes, say)
    _say_moved_aside(job, say)
    return _result_or_raise(_execute(job, run_dir, p, launch, echo is not False))


# ------------------------------------------------------------------------------------------------ the record

def _read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def rank_failures(run_dir: Path) -> str | None:
    """The engine's failure lines, rank 0's first (its error is the cause; other ranks' are mostly its echo)."""
    def rank(path: Path) -> int:
        suffix = path.stem.removeprefix("failure").removeprefix(".rank")
        return int(suffix) if suffix.isdigit() else 0
    lines = []
    for path in sorted(run_dir.glob("failure*.txt"), key=rank):
        text = path.read_text(errors="replace").strip()
        if text:
            lines.append(text.splitlines()[0] if rank(path) == 0 else f"rank {rank(path)}: {text.splitlines()[0]}")
    return "; ".join(lines) or None


def _failure_reason(run_dir: Path, rc: int) -> str:
    ranks = rank_failures(run_dir)
    if ranks:
        return ranks
    lines = []
    for log in [run_dir / launch_mod.CONSOLE_LOG, *sorted(run_dir.glob("slurm-*.out"))]:   # Slurm: the job's output
        if log.exists():
            lines += [ln.strip() for ln in log.read_text(errors="replace").splitlines() if ln.strip()]
    errors = [ln for ln in lines if "Error" in ln or "error" in ln]
    tail = (errors or lines or [""])[-1][:300]
    signal_note = f" (killed by signal {-rc})" if rc < 0 else ""
    return f"processes exited with code {rc}{signal_note}" + (f": {tail}" if tail else "")


def _missing_outputs(run_dir: Path, engine: dict) -> list[str]:
    missing = []
    arts = engine.get("artifacts", {})
    for key in ("eval_json", "config", "log"):
        if not arts.get(key) or not (run_dir / arts[key]).exists():
            missing.append(key)
    checkpoints = arts.get("checkpoints") or []
    if engine.get("kind") == "train" and (not checkpoints or not all((run_dir / c).exists() for c in checkpoints)):
        missing.append("checkpoints")
    if not engine.get("metrics") or engine["metrics"].get("mIoU") is None:
        missing.append("metrics")
    return missing


def finalize(run_dir: Path, rc: int, started: str | None = None, reason: str | None = None, node_rank: int = 0,
             slurm: dict | None = None) -> dict:
    """Turn the exit code, job.json and engine.json into result.json (atomically); return the record.

    Only node 0 writes result.json; another node (`node_rank` > 0, its own job.node<N>.json) returns its
    outcome without writing. `slurm`: Slurm's view of the job (harness/settle.py), kept in the record."""
    run_dir = Path(run_dir).resolve()
    if node_rank > 0:
        node_job = _read_json(run_dir / launch_mod.job_file(node_rank)) or {}
        return {"status": "worker-done" if rc == 0 else "failed", "_run_dir": str(run_dir),
                "kind": node_job.get("kind"), "reproduction": node_job.get("reproduction"),
                "failure": None if rc == 0 else f"node {node_rank}: {reason or _failure_reason(run_dir, rc)}"}
    job = _read_json(run_dir / launch_mod.JOB_FILE) or {}
    engine = _read_json(run_dir / ENGINE_FILE) or {}
    finished = _now()
    start = job.get("first_started") or job.get("started") or started
    wall = None
    if start:
        wall = (datetime.fromisoformat(finished) - datetime.fromisoformat(start)).total_seconds()
    status, failure = "succeeded", None
    if rc != 0:
        status, failure = "failed", reason or _failure_reason(run_dir, rc)
    else:
        missing = _missing_outputs(run_dir, engine)
        if missing:
            status, failure = "failed", f"processes exited 0 but expected outputs are missing: {', '.join(missing)}"
    environment = engine.get("environment")
    if environment is None:
        from harness.record import capture_environment
        environment = capture_environment(packages=False)
    launch = dict(job.get("launch", {}))
    launch.update(samples_per_gpu=job.get("samples_per_gpu"), accumulate=job.get("accumulate", 1))
    slurm_job = (_read_json(run_dir / launch_mod.SLURM_FILE) or {}).get("job_id")
    if slurm_job:
        launch["slurm_job"] = slurm_job
    if slurm:
        launch["slurm_state"] = {k: slurm.get(k) for k in ("JobState", "Reason", "ExitCode", "RunTime", "TimeLimit")}
    launch["total_batch"] = (launch.get("world_size") or 1) * (launch["samples_per_gpu"] or 1) * launch["accumulate"]
    checkpoint = job.get("checkpoint")
    if job.get("kind") == "train":
        best = engine.get("artifacts", {}).get("best_checkpoint") or engine.get("artifacts", {}).get("final_checkpoint")
        checkpoint = engine.get("checkpoint") or ({"path": str(run_dir / best), "sha256": None,
                                                   "source": f"train run {run_dir}"} if best else None)
    record = {
        "reproduction": job.get("reproduction"),
        "protocol": job.get("protocol", "ss"),
        "kind": job.get("kind", "eval"),
        "status": status,
        "failure": failure,
        "metrics": engine.get("metrics") or {},
        "per_class": engine.get("per_class", {}),
        "checkpoint": checkpoint,
        "dataset": job.get("dataset"),
        "launch": launch,
        "environment": environment,
        "seed": engine.get("seed", job.get("seed")),
        "timing": {"started": start, "finished": finished, "wall_s": wall,
                   "images_per_s": engine.get("timing", {}).get("images_per_s"),
                   **{k: v for k, v in engine.get("timing", {}).items() if k != "images_per_s"}},
        "artifacts": {**engine.get("artifacts", {}), "console": launch_mod.CONSOLE_LOG, "job": launch_mod.JOB_FILE},
        "config": job.get("config"),
    }
    for key in ("batch", "pretrained", "training", "notes", "device", "precision", "eval_engine", "early_verdict"):
        if job.get(key) is not None or engine.get(key) is not None:
            record[key] = engine.get(key, job.get(key))
    if job.get("kind") == "train":
        record["training"] = {**engine.get("training", {}), "resumed": bool(job.get("resume")),
                              "max_iters": job.get("max_iters"), "accumulate": job.get("accumulate", 1)}
    record.update(provenance.record_fields(job, run_dir, record))   # what the verdict compares: checkpoint, overrides
    write_result(run_dir, record)
    record["_run_dir"] = str(run_dir)
    return record


__all__ = ["RunFailed", "evaluate", "finalize", "latest_train_dir", "train"]
