"""What a run compares: which checkpoint it evaluated, which overrides it ran with, and the tier that follows.

`repro eval`/`repro train` call `checkpoint_provenance` and `overrides` when they write result.json; `repro verify`
calls `choose_tier`. The tier follows the evidence (issue #14):

- ``released`` only for the released weights (sha256 equal to reproduction.toml's or the lock file's, or the
  authors' own eval file of them) evaluated with the published protocol (no override that changes the model or
  the test pipeline);
- a `repro train` run or its checkpoint -> ``retrain``;
- anything else -> ``retrain``, and the verdict says why.

Example::

    >>> choose_tier({"kind": "eval", "reproduction": "eva02_L_sz512",
    ...              "checkpoint": {"provenance": "other", "sha256": "ab" * 32}, "overrides": {}}, None)
    ('retrain', 'checkpoint is not the released file (sha256 abababababab…)')
"""
from __future__ import annotations

import json
from pathlib import Path

from harness import cfg_options, registry
from harness.errors import ReproError
from harness.fileio import file_sha256
from harness.verify.expected import released_eval_files

RELEASED, TRAIN_RUN, OTHER, UNKNOWN = "released", "train-run", "other", "unknown"
PUBLISHED_PRECISION = "fp32"          # the authors' test.py evaluates in FP32 (no wrap_fp16_model)
STOCK_ENGINE = "stock"
# --cfg-options keys that change neither the model nor the test pipeline (how many loader workers, logging, ...).
# Every other key is taken to change the protocol: a run with it is not judged as the published one.
NEUTRAL_CFG_PREFIXES = ("data.workers_per_gpu", "log_config", "log_level", "dist_params", "cudnn_benchmark",
                        "checkpoint_config", "evaluation.interval", "gpu_ids", "env_cfg", "mp_start_method",
                        "opencv_num_threads")


def _short(sha: str | None) -> str:
    return f"{sha[:12]}…" if sha else "not recorded"


def _train_run_of(path: Path) -> Path | None:
    """The `repro train` run directory holding this checkpoint file, if it is one (its result.json or job.json)."""
    for name in ("result.json", "job.json"):
        marker = path.parent / name
        try:
            if json.loads(marker.read_text()).get("kind") == "train":
                return path.parent
        except (OSError, ValueError, AttributeError):
            continue
    return None


def checkpoint_provenance(checkpoint: dict | None, released_sha256: str | None) -> dict:
    """The record's checkpoint with `provenance` (released / train-run / other / unknown) and the released sha256."""
    if not checkpoint:
        return {"path": None, "sha256": None, "source": None, "provenance": UNKNOWN, "released_sha256": released_sha256}
    out = dict(checkpoint, released_sha256=released_sha256, train_run=None)
    sha = (checkpoint.get("sha256") or "").lower() or None
    source = str(checkpoint.get("source") or "")
    train_run = _train_run_of(Path(checkpoint["path"])) if checkpoint.get("path") else None
    if sha and released_sha256 and sha == released_sha256.lower():
        out["provenance"] = RELEASED
    elif source.startswith("train run ") or train_run is not None:
        out["provenance"] = TRAIN_RUN
        out["train_run"] = str(train_run) if train_run else source[len("train run "):].split(" (")[0]
    elif sha:
        out["provenance"] = OTHER
    else:
        out["provenance"] = UNKNOWN
    return out


def overrides(job: dict, published_total_batch: int | None = None, published_max_iters: int | None = None) -> dict:
    """Every way the run departs from the reproduction's config and published protocol, as fields ({} if none)."""
    out = {}
    if job.get("cfg_options"):
        out["cfg_options"] = cfg_options.parse(job["cfg_options"])
    if job.get("precision") not in (None, PUBLISHED_PRECISION):
        out["precision"] = job["precision"]
    if job.get("engine") not in (None, STOCK_ENGINE):
        out["engine"] = job["engine"]
    batch = job.get("batch") or {}
    if job.get("kind") == "train" and batch.get("total_batch") not in (None, published_total_batch):
        out["total_batch"] = batch["total_batch"]
    if job.get("kind") == "train" and job.get("accumulate", 1) != 1:
        out["accumulate"] = job["accumulate"]
    if job.get("kind") == "train" and job.get("max_iters") not in (None, published_max_iters):
        out["max_iters"] = job["max_iters"]
    return out


