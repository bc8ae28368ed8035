"""Checks before any long job: the checkpoint, the dataset and the batch size, each failing as one line with its fix.

Every check returns what the run record needs (paths, hashes, counts) or raises ReproError. `--dry-run` collects
the failures as notes instead (`Notes`), so a dry run works on a machine that has nothing downloaded yet.
"""
from __future__ import annotations

import logging
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from harness import paths
from harness.errors import ReproError
from harness.fileio import file_sha256
from harness.registry import Reproduction
from harness.run.options import target_device
from harness.run.record import read_result

log = logging.getLogger(__name__)


@dataclass
class Notes:
    """Refusals collected during a dry run (strict=False) instead of raised, with the dry run's other notes."""
    strict: bool = True
    items: list[str] = field(default_factory=list)           # printed as `# note:` lines
    refusals: list[ReproError] = field(default_factory=list)  # what would stop the real run

    def fail(self, exc: ReproError) -> None:
        if self.strict:
            raise exc
        self.refusals.append(exc)
        self.items.append(exc.one_line().removeprefix("error: "))


def check_checkpoint_file(path: Path, what: str = "checkpoint") -> None:
    """A torch checkpoint is a zip with a data.pkl record; a truncated or foreign file fails here, in a second."""
    fix = "download it again (`repro download <id>`) or pass another --checkpoint"
    if not path.is_file():
        raise ReproError(f"{what} {path} does not exist", fix=fix)
    try:
        with zipfile.ZipFile(path) as zf:
            names = zf.namelist()
    except (zipfile.BadZipFile, OSError) as exc:
        raise ReproError(f"{what} {path} is corrupt or not a torch checkpoint ({exc})", fix=fix) from None
    if not any(n.endswith("/data.pkl") or n == "data.pkl" for n in names):
        raise ReproError(f"{what} {path} is a zip file but not a torch checkpoint (no data.pkl)", fix=fix)


def resolve_checkpoint(rep: Reproduction, checkpoint: Path | None, notes: Notes) -> dict | None:
    """{"path", "sha256", "source"} of the checkpoint to evaluate: --checkpoint, else the verified download."""
    digest = None
    if checkpoint is not None and Path(checkpoint).is_dir():
        path, source = checkpoint_of_train_run(Path(checkpoint))
    elif checkpoint is not None:
        path = Path(checkpoint).expanduser().resolve()
        source = "local file (--checkpoint)"
    elif rep.weights is None:
        notes.fail(ReproError(f"reproduction '{rep.id}' has no released weights to evaluate",
                              fix=f"pass --checkpoint <file>, e.g. the best_checkpoint of `repro train {rep.id}`"))
        return None
    else:
        try:
            path, digest = _resolve_weights(rep, "weights")
        except ReproError as exc:
            notes.fail(exc)
            return None
        path, source = path.resolve(), rep.weights.url
    try:
        check_checkpoint_file(path)
    except ReproError as exc:
        notes.fail(exc)
        return {"path": str(path), "sha256": None, "source": source}
    # a verified download's digest comes from its check (one hash per file per command, none if the lock file
    # saw this very file verified); any other checkpoint is hashed here
    return {"path": str(path), "sha256": digest or file_sha256(path), "source": source}


def checkpoint_of_train_run(run_dir: Path) -> tuple[Path, str]:
    """`--checkpoint <train run directory>`: its best checkpoint (else its final one), from its result.json."""
    run_dir = run_dir.expanduser().resolve()
    record = read_result(run_dir)
    arts = record.get("artifacts", {})
    name = arts.get("best_checkpoint") or arts.get("final_checkpoint")
    if record.get("kind") != "train" or not name:
        raise ReproError(f"{run_dir} is not a finished training run with a checkpoint",
                         fix="pass a checkpoint file, or the run directory of a succeeded `repro train`")
    return run_dir / name, f"train run {run_dir} ({name})"


def resolve_pretrained(rep: Reproduction, pretrained: Path | None, notes: Notes) -> dict | None:
    """The MIM weights a retrain starts from: --pretrained, else the verified download; None if the recipe has none."""
    if pretrained is not None:
        path = Path(pretrained).expanduser().resolve()
        if not path.is_file():
            notes.fail(ReproError(f"pretrained weights {path} do not exist", fix="pass an existing --pretrained file"))
            return {"path": str(path), "sha256": None, "source": "local file (--pretrained)"}
        return {"path": str(path), "sha256": file_sha256(path), "source": "local file (--pretrained)"}
    if rep.pretrained is None:
        return None
    try:
        path, digest = _resolve_weights(rep, "pretrained")
    except ReproError as exc:
        notes.fail(exc)
        return None
    return {"path": str(path.resolve()), "sha256": digest, "source": rep.pretrained.url}


def _resolve_weights(rep: Reproduction, which: str) -> tuple[Path, str]:
    """The verified file and its sha256, hashed at most once (see harness.fetch.weights.resolve)."""
    from harness.fetch.weights import resolve_with_sha256
    return resolve_with_sha256(rep, which)


