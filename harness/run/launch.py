"""Building and running the commands that start the engine: one local process, torchrun, or Slurm.

Every launcher starts the same thing in each process, `python -m harness.engine.entry --job <run_dir>/job.json`
(the job file holds everything the engine needs; harness/run/job.py). This module only decides how many of
those processes start, where, and with which rendezvous; it supervises them and detects failure.

- `none`: one plain subprocess (world size 1, no process group).
- `torchrun`: `python -m torch.distributed.run` as a subprocess, `--gpus` processes per node (NCCL on GPUs; on a
  machine without CUDA the same command starts CPU processes that talk gloo). With one node and no
  `--master-port` it uses `--standalone` (torchrun picks a free port); with several nodes, run the same command on
  every node with its own `--node-rank`.
- `slurm`: an sbatch script with one `srun` task per GPU, written to the run folder and submitted with
  `sbatch`; its last step (`python -m harness.run.finalize`) writes the run record on the first node. Every
  value written into the script is checked for newlines and control characters and shell-quoted (sbatch's own
  `#SBATCH` parser honours the same quotes). The job id is kept in `job.slurm.json` as soon as sbatch prints it, so a
  job that ends without its last step (time limit, node failure) can be settled later (harness/run/settle.py).
  A batch (harness/batch) submits several prepared runs as one job array built by the same script builder: each
  array task picks its run folder by $SLURM_ARRAY_TASK_ID.

With several nodes each node's settings are its own file (`job.json` on node 0, `job.node<N>.json` on node N), so
nodes sharing one run folder never read each other's `node_rank`; only node 0 writes `result.json`.
"""
from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from harness.console import EngineOutput
from harness.errors import ReproError
from harness.fileio import write_json_atomic, write_text_atomic
from harness.run.folder import JOB_FILE, SBATCH_FILE, SLURM_FILE
from harness.run.options import DEFAULT_MASTER_PORT, LaunchOptions, check_script_value, split_arg

ENTRY_MODULE = "harness.engine.entry"
FINALIZE_MODULE = "harness.run.finalize"


def entry_args(job_path: Path) -> list[str]:
    return ["-m", ENTRY_MODULE, "--job", str(job_path)]


def torchrun_argv(opts: LaunchOptions, job_path: Path) -> list[str]:
    argv = [sys.executable, "-m", "torch.distributed.run", "--nnodes", str(opts.nnodes)]
    if opts.nnodes == 1 and opts.master_port is None and not opts.master_addr:
        argv += ["--standalone"]
    else:
        argv += ["--node-rank", str(opts.node_rank), "--master-addr", opts.master_addr or "127.0.0.1",
                 "--master-port", str(opts.master_port or DEFAULT_MASTER_PORT)]
    argv += ["--nproc-per-node", str(opts.gpus)]
    return argv + entry_args(job_path)


def local_argv(job_path: Path) -> list[str]:
    return [sys.executable] + entry_args(job_path)


