"""Finalizing a run: the processes' exit code, job.json and engine.json become result.json, written once.

Rank 0 of the engine leaves engine.json (metrics, artifacts, timing); `finalize` turns it, the job and the exit code
into the record. A non-zero exit, or an expected output that is missing, makes a failed record with the reason:
the engine's own failure lines (failure*.txt), else the last error line of the console. Three callers: the
launcher after a local or torchrun run (harness/run/api.py), the last line of a Slurm job script
(`python -m harness.run.finalize --run-dir DIR --rc "$rc"`), and settling a Slurm job that ended without its last
line (harness/run/settle.py).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from harness import clock
from harness.run.folder import (CONSOLE_LOG, ENGINE_FILE, JOB_FILE, RESULT_FILE, SLURM_FILE, SLURM_OUTPUT_GLOB,
                                job_file, rank_failures, read_json)
from harness.run.job import LaunchFacts, try_read_job
from harness.run.record import SCHEMA, Record, capture_environment, write_result
from harness.run.shape import from_dict
from harness.verify import provenance


def failure_reason(run_dir: Path, rc: int) -> str:
    """Why the processes failed: the engine's lines, else the console's last error line and the exit code."""
    ranks = rank_failures(run_dir)
    if ranks:
        return ranks
    lines = []
    for log in [run_dir / CONSOLE_LOG, *sorted(run_dir.glob(SLURM_OUTPUT_GLOB))]:   # Slurm: the job's output
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
    outcome without writing. `slurm`: Slurm's view of the job (harness/run/settle.py), kept in the record."""
    run_dir = Path(run_dir).resolve()
    if node_rank > 0:
        node_job = try_read_job(run_dir / job_file(node_rank))
        return {"status": "worker-done" if rc == 0 else "failed", "_run_dir": str(run_dir),
                "kind": node_job.kind if node_job else None,
                "reproduction": node_job.reproduction if node_job else None,
                "failure": None if rc == 0 else f"node {node_rank}: {reason or failure_reason(run_dir, rc)}"}
    job_obj = try_read_job(run_dir / JOB_FILE)
    # a job file this harness did not write whole (an older one, a test's) is still read for what it says
    job = job_obj.as_dict() if job_obj is not None else (read_json(run_dir / JOB_FILE) or {})
    engine = read_json(run_dir / ENGINE_FILE) or {}
    finished = clock.iso_now()
    start = job.get("first_started") or job.get("started") or started
    wall = None
    if start:
        wall = (clock.parse_iso(finished) - clock.parse_iso(start)).total_seconds()
    status, failure = "succeeded", None
    if rc != 0:
        status, failure = "failed", reason or failure_reason(run_dir, rc)
    else:
        missing = _missing_outputs(run_dir, engine)
        if missing:
            status, failure = "failed", f"processes exited 0 but expected outputs are missing: {', '.join(missing)}"
    environment = engine.get("environment")
    if environment is None:
        environment = capture_environment(packages=False)
    launch = dict(job.get("launch", {}))
    launch.update(samples_per_gpu=job.get("samples_per_gpu"), accumulate=job.get("accumulate", 1))
    slurm_job = (read_json(run_dir / SLURM_FILE) or {}).get("job_id")
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
        "schema": SCHEMA,
        "reproduction": job.get("reproduction"),
        "protocol": job.get("protocol", "ss"),
        "kind": job.get("kind", "eval"),
        "status": status,
        "failure": failure,
        "metrics": engine.get("metrics") or {},
        "per_class": engine.get("per_class", {}),
        "checkpoint": checkpoint,
        "dataset": job.get("dataset"),
        "launch": from_dict(LaunchFacts, launch, "launch"),
        "environment": environment,
        "seed": engine.get("seed", job.get("seed")),
        "timing": {"started": start, "finished": finished, "wall_s": wall,
                   "images_per_s": engine.get("timing", {}).get("images_per_s"),
                   **{k: v for k, v in engine.get("timing", {}).items() if k != "images_per_s"}},
        "artifacts": {**engine.get("artifacts", {}), "console": CONSOLE_LOG, "job": JOB_FILE},
        "config": job.get("config"),
    }
    for key in ("batch", "pretrained", "training", "notes", "device", "precision", "eval_engine"):
        if job.get(key) is not None or engine.get(key) is not None:
            record[key] = engine.get(key, job.get(key))
    if job.get("kind") == "train":
        record["training"] = {**engine.get("training", {}), "resumed": bool(job.get("resume")),
                              "max_iters": job.get("max_iters"), "accumulate": job.get("accumulate", 1)}
    record.update(provenance.record_fields(job, run_dir, record))   # what the verdict compares: checkpoint, overrides
    write_result(run_dir, Record(**record))
    return dict(record, launch=launch, _run_dir=str(run_dir))


def main(argv: list[str] | None = None) -> int:
    """`python -m harness.run.finalize --run-dir DIR --rc N`: the Slurm job script's last line."""
    parser = argparse.ArgumentParser(prog="python -m harness.run.finalize",
                                     description="write result.json for a run whose processes have exited")
    parser.add_argument("--run-dir", required=True, type=Path)
    parser.add_argument("--rc", required=True, type=int)
    args = parser.parse_args(argv)
    record = finalize(args.run_dir, args.rc, started=None)
    print(f"{record['status']}: {args.run_dir / RESULT_FILE}")
    return 0 if record["status"] == "succeeded" else 1


if __name__ == "__main__":
    sys.exit(main())
