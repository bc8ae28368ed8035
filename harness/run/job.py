"""job.json: everything the engine needs to run, as plain data; this dataclass is its one definition.

`write_job` is its one writer (harness/run/api.py before the launch, harness/batch for an array task's launch
facts) and `read_job` its one reader (the engine, finalize, resume, claiming). docs/job.schema.json is generated
from `Job` (`python -m harness.run.schema`). A node N > 0 of a multi-node torchrun writes its own
job.node<N>.json of the same shape (harness/run/folder.py: job_file).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from harness.errors import ReproError
from harness.fileio import read_json, write_json_atomic
from harness.run.folder import JOB_FILE, note_written
from harness.run.shape import UNSET, checked, doc, to_dict


@dataclass
class LaunchFacts:
    """How the run was started: the launch options, the world size and the commands; in the record also the
    batch per step and Slurm's job id and state. An imported record knows none of it (nulls)."""
    launcher: Literal["none", "torchrun", "slurm"] | None = doc("none | torchrun | slurm", default=UNSET)
    gpus: int | None = doc("processes per node (GPUs; on a CPU machine, CPU processes)", default=UNSET)
    nnodes: int | None = doc("number of nodes", default=UNSET)
    node_rank: int | None = doc("this node's rank (torchrun, several nodes)", default=UNSET)
    master_addr: str | None = doc("address of node 0", default=UNSET)
    master_port: int | None = doc("rendezvous port", default=UNSET)
    partition: str | None = doc("Slurm partition", default=UNSET)
    account: str | None = doc("Slurm account", default=UNSET)
    time: str | None = doc("Slurm time limit", default=UNSET)
    cpus_per_task: int | None = doc("Slurm CPUs per task", default=UNSET)
    srun_args: list[str] | None = doc("extra srun arguments", default=UNSET)
    sbatch_args: list[str] | None = doc("extra #SBATCH lines", default=UNSET)
    slurm_wait: bool | None = doc("submitted with sbatch --wait", default=UNSET)
    world_size: int | None = doc("gpus × nnodes", default=UNSET)
    command: str | None = doc("the launch command (python, torchrun or sbatch)", default=UNSET)
    repro_command: str | None = doc("the `repro eval/train` line that starts this run again", default=UNSET)
    array_task: int | None = doc("the Slurm array task that ran it (repro batch)", default=UNSET)
    batch: str | None = doc("the batch folder that started it (repro batch)", default=UNSET)
    samples_per_gpu: int | None = doc("record: images per process and step", default=UNSET)
    accumulate: int | None = doc("record: gradient accumulation steps", default=UNSET)
    total_batch: int | None = doc("record: world_size × samples_per_gpu × accumulate", default=UNSET)
    slurm_job: str | None = doc("record: the Slurm job id (<array>_<task> for an array task)", default=UNSET)
    slurm_state: dict[str, Any] | None = doc("record: Slurm's view of a job that ended without its record "
                                             "(JobState, Reason, ExitCode, RunTime, TimeLimit)", default=UNSET)


