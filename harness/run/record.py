"""result.json, the run record: the contract between the pipelines and the verdict; `Record` is its one definition.

`write_result` is its one writer (finalize, settle through finalize, `repro import`), `read_result` its one reader;
docs/result.schema.json is generated from `Record` (`python -m harness.run.schema`) and docs/result_record.md
explains it. Written atomically (harness/fileio.py): a reader never sees a half-written record. Torch-free; the
environment capture imports torch only when asked for it.
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from harness.errors import ReproError
from harness.fileio import jsonable, read_json, write_json_atomic
from harness.recordcheck import check_result
from harness.run.folder import RESULT_FILE, note_written
from harness.run.job import LaunchFacts
from harness.run.shape import UNSET, ShapeError, checked, doc, from_dict, to_dict

SCHEMA = "repro.result/1"
Metric = float | None     # percent at full precision; NaN (a class absent from the split) is null


@dataclass
class Record:
    """result.json, schema "repro.result/1": what a run (eval, train) or an import produced, and how."""
    schema: Literal["repro.result/1"] = doc('"repro.result/1"')
    reproduction: str = doc("the reproduction id, e.g. eva02_L_sz512 (a folder under reproductions/)")
    protocol: str = doc("ss (single scale), ms (multi-scale + flip), ...; train: the protocol of its final evaluation")
    kind: Literal["eval", "train", "import"] = doc("eval | train | import")
    status: Literal["succeeded", "failed"] = doc("succeeded | failed; a failed record says why in `failure`")
    failure: str | None = doc("why the run failed (null when it succeeded)", default=UNSET)
    metrics: dict[str, Metric] = doc("{aAcc, mIoU, mAcc} in percent at full precision", default=UNSET)
    per_class: dict[str, dict[str, Metric]] = doc("{class name: {IoU, Acc}} in percent", default=UNSET)
    checkpoint: dict[str, Any] | None = doc("{path, sha256, source, provenance, released_sha256, train_run, "
                                            "sha256_origin}: the weights evaluated; sha256_origin is \"declared\" "
                                            "when `repro import --checkpoint-sha256` gave the sha256 (not measured), "
                                            "\"measured\" when the file was hashed", default=UNSET)
    dataset: dict[str, Any] | None = doc("{name, split, root, num_images, manifest_sha256}", default=UNSET)
    launch: LaunchFacts = doc("how the processes were started (see LaunchFacts)", default=UNSET)
    environment: dict[str, Any] = doc("{harness_version, git_sha, git_dirty, python, platform, torch, cuda, cudnn, "
                                      "mmcv, mmseg, numpy, devices, packages}", default=UNSET)
    seed: int | None = doc("the seed, or null", default=UNSET)
    timing: dict[str, Any] = doc("{started, finished, wall_s, images_per_s, ...}; times ISO-8601 in UTC",
                                 default=UNSET)
    artifacts: dict[str, Any] = doc("paths relative to the run folder: logs, eval JSON, config, checkpoints",
                                    default=UNSET)
    config: str | None = doc("the mmseg config the run used", default=UNSET)
    batch: dict[str, Any] = doc("train: the batch check against the published total batch", default=UNSET)
    pretrained: dict[str, Any] | None = doc("train: the MIM weights it started from", default=UNSET)
    training: dict[str, Any] = doc("train: {resumed, max_iters, accumulate, ...}", default=UNSET)
    notes: Any = doc("the engine's notes", default=UNSET)
    device: Literal["cpu", "cuda"] = doc("cpu | cuda", default=UNSET)
    precision: Literal["fp32", "tf32", "bf16"] = doc("eval: fp32 | tf32 | bf16", default=UNSET)
    eval_engine: Literal["fast", "stock"] = doc("eval: fast | stock", default=UNSET)
    overrides: Any = doc("what differs from the published setup (harness/verify/provenance.py)", default=UNSET)
    eval_json: dict[str, Any] = doc("{path, sha256} of mmseg's eval JSON", default=UNSET)
    ledger: dict[str, Any] | None = doc("{file, sha256, images}: the per-image ledger (docs/ledger.md)", default=UNSET)
    sessions: int = doc("eval: how many sessions (engine starts) the evaluation took: 1, or more when it was "
                        "continued with --resume or a requeued Slurm job (docs/ledger.md)", default=UNSET)
    intervals: dict[str, Any] = doc("{aAcc, mIoU, mAcc: [low, high]}: 95 % bootstrap intervals over images, with "
                                    "{method, resamples, seed, confidence}", default=UNSET)
    imported_kind: Literal["eval", "train"] = doc("import: what the imported file came from", default=UNSET)
    imported_from: dict[str, Any] = doc("import: {path, format, sha256, files, config, inferred}", default=UNSET)
    curves: dict[str, Any] | None = doc("import: training and validation curves from the log", default=UNSET)
    note: str = doc("import: a remark (e.g. curves only, nothing to verify)", default=UNSET)
    early_verdict: dict[str, Any] | None = doc(
        "train with references: {file (watch.json, the last judgement), verdict (on track | off track | "
        "inconclusive), first_off_track, stopped ({iter, reason, note} when --stop-when-off-track ended it), "
        "references: [{name, origin, sha256, seed}], cost}", default=UNSET)


def _record_from_dict(data: dict, source: str, strict: bool) -> Record:
    return checked(Record, data, source, f"a valid {SCHEMA} record", strict=strict,
                   fix="produce it with `repro eval`, `repro train` or `repro import`")


def _check_values(data: dict, source: str) -> None:
    """The record's values beyond their types: the single call site for that check (harness/recordcheck.py: metrics
    are JSON numbers, per_class is {class: {IoU, Acc}}, identity fields hold no control characters, the fields the
    readers open inside checkpoint, artifacts, timing and curves have the writers' types)."""
    check_result(data, source)


