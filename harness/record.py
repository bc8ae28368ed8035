"""result.json, the run record: the contract between the pipelines and the verdict.

Fields follow docs/result_record.md (schema "repro.result/1"). Written atomically: a reader
never sees a half-written record. Everything here is torch-free; the environment capture imports torch
only when asked for it.
"""
from __future__ import annotations

import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any

from harness.errors import ReproError
from harness.recordcheck import check_result

SCHEMA = "repro.result/1"
RESULT_FILE = "result.json"
REQUIRED = ("schema", "reproduction", "protocol", "kind", "status")


def _jsonable(value: Any) -> Any:
    """NaN/inf become null (JSON has no NaN); numpy scalars become Python numbers."""
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if hasattr(value, "item") and callable(value.item) and getattr(value, "ndim", 1) == 0:
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Path):
        return str(value)
    return value


def write_json_atomic(path: Path, data: Any) -> Path:
    """Write JSON under a temporary name in the same folder, then rename over `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(_jsonable(data), fh, indent=2, allow_nan=False)
            fh.write("\n")
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_result(run_dir: Path, record: dict) -> Path:
    record = {"schema": SCHEMA, **record}
    missing = [k for k in REQUIRED if k not in record]
    if missing:
        raise ValueError(f"result record lacks {missing}")
    return write_json_atomic(Path(run_dir) / RESULT_FILE, record)


def read_result(path: Path) -> dict:
    """Read a result.json (or the one inside a run directory); bad input is a ReproError."""
    path = Path(path)
    if path.is_dir():
        path = path / RESULT_FILE
    if not path.is_file():
        raise ReproError(f"no result record at {path}", fix="pass a run directory or a result.json path")
    try:
        record = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ReproError(f"{path} is not valid JSON ({exc})", fix="re-run the command that writes it, or `repro import` the source file") from exc
    if not isinstance(record, dict) or record.get("schema") != SCHEMA:
        raise ReproError(f"{path} is not a {SCHEMA} record", fix="produce it with `repro eval`, `repro train` or `repro import`")
    check_result(record, str(path))
    record["_path"] = str(path)
    return record


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