def default_data_root(rep: Reproduction) -> Path:
    """The reproduction's dataset's default root (`<id>-synthetic`: the synthetic stand-in's)."""
    return paths.data_root(rep.dataset)


def resolve_dataset(rep: Reproduction, data_root: Path | None, split: str | None, notes: Notes) -> dict:
    """{"name", "split", "root", "num_images", "manifest_sha256"} of a verified dataset; split None: the
    dataset's validation split."""
    from harness.registry import datasets

    dataset, synthetic = datasets.resolve(rep.dataset)
    split = split or dataset.val_split
    root = Path(data_root).expanduser().resolve() if data_root else default_data_root(rep)
    record = {"name": rep.dataset, "split": split, "root": str(root), "num_images": None, "manifest_sha256": None}
    prepare = f"repro prepare {dataset.id}" + (" --synthetic 64" if synthetic else "")
    fix = (f"run `{prepare} --data-root {root}` (or pass the --data-root of a prepared copy)" if data_root
           else f"run `{prepare}` (or pass --data-root DIR)")
    images = dataset.split(split).images
    if not (root / images).is_dir():
        notes.fail(ReproError(f"dataset {rep.dataset} not found at {root} (no {images})", fix=fix))
        return record
    try:
        from harness.fetch import dataroot
        # files present with their manifest sizes (`repro prepare --verify` re-hashes them all)
        facts = dataroot.dataset_facts(root, split, dataset)
    except ReproError as exc:
        notes.fail(exc)
        return record
    record.update({k: facts[k] for k in ("num_images", "manifest_sha256", "synthetic")})
    return record


def check_runnable(rep: Reproduction, protocol: str, device: str, launcher: str, notes: Notes) -> None:
    """What the reproduction's config needs that this job lacks (harness/registry/needs.py): a package its
    custom_imports names (ConvNeXt, PoolFormer: mmcls), a GPU for an fp16 config, mmcv's CUDA kernel of an op
    (PSANet's PSAMask) when a CUDA job meets a CPU-ops mmcv build. Each is one line, before anything starts."""
    from importlib.util import find_spec

    from harness.registry.needs import config_needs

    needs = config_needs(rep.config_path(protocol))
    device = target_device(device, launcher)      # the machines that run the job: Slurm's GPU nodes, else this one
    for module in needs.imports:     # raised even in a dry run: without it the config does not even load
        if find_spec(module.split(".")[0]) is None:
            raise ReproError(f"{rep.id} needs the package of {module} (its config imports it), which is not "
                             f"installed in this environment",
                             fix="install it into the engine (for mmcls: `pip install 'mmcls>=0.20.1,<1.0'`), "
                                 "or choose another entry")
    if needs.fp16 and device != "cuda":
        notes.fail(ReproError(f"{rep.id}'s config sets fp16, so mmseg evaluates it with fp16 weights, which needs a "
                              f"CUDA GPU; this job runs on {device}",
                              fix="run it on a GPU machine (--device cuda, or --launcher slurm)"))
    if needs.mmcv_ops and device == "cuda" and not _mmcv_cuda_ops():
        notes.fail(ReproError(f"{rep.id} needs mmcv's CUDA kernel of {', '.join(needs.mmcv_ops)}, and this mmcv-full "
                              f"was built with CPU ops only",
                              fix="rebuild the engine with REPRO_MMCV_OPS=cuda, or evaluate on CPU (--device cpu)"))


def _mmcv_cuda_ops() -> bool:
    try:
        from mmcv.ops import get_compiling_cuda_version
    except ImportError:
        return False
    return get_compiling_cuda_version() not in ("not available", "", None)


def check_batch(rep: Reproduction, world_size: int, samples_per_gpu: int, accumulate: int,
                allow_mismatch: bool) -> dict:
    """world size × samples per GPU × accumulation against the published total batch."""
    published = rep.training.total_batch
    total = world_size * samples_per_gpu * accumulate
    record = {"published_total_batch": published, "total_batch": total, "allow_batch_mismatch": allow_mismatch}
    if total == published:
        return record
    what = (f"total batch {total} (world size {world_size} × samples per GPU {samples_per_gpu} × accumulate "
            f"{accumulate}) differs from the published {published}")
    if not allow_mismatch:
        per_step = world_size * samples_per_gpu
        hint = (f"add `--accumulate {published // per_step}`" if published % per_step == 0 and published > per_step
                else f"use {published // samples_per_gpu} processes" if published % samples_per_gpu == 0 else "")
        fix = (hint + " or " if hint else "") + "pass --allow-batch-mismatch to train anyway (recorded in the result)"
        raise ReproError(what, fix=fix)
    log.warning("%s; training anyway (--allow-batch-mismatch)", what)
    record["warning"] = what
    return record
