"""The lines an evaluation's Slurm job script holds so that a time limit costs nothing (harness/launch.py adds them).

Slurm sends the batch shell SIGTERM 60 s before the time limit (`--signal=B:TERM@60`; `B:` the batch shell only,
so the shell decides). The shell passes it to srun, which passes it to every task: the engine writes the images it
finished as a ledger chunk and exits (harness/engine/evaluate.py). The shell then requeues the job (`scontrol
requeue`, allowed by `--requeue`); its next start runs the same script, whose engine continues from the chunks
(harness/ledger/resume.py). `--open-mode=append` keeps each start's output in the one slurm-<job>.out.
"""
from __future__ import annotations

SBATCH_LINES = ("#SBATCH --signal=B:TERM@60", "#SBATCH --requeue", "#SBATCH --open-mode=append")


def requeue_on_signal(srun_line: str) -> list[str]:
    """The job script's srun step for an evaluation: Slurm sends the batch shell SIGTERM 60 s before the time
    limit (`--signal=B:TERM@60`); the shell passes it to srun (which passes it to every task: the engine flushes
    its ledger chunk and exits) and requeues the job (`--requeue`), whose next start continues from the chunks.
    Sets `rc` and `requeued` for the lines after it."""
    return [
        "requeued=0",
        'trap \'requeued=1; kill -TERM "$srun_pid" 2>/dev/null\' TERM',
        f"{srun_line} &",
        "srun_pid=$!",
        'wait "$srun_pid"; rc=$?',
        'while kill -0 "$srun_pid" 2>/dev/null; do wait "$srun_pid"; rc=$?; done',
        'if [ "$requeued" = 1 ]; then',
        '  echo "time limit near: ledger flushed, requeueing job $SLURM_JOB_ID"',
        '  scontrol requeue "$SLURM_JOB_ID"',
        "  exit 0",
        "fi",
    ]