def sbatch_script(opts: LaunchOptions, job_path: Path, run_dir: Path, job_name: str,
                  array_runs: list[Path] | None = None) -> str:
    """An sbatch script: one srun task per GPU, rank/world from SLURM_* in each task, then the run record.

    The `#SBATCH` lines come first, then one `srun` line; every value is checked (check_script_value) and quoted.
    `array_runs`: a job array (harness/batch), one array task per run directory, each task picking its own
    `<run>/job.json` by $SLURM_ARRAY_TASK_ID; `run_dir` is then the batch's folder, where the script lives.
    """
    opts.validate()
    q = shlex.quote
    cwd = os.getcwd()
    for flag, value in (("the job name", job_name), ("the run directory", str(run_dir)),
                        ("the working directory", cwd), ("the Python path", sys.executable),
                        *(("an array task's run directory", str(d)) for d in array_runs or [])):
        check_script_value(flag, value)
    output = "slurm-%A_%a.out" if array_runs else "slurm-%j.out"
    lines = ["#!/bin/bash", f"#SBATCH --job-name={q(job_name)}", f"#SBATCH --nodes={opts.nnodes}",
             f"#SBATCH --ntasks-per-node={opts.gpus}", f"#SBATCH --gpus-per-node={opts.gpus}",
             f"#SBATCH --cpus-per-task={opts.cpus_per_task}", f"#SBATCH --output={q(str(run_dir / output))}"]
    if array_runs:
        lines.append(f"#SBATCH --array=0-{len(array_runs) - 1}")
    for name in ("partition", "account", "time"):
        if getattr(opts, name):
            lines.append(f"#SBATCH --{name}={q(getattr(opts, name))}")
    lines += [f"#SBATCH {shlex.join(split_arg('--sbatch-arg', arg))}" for arg in opts.sbatch_args]
    port = opts.master_port or DEFAULT_MASTER_PORT
    srun = ["srun", "--kill-on-bad-exit=1", *opts.srun_args, sys.executable, "-u", *entry_args(job_path)]
    finalize = [sys.executable, "-m", FINALIZE_MODULE, "--run-dir", str(run_dir)]
    select: list[str] = []
    if array_runs:   # the task's own run: its job file, its output beside it (where finalize reads slurm-*.out)
        srun[-1], finalize[-1] = '"$run_dir"/' + JOB_FILE, '"$run_dir"'
        select = ["runs=(" + " ".join(q(str(d)) for d in array_runs) + ")",
                  'run_dir="${runs[$SLURM_ARRAY_TASK_ID]}"',
                  'exec >>"$run_dir/slurm-${SLURM_ARRAY_JOB_ID}_${SLURM_ARRAY_TASK_ID}.out" 2>&1']
    lines += [
        "",
        f"cd {q(cwd)}",
        *select,
        'export MASTER_ADDR="$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)"',
        # array tasks may share a node: each its own rendezvous port
        f"export MASTER_PORT=$(({port} + SLURM_ARRAY_TASK_ID))" if array_runs else f"export MASTER_PORT={port}",
        # torchrun's default is 1 thread per process; here each task gets the CPUs Slurm gave it, not every core
        'export OMP_NUM_THREADS="${OMP_NUM_THREADS:-${SLURM_CPUS_PER_TASK:-1}}"',
        _join_with_expansion(srun, bool(array_runs)),
        "rc=$?",
        _join_with_expansion(finalize, bool(array_runs)) + ' --rc "$rc"',
        'exit "$rc"',
        "",
    ]
    return "\n".join(lines)


def _join_with_expansion(argv: list[str], last_expands: bool) -> str:
    """shlex.join, except a last word that is a quoted shell expansion of our own ("$run_dir"/job.json)."""
    if not last_expands:
        return shlex.join(argv)
    return f"{shlex.join(argv[:-1])} {argv[-1]}"


@dataclass
class Plan:
    """What a launch will do: the argv to run here, and for Slurm the script it submits."""
    argv: list[str]
    script: str | None = None
    script_path: Path | None = None

    @property
    def command(self) -> str:
        return shlex.join(self.argv)


def plan(opts: LaunchOptions, job_path: Path, run_dir: Path, job_name: str) -> Plan:
    opts.validate()
    if opts.launcher == "none":
        return Plan(local_argv(job_path))
    if opts.launcher == "torchrun":
        return Plan(torchrun_argv(opts, job_path))
    script_path = run_dir / SBATCH_FILE
    sbatch = ["sbatch", "--parsable"] + (["--wait"] if opts.slurm_wait else []) + [str(script_path)]
    return Plan(sbatch, script=sbatch_script(opts, job_path, run_dir, job_name), script_path=script_path)


def array_plan(opts: LaunchOptions, run_dirs: list[Path], batch_dir: Path, job_name: str) -> Plan:
    """One Slurm job array for several prepared runs (each holds its job.json): <batch_dir>/job.sbatch."""
    if opts.launcher != "slurm":
        raise ReproError(f"a job array is a Slurm submission, not --launcher {opts.launcher}",
                         fix="add `--launcher slurm`")
    script_path = batch_dir / SBATCH_FILE
    sbatch = ["sbatch", "--parsable"] + (["--wait"] if opts.slurm_wait else []) + [str(script_path)]
    script = sbatch_script(opts, Path(JOB_FILE), batch_dir, job_name, array_runs=list(run_dirs))
    return Plan(sbatch, script=script, script_path=script_path)