def write_result(run_dir: Path, record: Record | dict) -> Path:
    """The one writer of result.json: checked against `Record` (an unknown field or a wrong type is refused),
    then written atomically."""
    data = to_dict(record) if isinstance(record, Record) else {"schema": SCHEMA, **record}
    data = jsonable(data)
    path = Path(run_dir) / RESULT_FILE
    try:
        from_dict(Record, data)
    except ShapeError as exc:
        raise ValueError(f"result record for {path} does not fit the record's definition: {exc}") from None
    write_json_atomic(path, data)
    note_written(path)
    return path


def read_result(path: Path) -> dict:
    """Read a result.json (or the one inside a run folder) as a dict with `_path`; bad input is a ReproError."""
    path = Path(path)
    if path.is_dir():
        path = path / RESULT_FILE
    if not path.is_file():
        raise ReproError(f"no result record at {path}", fix="pass a run directory or a result.json path")
    data = read_json(path, fix="re-run the command that writes it, or `repro import` the source file")
    if not isinstance(data, dict) or data.get("schema") != SCHEMA:
        raise ReproError(f"{path} is not a {SCHEMA} record",
                         fix="produce it with `repro eval`, `repro train` or `repro import`")
    _check_values(data, str(path))        # first: its line names the field and the value ("the string '59.77'")
    _record_from_dict(data, str(path), strict=False)     # fields added by a later harness are kept, not judged
    data["_path"] = str(path)
    return data


def try_read_record(path: Path) -> dict | None:
    """The record in a run folder, or None when there is none of ours (for code asking "is it ours?")."""
    try:
        return read_result(path)
    except ReproError:
        return None


def capture_environment(packages: bool = True) -> dict:
    """What ran: harness version and git sha, python, torch, CUDA/cuDNN, mmcv, mmseg, devices, installed packages.

    Imports torch (only here, only when asked); versions of mmcv/mmseg come from package metadata, so nothing
    heavy is imported for them.
    """
    import platform
    import subprocess
    import sys
    from importlib import metadata

    from harness import __version__
    from harness.paths import REPO_ROOT

    def version(dist: str) -> str | None:
        try:
            return metadata.version(dist)
        except metadata.PackageNotFoundError:
            return None

    def git(*args: str) -> str | None:
        try:
            out = subprocess.run(["git", *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=10)
        except (OSError, subprocess.SubprocessError):
            return None
        return out.stdout.strip() if out.returncode == 0 else None

    sha = git("rev-parse", "HEAD")
    dirty = git("status", "--porcelain", "--untracked-files=no")
    env = {"harness_version": __version__, "git_sha": sha, "git_dirty": bool(dirty) if dirty is not None else None,
           "python": sys.version.split()[0], "platform": platform.platform(),
           "torch": None, "cuda": None, "cudnn": None,
           "mmcv": version("mmcv-full") or version("mmcv"), "mmseg": version("mmsegmentation"),
           "numpy": version("numpy"), "devices": []}
    try:
        import torch
        env["torch"] = torch.__version__
        env["cuda"] = torch.version.cuda
        env["cudnn"] = torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None
        if torch.cuda.is_available():
            env["devices"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
        else:
            env["devices"] = [f"cpu: {platform.processor() or platform.machine()} ({os.cpu_count()} cores)"]
    except ImportError:
        pass
    if packages:
        env["packages"] = sorted(f"{d.metadata['Name']}=={d.version}" for d in metadata.distributions()
                                 if d.metadata["Name"])
    return env