def describe_overrides(record: dict) -> str:
    """'none' or 'precision=bf16, cfg_options model.test_cfg.mode='whole''."""
    found = record.get("overrides") or {}
    parts = []
    for key, value in found.items():
        if key == "cfg_options" and isinstance(value, dict):
            parts += [f"cfg_options {k}={v!r}" for k, v in value.items()]
        else:
            parts.append(f"{key}={value}")
    return ", ".join(parts) if parts else "none"


def protocol_changes(record: dict) -> list[str]:
    """The overrides that change the model or the test pipeline (so the run is not the published protocol)."""
    found = record.get("overrides") or {}
    changes = [f"--cfg-options {key}={value!r} changes the model or test pipeline"
               for key, value in (found.get("cfg_options") or {}).items()
               if not str(key).startswith(NEUTRAL_CFG_PREFIXES)]
    if found.get("precision") not in (None, PUBLISHED_PRECISION):
        changes.append(f"precision {found['precision']} (published: {PUBLISHED_PRECISION})")
    return changes


DECLARED = "declared"              # checkpoint.sha256_origin of `repro import --checkpoint-sha256`: not measured here
WHY_RELEASED = "released weights, published protocol"
CLAIM_FIX = ("re-run `repro eval` with the released weights, or `repro import --checkpoint PATH` (or "
             "--checkpoint-sha256 HEX) naming them; a record edited by hand is not a result")


def reproduction_of(record: dict):
    try:
        return registry.get(record.get("reproduction"))
    except ReproError:
        return None


def _released_hash(rep) -> tuple[str | None, str | None]:
    """(full sha256, published prefix) of the reproduction's released weights, as this checkout knows them."""
    if rep is None or rep.weights is None:
        return None, None
    return released_sha256(rep), getattr(rep.weights, "sha256_prefix", None)


def _authors_eval_file(record: dict, run_dir: Path | None, expected_root: Path | None) -> str | None:
    """The authors' own eval file of the released weights, in the run folder with its recorded bytes: its origin."""
    named = record.get("eval_json") or {}
    if run_dir is None or not named.get("sha256") or not named.get("path"):
        return None
    released = released_eval_files(expected_root).get(named["sha256"])
    if not released or released[:2] != (record.get("reproduction"), record.get("protocol")):
        return None
    file = (Path(run_dir) / named["path"])
    try:
        inside = file.resolve().is_relative_to(Path(run_dir).resolve())
        return released[2] if inside and file.is_file() and file_sha256(file) == named["sha256"] else None
    except OSError:
        return None


def released_evidence(record: dict, run_dir: Path | None = None, expected_root: Path | None = None) -> str | None:
    """What in the record's fields shows it measured the released weights ('sha256 measured', 'sha256 declared',
    'the authors' eval file'), or None. The record's own `provenance` and `released_sha256` are claims and count
    for nothing: the recorded checkpoint sha256 is compared with reproduction.toml's (or the verified download's)."""
    checkpoint = record.get("checkpoint") or {}
    sha = (checkpoint.get("sha256") or "").lower()
    full, prefix = _released_hash(reproduction_of(record))
    if sha and ((full and sha == full.lower()) or (not full and prefix and sha.startswith(prefix.lower()))):
        return "sha256 declared" if checkpoint.get("sha256_origin") == DECLARED else "sha256 measured"
    if _authors_eval_file(record, run_dir, expected_root):
        return "the authors' eval file"
    return None


def _unfounded_claim(record: dict) -> str | None:
    """How a checkpoint that says `provenance: released` (with nothing else showing it) claims more than its
    fields show; None when it does not claim it, or when the released sha256 is not known here to disprove it."""
    checkpoint = record.get("checkpoint") or {}
    if checkpoint.get("provenance") != RELEASED:
        return None
    sha = (checkpoint.get("sha256") or "").lower()
    if not sha:
        return "checkpoint.sha256 is not recorded"
    full, prefix = _released_hash(reproduction_of(record))
    if full:
        return f"checkpoint.sha256 {_short(sha)} is not the released sha256 {_short(full)}"
    if prefix:
        return f"checkpoint.sha256 {_short(sha)} does not start with the published prefix {prefix}"
    return None