@dataclass
class Job:
    """job.json: what one run does (its kind, reproduction, config, data, checkpoint, launch, device), everything the
    engine needs. Fields of the other kind are left out."""
    kind: Literal["eval", "train"] = doc("eval | train")
    reproduction: str = doc("the reproduction id")
    protocol: str = doc("ss | ms | ... (a training run: the protocol of its final evaluation)")
    config: str = doc("the mmseg config file")
    run_dir: str = doc("the run folder (absolute)")
    device: Literal["cpu", "cuda"] = doc("where the processes run (the target's, resolved from auto)")
    launch: LaunchFacts = doc("how the processes start")
    dataset: dict[str, Any] = doc("{name, split, root, num_images, manifest_sha256, synthetic}")
    data_root: str = doc("the dataset root the config reads")
    started: str = doc("when the run was started (ISO-8601, UTC)")
    cfg_options: dict[str, Any] = doc("config overrides (--cfg-options): KEY -> VALUE as text in mmcv's DictAction "
                                      "syntax, parsed by the engine (harness/cfg_options.py)")
    checkpoint: dict[str, Any] | None = doc("eval: {path, sha256, source, ...} of the weights; train: null")
    samples_per_gpu: int | None = doc("images per process and step")
    seed: int | None = doc("the seed (eval: null)")
    custom_imports: list[str] = doc("eval: modules to import first (list of str)", default=UNSET)
    test_aug: dict[str, Any] = doc("the protocol's test-time augmentation (zoo ms: img_ratios, flip)", default=UNSET)
    eval_batch_size: int | None = doc("windows per forward pass of the fast engine", default=UNSET)
    eval_engine: Literal["fast", "stock"] = doc("eval: fast | stock", default=UNSET)
    precision: Literal["fp32", "tf32", "bf16"] = doc("eval: fp32 | tf32 | bf16", default=UNSET)
    show_dir: str = doc("eval: where predicted label maps are saved as PNGs", default=UNSET)
    show_limit: int | None = doc("eval: only the first N images to --show-dir", default=UNSET)
    pretrained: dict[str, Any] | None = doc("train: {path, sha256, source} of the MIM weights", default=UNSET)
    workers_per_gpu: int | None = doc("train: data-loading workers per process", default=UNSET)
    deterministic: bool = doc("train: cudnn deterministic mode", default=UNSET)
    max_iters: int = doc("train: optimizer steps", default=UNSET)
    accumulate: int = doc("train: gradient accumulation steps", default=UNSET)
    batch: dict[str, Any] = doc("train: {published_total_batch, total_batch, allow_batch_mismatch, warning}",
                                default=UNSET)
    resume: bool = doc("train: continues an unfinished run", default=UNSET)
    checkpoint_interval: int | None = doc("train: save every N steps", default=UNSET)
    eval_interval: int | None = doc("train: evaluate every N steps", default=UNSET)
    first_started: str | None = doc("train / eval --resume: when the first attempt started", default=UNSET)
    resume_from: str = doc("train --resume: the checkpoint it continues from", default=UNSET)
    previous_run: str = doc("--overwrite: where the earlier run in this folder was moved", default=UNSET)
    curves: dict[str, Any] | None = doc(
        "train: the early verdict's setup (harness/curves): {references: [{name, origin, sha256, seed, ...}] "
        "(--reference, hashed), setup: {compared, allowed (--allow-setup-difference), differences, unknown, "
        "references, run, refused?}, stop_when_off_track (--stop-when-off-track), dry_run_lr? (a dry run's lr "
        "schedule judged)}; null: no reference, no hook", default=UNSET)

    def as_dict(self) -> dict:
        """The file's dict (what the engine reads: it stays a plain-dict consumer)."""
        return to_dict(self)

    def get(self, name: str, default=None):
        """A field's value, `default` when it is left out or null."""
        value = getattr(self, name, UNSET)
        return default if value is UNSET or value is None else value


def job_from_dict(data: dict, source: str = JOB_FILE, strict: bool = True) -> Job:
    return checked(Job, data, source, "a job file of this harness", strict=strict,
                   fix="start the run again with `repro eval` / `repro train`")


def write_job(path: Path, job: Job) -> Path:
    """The one writer of job.json (and job.node<N>.json): checked against `Job`, atomically."""
    job_from_dict(to_dict(job), str(path))     # a field of the wrong type is a bug here, not in the engine
    write_json_atomic(path, to_dict(job))
    note_written(path)
    return Path(path)


def read_job(path: Path | str, strict: bool = True) -> Job:
    """The one reader of job.json; a file that is missing, not JSON or not a job is one ReproError."""
    data = read_json(path, fix="pass the job.json of a run folder, or start the run again")
    return job_from_dict(data, str(path), strict=strict)


def try_read_job(path: Path | str) -> Job | None:
    """The job in `path`, or None when there is none (missing, foreign or broken): for code asking "is it ours?"."""
    try:
        return read_job(path, strict=False)
    except ReproError:
        return None
