"""Starting a batch: its runs one after another in this process's machine, or as one Slurm job array.

Every run is a normal `repro eval` run (harness.run.api.evaluate) in its own folder inside the batch folder, so each
has its job.json, console.log and result.json like any other; the batch file lists them (batchfile.py).

- Here (`--launcher none|torchrun`): one run after another. A run that fails, or whose preflight refuses it
  (no weights, no data), is recorded as such and the batch goes on; Ctrl-C stops the batch, the runs not
  reached stay listed as never started.
- Slurm: every run is prepared first (preflight, run folder, job.json; one refusal and nothing is submitted),
  then ONE sbatch script, written by harness/run/launch.py's builder, starts them as array tasks; each task finds its
  run folder by $SLURM_ARRAY_TASK_ID and ends with the same finalize step as a single Slurm run.
"""
from __future__ import annotations

import shutil
from pathlib import Path

from harness import paths
from harness.batch import batchfile
from harness.batch.select import Entry
from harness.errors import ReproError
from harness.fileio import write_json_atomic
from harness.run import launch as launch_mod
from harness.run.api import DryRunRefused, RunFailed, evaluate
from harness.run.folder import CONSOLE_LOG, JOB_FILE, RESULT_FILE, SLURM_FILE
from harness.run.job import read_job, write_job
from harness.run.options import LaunchOptions
from harness.run.record import read_result
from harness.run.settle import settle


def _eval_kwargs(entry: Entry, settings: dict) -> dict:
    """repro eval's arguments for one run; the engine and precision only when not the defaults of `repro eval`."""
    defaults = {"engine": "fast", "precision": "fp32"}
    given = {k: v for k, v in settings.items() if k not in defaults or v != defaults[k]}
    return dict(protocol=entry.protocol, checkpoint=entry.checkpoint, **given)


def dry_run(entries: list[Entry], launch: LaunchOptions, settings: dict, batch_dir: Path | None,
            say) -> dict:
    """Print what the batch would do (each run's command and notes; for Slurm the array script); start nothing.
    Raises DryRunRefused after printing everything when a run would be refused."""
    where = Path(batch_dir).expanduser().resolve() if batch_dir else \
        paths.runs_root() / "batches" / "<timestamp>"
    plan = batchfile.new_batch(entries, launch.launcher, "")
    how = "one Slurm job array" if launch.launcher == "slurm" else "one after another, here"
    say(f"# dry run: a batch of {len(entries)} runs, {how}; nothing is started")
    say(f"# batch folder: {where}")
    run_dirs = []
    refused: list[tuple[int, DryRunRefused]] = []
    for entry, item in zip(entries, plan["runs"]):
        run_dir = where / item["run_dir"]
        run_dirs.append(run_dir)
        quiet: list[str] = []
        try:
            shown = evaluate(entry.reproduction, work_dir=run_dir, launch=launch, dry_run=True, echo=quiet.append,
                             **_eval_kwargs(entry, settings))
        except DryRunRefused as exc:
            shown = exc.plan
            refused.append((item["task"], exc))
        say(f"# run {item['task']}: {entry.reproduction} ({entry.protocol}) -> {run_dir}")
        say(f"#   as one command: {shown['job']['launch']['repro_command']}")
        for note in shown["notes"]:
            say(f"#   note: {note}")
    result = {"dry_run": True, "runs": [str(d) for d in run_dirs], "script": None, "command": None}
    if launch.launcher == "slurm":
        p = launch_mod.array_plan(launch, run_dirs, where, _job_name(where))
        say(f"# sbatch script ({p.script_path}):")
        say(p.script.rstrip())
        say("# submitted with:")
        say(p.command)
        result.update(script=p.script, command=p.command)
    if refused:
        task, first = refused[0]
        raise DryRunRefused(f"dry run: {len(refused)} of {len(entries)} runs would be refused; run {task}: "
                            f"{first.message.removeprefix('dry run: the real run would be refused: ')}",
                            first.fix, result)
    return result


def _job_name(batch_dir: Path) -> str:
    return f"repro-batch-{batch_dir.name}"