def released_differences(record: dict, run_dir: Path | None = None, expected_root: Path | None = None) -> list[str]:
    """Why this record is not the released weights evaluated with the published protocol ([] when it is)."""
    differences = []
    if record.get("kind") == "train" or record.get("imported_kind") == "train":
        differences.append("a training run, not the released weights")
    elif released_evidence(record, run_dir, expected_root) is None:
        checkpoint = record.get("checkpoint") or {}
        if checkpoint.get("provenance") == TRAIN_RUN:
            differences.append(f"checkpoint from the `repro train` run {checkpoint.get('train_run') or '?'}")
        elif checkpoint.get("sha256") and _released_hash(reproduction_of(record)) == (None, None):
            rep = record.get("reproduction")
            differences.append(f"checkpoint sha256 {_short(checkpoint.get('sha256'))} cannot be checked: no released "
                               f"sha256 of {rep} is known here (`repro download {rep}` records it)")
        elif checkpoint.get("sha256"):
            differences.append(f"checkpoint is not the released file (sha256 {_short(checkpoint.get('sha256'))})")
        else:
            differences.append(f"checkpoint not recorded ({checkpoint.get('source') or 'no provenance in the record'})")
    return differences + protocol_changes(record)


def choose_tier(record: dict, tier: str | None, baseline: bool = False, path: str = "",
                expected_root: Path | None = None) -> tuple[str, str]:
    """(tier, why) for a record; `--tier released` on a run that is not the released protocol is bad input, and so
    is a record whose checkpoint claims to be the released weights without the sha256 that shows it."""
    if baseline:       # the harness's own baselines: no released weights; any tier may be asked for
        return (tier or "baseline"), "the harness's own regression baseline"
    run_dir = Path(path).parent if path else None
    evidence = released_evidence(record, run_dir, expected_root)
    claim = _unfounded_claim(record) if evidence is None else None
    if claim:
        raise ReproError(f"{path}: checkpoint.provenance says 'released', but {claim}", fix=CLAIM_FIX)
    differences = released_differences(record, run_dir, expected_root)
    if tier == "released" and differences:
        raise ReproError(f"{path}: --tier released judges the released weights with the published protocol, "
                         f"and this run differs: {'; '.join(differences)}",
                         fix="verify it with --tier auto or --tier retrain")
    why = WHY_RELEASED
    if evidence == "sha256 declared":
        why = "released weights (sha256 declared at import, not measured), published protocol"
    if tier is not None:
        return tier, "asked for" if differences else why
    if not differences:
        return "released", why
    return "retrain", "; ".join(differences)


def released_sha256(rep) -> str | None:
    """The released weights' sha256: published in reproduction.toml, else recorded by their verified download."""
    if rep is None or rep.weights is None:
        return None
    from harness.fetch.weights import sha256_of

    return sha256_of(rep, "weights")


def record_fields(job: dict, run_dir: Path, record: dict) -> dict:
    """result.json fields for the verdict: the checkpoint with its provenance, the overrides, the eval JSON's hash."""
    from harness import registry

    try:
        rep = registry.get(job.get("reproduction"))
    except ReproError:
        rep = None
    training = rep.training if rep else None
    found = overrides({**job, "engine": job.get("eval_engine", job.get("engine"))},
                      training.total_batch if training else None, training.max_iters if training else None)
    fields = {"overrides": found}
    checkpoint = record.get("checkpoint")
    if checkpoint and "provenance" not in checkpoint:
        fields["checkpoint"] = checkpoint_provenance(checkpoint, released_sha256(rep) if job.get("kind") == "eval" else None)
    name = (record.get("artifacts") or {}).get("eval_json")
    if name and (Path(run_dir) / name).is_file():
        fields["eval_json"] = {"path": name, "sha256": file_sha256(Path(run_dir) / name)}
    return fields