def _die_with_parent() -> None:
    """In the child, before exec: ask Linux to SIGTERM it when we die, so a killed `repro` leaves no orphans."""
    if sys.platform.startswith("linux"):
        import ctypes
        try:
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)   # PR_SET_PDEATHSIG
        except OSError:
            pass


def supervise(argv: list[str], log_path: Path, env: dict | None = None, echo: bool = True) -> int:
    """Run argv, copying its whole output to log_path as it comes; return its exit code. With `echo` the terminal
    gets its progress as bars (harness/console.py; everything with --verbose).

    The command runs in its own process group; Ctrl-C or SIGTERM here is passed on to that group, and if this
    process is killed outright the command gets SIGTERM from the kernel, so no worker is left behind.
    """
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        log.write(f"$ {shlex.join(argv)}\n".encode())
        log.flush()
        proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env,
                                start_new_session=True, preexec_fn=_die_with_parent)  # noqa: PLW1509
        previous = signal.getsignal(signal.SIGTERM)
        shown = EngineOutput() if echo else None

        def _forward(signum, _frame):
            try:
                os.killpg(proc.pid, signum)
            except ProcessLookupError:
                pass

        if previous is not None:
            signal.signal(signal.SIGTERM, _forward)
        try:
            assert proc.stdout is not None
            for chunk in iter(lambda: os.read(proc.stdout.fileno(), 1 << 16), b""):   # as it comes, \r included
                log.write(chunk)
                log.flush()
                if shown is not None:
                    shown.feed(chunk)
            return proc.wait()
        except KeyboardInterrupt:
            _forward(signal.SIGINT, None)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
            raise
        finally:
            if shown is not None:
                shown.close()
            if previous is not None:
                signal.signal(signal.SIGTERM, previous)


class SbatchRefused(ReproError):
    """sbatch printed no job id: the submission itself was refused (bad options, limits, no such partition)."""


def _job_id(first_line: str) -> str | None:
    """`sbatch --parsable` prints `<id>` or `<id>;<cluster>` once the job is accepted."""
    word = first_line.strip().split(";")[0]
    return word if word.isdigit() else None


def submit_slurm(p: Plan, log_path: Path) -> tuple[str, int]:
    """Write the sbatch script and submit it; return (job id, sbatch's exit code).

    The job id is written to job.slurm.json as soon as sbatch prints it (before `--wait` returns). With `--wait`
    sbatch's exit code is the job's, so a failed job is told from a refused submission by the id, not the code:
    no id means refused (SbatchRefused).
    """
    assert p.script is not None and p.script_path is not None
    run_dir = p.script_path.parent
    (run_dir / SLURM_FILE).unlink(missing_ok=True)          # an earlier job's id must not describe this run
    write_text_atomic(p.script_path, p.script)
    try:
        proc = subprocess.Popen(p.argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                start_new_session=True, preexec_fn=_die_with_parent)  # noqa: PLW1509
    except FileNotFoundError as exc:
        raise ReproError("sbatch is not on PATH", fix="run on a Slurm login node, or use `--launcher torchrun`") from exc
    assert proc.stdout is not None and proc.stderr is not None
    first = proc.stdout.readline()
    job_id = _job_id(first)
    if job_id is not None:
        write_json_atomic(run_dir / SLURM_FILE, {"job_id": job_id, "script": SBATCH_FILE,
                                                 "submitted_with": p.command})
    try:
        rest, err = proc.communicate()
    except KeyboardInterrupt:
        proc.terminate()
        raise
    with open(log_path, "a") as log:
        log.write(f"$ {p.command}\n{first}{rest}{err}")
    if job_id is None:
        msg = [ln for ln in (err + first + rest).strip().splitlines() if ln.strip()]
        raise SbatchRefused(f"sbatch refused the job: {msg[-1].strip() if msg else f'exit code {proc.returncode}'}",
                            fix=f"check the Slurm options in {p.script_path}")
    return job_id, proc.returncode