def run_here(entries: list[Entry], launch: LaunchOptions, settings: dict, batch_dir, command: str,
             say) -> tuple[Path, dict]:
    """Run every entry one after another; return (batch folder, batch file)."""
    folder = batchfile.claim_batch_dir(batch_dir)
    batch = batchfile.new_batch(entries, launch.launcher, command)
    batchfile.save(folder, batch)
    say(f"batch of {len(entries)} runs: {folder / batchfile.BATCH_FILE}")
    for entry, item in zip(entries, batch["runs"]):
        run_dir = folder / item["run_dir"]
        say(f"\n[{item['task'] + 1}/{len(entries)}] {entry.reproduction} ({entry.protocol}) -> {run_dir}")
        item["state"] = "running"
        batchfile.save(folder, batch)
        try:
            record = evaluate(entry.reproduction, work_dir=run_dir, launch=launch, echo=say,
                              **_eval_kwargs(entry, settings))
            item["state"] = record["status"]
            m = record.get("metrics") or {}
            say(f"{entry.reproduction} ({entry.protocol}) {record['status']}: mIoU {m.get('mIoU', float('nan')):.2f}")
        except RunFailed as exc:
            item.update(state="failed", failure=exc.record.get("failure"))
            say(exc.one_line())
        except ReproError as exc:           # refused before it started (preflight): nothing ran
            item.update(state="not-started", failure=exc.one_line().removeprefix("error: "))
            say(exc.one_line())
        except KeyboardInterrupt:
            item.update(state="failed", failure="interrupted (Ctrl-C)")
            batchfile.save(folder, batch)
            raise
        batchfile.save(folder, batch)
    return folder, batch


def submit_array(entries: list[Entry], launch: LaunchOptions, settings: dict, batch_dir, command: str,
                 say) -> tuple[Path, dict]:
    """Prepare every run, then submit them as one Slurm job array; return (batch folder, batch file)."""
    existed = batch_dir is not None and Path(batch_dir).expanduser().exists()
    folder = batchfile.claim_batch_dir(batch_dir)
    batch = batchfile.new_batch(entries, launch.launcher, command)
    run_dirs = [folder / item["run_dir"] for item in batch["runs"]]
    try:
        for entry, run_dir in zip(entries, run_dirs):
            evaluate(entry.reproduction, work_dir=run_dir, launch=launch, prepare_only=True, echo=say,
                     **_eval_kwargs(entry, settings))
        p = launch_mod.array_plan(launch, run_dirs, folder, _job_name(folder))
    except BaseException as exc:
        for child in folder.iterdir():    # the folder was empty: all in it is ours; a refused batch leaves nothing
            shutil.rmtree(child) if child.is_dir() else child.unlink()
        if not existed:
            folder.rmdir()
        if isinstance(exc, ReproError):
            exc.message += " (nothing was submitted)"
        raise
    for item, run_dir in zip(batch["runs"], run_dirs):    # each run's job.json names the array that starts it
        job_path = run_dir / JOB_FILE
        job = read_job(job_path)
        job.launch.command, job.launch.array_task, job.launch.batch = p.command, item["task"], str(folder)
        write_job(job_path, job)
    batchfile.save(folder, batch)
    try:
        job_id, _ = launch_mod.submit_slurm(p, folder / CONSOLE_LOG)
    except launch_mod.SbatchRefused as exc:
        for item in batch["runs"]:
            item.update(state="not-started", failure=exc.message)
        batchfile.save(folder, batch)
        raise
    batch["slurm_job"] = job_id
    for item, run_dir in zip(batch["runs"], run_dirs):
        task_id = f"{job_id}_{item['task']}"
        write_json_atomic(run_dir / SLURM_FILE, {"job_id": task_id, "array_job": job_id,
                                                            "array_task": item["task"],
                                                            "script": str(p.script_path), "submitted_with": p.command})
        item.update(state="submitted", slurm_job=task_id)
    batchfile.save(folder, batch)
    say(f"submitted Slurm job array {job_id} ({len(entries)} tasks); batch file {folder / batchfile.BATCH_FILE}")
    if launch.slurm_wait:
        _settle_all(folder, batch, run_dirs)
    return folder, batch


def _settle_all(folder: Path, batch: dict, run_dirs: list[Path]) -> None:
    """After `sbatch --wait`: every task's record, settled from Slurm's state where its last step never ran."""
    for item, run_dir in zip(batch["runs"], run_dirs):
        try:
            settle(run_dir, wait_s=120)
        except ReproError as exc:
            item["failure"] = exc.message
            continue
        if (run_dir / RESULT_FILE).exists():
            record = read_result(run_dir)
            item.update(state=record["status"], failure=record.get("failure"))
    batchfile.save(folder, batch)
