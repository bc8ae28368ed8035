"""`repro import`: results produced elsewhere -> a run record (kind "import") that verify and report read.

Understood inputs (the format is recognised from the content, not the name):

- mmseg's eval JSON from `tools/test.py --eval mIoU`: `{"config": path, "metric": {aAcc, mIoU, mAcc, IoU.<cls>,
  Acc.<cls>}}`, fractions; the reproduction and protocol are inferred from the config path when it is ours or one
  of the authors' (expected/upstream_configs.csv);
- an mmseg text log holding the printed tables ("per class results:" and "Summary:", percent), and/or training
  lines (`Iter [50/60000]\tlr: ...`);
- a training `*.log.json` (mmcv TextLoggerHook): loss/lr curves at every logged iteration, metrics from the last
  val line. A sibling text log (`X.log` beside `X.log.json`) supplies the exact lr (log.json rounds it to 5
  decimals); importing `X.log` uses a sibling `X.log.json` the same way.

Example::

    >>> run_dir = import_result("eval_single_scale_20230318_171005.json", out_dir=Path("runs/imported"))
"""
from __future__ import annotations

import json
import math
import re
import shlex
import shutil
from pathlib import Path

from harness import __version__, clock, paths
from harness.errors import ReproError
from harness.fileio import file_sha256
from harness.recordcheck import check_number, check_result
from harness.registry import datasets
from harness.run.claim import claim_default, claim_new, release
from harness.run.record import SCHEMA, write_result
from harness.verify import logs
from harness.verify.expected import SUMMARY_METRICS, infer_from_config, load_expected, released_eval_files
from harness.verify.logs import to_float
from harness.verify.provenance import DECLARED, checkpoint_provenance, released_sha256, reproduction_of

PROTOCOLS = ("ss", "ms")        # for a reproduction the registry cannot read (an id only in expected/)
# the dataset of what `repro import` reads: the reproduction is inferred from the file after its metrics are read,
# and every published table in expected/ is ADE20K's
IMPORTED = datasets.DEFAULT


def _protocols_of(reproduction: str) -> list[str]:
    """The reproduction's own protocol names (registry), else those of the expected tables' convention."""
    from harness import registry

    try:
        return sorted(registry.get(reproduction).protocols)
    except ReproError:
        return list(PROTOCOLS)


def _sniff(path: Path) -> tuple[str, object]:
    """('eval_json', dict) | ('log_json', None) | ('text_log', None); bad input raises ReproError."""
    if not path.is_file():
        raise ReproError(f"{path} does not exist", fix="pass an mmseg eval JSON, a text log or a *.log.json")
    text = path.read_text(errors="replace")
    if not text.strip():
        raise ReproError(f"{path} is empty", fix="pass the file mmseg wrote (eval JSON, text log or *.log.json)")
    stripped = text.lstrip()
    if stripped.startswith("{"):
        try:
            data = json.loads(text)
        except json.JSONDecodeError:
            first = stripped.splitlines()[0]
            try:
                json.loads(first)
            except json.JSONDecodeError as exc:
                raise ReproError(f"{path} is not valid JSON ({exc.msg} at line {exc.lineno})",
                                 fix="pass the file mmseg wrote, unchanged") from exc
            return "log_json", None
        if not isinstance(data, dict):
            raise ReproError(f"{path} is JSON but not an object", fix="pass mmseg's eval JSON {\"config\", \"metric\"}")
        if "mode" in data or "env_info" in data:
            return "log_json", None
        if not isinstance(data.get("metric"), dict) or not data["metric"]:
            raise ReproError(f"{path} is JSON without metrics (no \"metric\" object)",
                             fix="pass the eval JSON written by mmseg tools/test.py --eval mIoU")
        for key, value in data["metric"].items():     # mmseg writes numbers; a string is a file edited by hand
            check_number(value, f"metric.{key}", str(path))
        return "eval_json", data
    if logs.TRAIN_LINE.search(text) or "per class results:" in text or "Summary:" in text:
        return "text_log", None
    raise ReproError(f"{path} is neither an mmseg eval JSON, a *.log.json nor an mmseg text log",
                     fix="pass the file mmseg wrote, unchanged")


def _percent_metrics(path: Path, metric: dict, scale: float) -> tuple[dict, dict]:
    """Summary and per-class values in percent from flat mmseg keys (aAcc, IoU.<cls>, Acc.<cls>)."""
    dataset = datasets.get(IMPORTED)
    missing = [m for m in SUMMARY_METRICS if m not in metric]
    if missing:
        raise ReproError(f"{path}: metrics lack {', '.join(missing)}", fix="pass the output of an evaluation with --eval mIoU")
    metrics = {}
    for name in SUMMARY_METRICS:
        value = to_float(metric[name])
        if not math.isfinite(value):
            raise ReproError(f"{path}: {name} is {metric[name]!r}, not a finite number",
                             fix="the evaluation produced no usable value; re-run it")
        metrics[name] = value * scale
    per_class, unknown = {}, []
    for key, value in metric.items():
        kind, dot, name = key.partition(".")
        if not dot or kind not in ("IoU", "Acc"):
            continue
        canonical = dataset.canonical_class(name)
        if canonical is None:
            unknown.append(name)
            continue
        value = to_float(value)
        per_class.setdefault(canonical, {})[kind] = value * scale if math.isfinite(value) else None
    _refuse_unknown(path, unknown)
    return metrics, {name: per_class[name] for name in dataset.classes if name in per_class}


def _refuse_unknown(path: Path, unknown: list[str]) -> None:
    if unknown:
        shown = ", ".join(repr(n) for n in unknown[:3]) + (f" and {len(unknown) - 3} more" if len(unknown) > 3 else "")
        raise ReproError(f"{path}: unknown class name(s) {shown}", fix=datasets.get(IMPORTED).class_names_fix)



def _from_tables(path: Path, parsed: dict) -> tuple[dict, dict]:
    summary, per_class = parsed["summary"], parsed["per_class"]
    if summary is None or summary.empty:
        return {}, {}
    flat = {k: summary[k].iloc[0] for k in summary.columns}
    if per_class is not None and not per_class.empty:
        for row in per_class.itertuples(index=False):
            flat[f"IoU.{row.Class}"] = row.IoU
            flat[f"Acc.{row.Class}"] = row.Acc
    flat = {k: to_float(v) for k, v in flat.items()}
    return _percent_metrics(path, flat, 1.0)


def _environment(reported: dict) -> dict:
    gpu = next((v for k, v in reported.items() if k.startswith("GPU ")), None)
    return {"harness_version": __version__, "git_sha": None, "python": reported.get("Python"),
            "torch": reported.get("PyTorch"), "cuda": reported.get("NVCC"), "cudnn": None,
            "mmcv": reported.get("MMCV"), "mmseg": reported.get("MMSegmentation"), "devices": gpu,
            "packages": {}, "reported": reported}


def _sibling(path: Path, fmt: str) -> Path | None:
    if fmt == "log_json" and path.name.endswith(".log.json"):
        candidate = path.with_name(path.name[: -len(".json")])
    elif fmt == "text_log" and path.name.endswith(".log"):
        candidate = path.with_name(path.name + ".json")
    else:
        return None
    return candidate if candidate.is_file() else None


def named_checkpoint(reproduction: str, checkpoint: Path | None, checkpoint_sha256: str | None) -> dict | None:
    """The checkpoint the user says the numbers came from: `--checkpoint PATH` (hashed here: measured) or
    `--checkpoint-sha256 HEX` (recorded as declared, not measured); None when neither is given."""
    if checkpoint is not None and checkpoint_sha256 is not None:
        raise ReproError("--checkpoint and --checkpoint-sha256 both name the checkpoint",
                         fix="pass one: the file (hashed here) or its sha256 (recorded as declared)")
    if checkpoint is not None:
        checkpoint = Path(checkpoint).resolve()
        if not checkpoint.is_file():
            raise ReproError(f"--checkpoint {checkpoint} is not a file", fix="pass the checkpoint file the numbers came from")
        fields = {"path": str(checkpoint), "sha256": file_sha256(checkpoint), "sha256_origin": "measured",
                  "source": f"named at import (--checkpoint {checkpoint.name})"}
    elif checkpoint_sha256 is not None:
        sha = checkpoint_sha256.strip().lower()
        if not re.fullmatch(r"[0-9a-f]{64}", sha):
            raise ReproError(f"--checkpoint-sha256 {checkpoint_sha256!r} is not a sha256 (64 hex digits)",
                             fix="pass the checkpoint's full sha256, e.g. from `sha256sum FILE`")
        fields = {"path": None, "sha256": sha, "sha256_origin": DECLARED,
                  "source": "declared at import (--checkpoint-sha256), not measured"}
    else:
        return None
    return checkpoint_provenance(fields, released_sha256(reproduction_of({"reproduction": reproduction})))


def _imported_checkpoint(path: Path, sha: str, reproduction: str, protocol: str, expected_root) -> dict:
    """An imported file names no checkpoint. Only the authors' own eval file of the released weights (its sha256 is
    in expected/evidence.csv) says which weights it measured; anything else is `unknown`."""
    released = released_eval_files(expected_root).get(sha)
    if released and released[:2] == (reproduction, protocol):
        return {"path": None, "sha256": None, "provenance": "released",
                "source": f"the released weights, as evaluated by the authors ({released[2]})"}
    return {"path": None, "sha256": None, "provenance": "unknown", "source": f"not recorded: imported from {path.name}"}


def read_source(path: Path) -> dict:
    """Everything a source file (and its sibling log) says: format, metrics, per_class, curves, config, env, seed."""
    path = Path(path)
    fmt, data = _sniff(path)
    out = {"format": fmt, "files": {}, "metrics": {}, "per_class": {}, "curves": None, "config": None,
           "environment": {}, "seed": None, "imported_kind": "eval"}
    if fmt == "eval_json":
        out["files"]["eval_json"] = path
        out["metrics"], out["per_class"] = _percent_metrics(path, data["metric"], 100.0)
        out["config"] = data.get("config")
        return out
    json_path = path if fmt == "log_json" else _sibling(path, fmt)
    text_path = path if fmt == "text_log" else _sibling(path, fmt)
    meta, train_json, val = ({}, [], [])
    if json_path:
        meta, train_json, val = logs.read_log_json(json_path)
        out["files"]["log_json"] = json_path
    parsed = logs.read_text_log(text_path) if text_path else None
    if text_path:
        out["files"]["log"] = text_path
    train_text = parsed["train"] if parsed else []
    if not val and parsed:
        val = parsed["val"]
    if train_json or train_text:
        out["imported_kind"] = "train"
    out["curves"] = logs.curves(train_json, train_text, val)
    if parsed:
        out["metrics"], out["per_class"] = _from_tables(text_path, parsed)
    if not out["metrics"] and val:
        last = {k: v for k, v in val[-1].items() if k not in ("mode", "epoch", "iter", "lr", "step")}
        out["metrics"], out["per_class"] = _percent_metrics(json_path or text_path, last, 100.0)
    out["config"] = meta.get("exp_name") or (meta.get("config") or "").split("\n")[0] or None
    env = logs.parse_env_info(meta["env_info"]) if meta.get("env_info") else (parsed or {}).get("environment", {})
    out["environment"] = env
    out["seed"] = meta.get("seed")
    if not out["metrics"] and not out["curves"]["train"]:
        raise ReproError(f"{path} holds neither metrics nor training iterations",
                         fix="pass the eval JSON, or the log of a run that trained or evaluated")
    return out


def import_result(path: Path | str, reproduction: str | None = None, protocol: str | None = None,
                  out_dir: Path | None = None, expected_root: Path | None = None, checkpoint: Path | None = None,
                  checkpoint_sha256: str | None = None) -> Path:
    """Turn `path` into `<run_dir>/result.json` (kind "import") and copy the source file(s) beside it.

    :param reproduction: the reproduction id; inferred from the config named in the file when omitted
    :param protocol: "ss" or "ms"; inferred like the reproduction (a training log's final evaluation is "ss")
    :param out_dir: the run directory; default runs/<reproduction>/<protocol>/<UTC timestamp>/
    :param checkpoint: the checkpoint file the numbers came from (hashed: its sha256 is measured)
    :param checkpoint_sha256: or its sha256 as the user declares it (recorded as declared, not measured)
    :returns: the run directory
    """
    path = Path(path).resolve()
    source = read_source(path)
    expected = load_expected(expected_root)
    inferred = infer_from_config(source["config"], expected_root) if source["config"] else None
    if reproduction is None:
        if inferred is None:
            named = f"its config '{Path(str(source['config'])).name}' is not one we know" if source["config"] else "it names no config"
            raise ReproError(f"cannot tell which reproduction {path.name} belongs to: {named}",
                             fix="pass --reproduction ID --protocol ss|ms")
        reproduction = inferred[0]
    expected.check_reproduction(reproduction)
    if protocol is None:
        if inferred and inferred[0] == reproduction:
            protocol = inferred[1]
        elif source["imported_kind"] == "train":
            protocol = "ss"
        else:
            raise ReproError(f"cannot tell the protocol of {path.name}", fix="pass --protocol ss or --protocol ms")
    known = _protocols_of(reproduction)
    if protocol not in known:
        raise ReproError(f"unknown protocol '{protocol}' for {reproduction}", fix=f"use one of: {', '.join(known)}")
    named = named_checkpoint(reproduction, checkpoint, checkpoint_sha256)
    check_result({"schema": SCHEMA, "reproduction": reproduction, "protocol": protocol, "kind": "import",   # as
                  "status": "succeeded", "metrics": source["metrics"], "per_class": source["per_class"],  # every
                  "curves": source["curves"], "checkpoint": named}, str(path))                             # reader

    if out_dir is None:      # claimed as every run folder is (harness/run/claim.py): new or empty, written once
        run_dir = claim_default(paths.runs_root() / reproduction / protocol).path
    else:
        run_dir = claim_new(out_dir, "-o")
    artifacts = {}
    (run_dir / "imported").mkdir()       # a fresh folder of its own: nothing outside the run folder is written
    for key, file in source["files"].items():
        target = run_dir / "imported" / file.name
        shutil.copy2(file, target)
        artifacts[key] = str(target.relative_to(run_dir))

    command = ["repro", "import", str(path), "--reproduction", reproduction, "--protocol", protocol]
    if checkpoint is not None:
        command += ["--checkpoint", named["path"]]
    elif checkpoint_sha256 is not None:
        command += ["--checkpoint-sha256", named["sha256"]]
    source_sha = file_sha256(path)
    now = clock.iso_now()
    record = {
        "reproduction": reproduction, "protocol": protocol, "kind": "import", "status": "succeeded",
        "imported_kind": source["imported_kind"],
        "imported_from": {"path": str(path), "format": source["format"], "sha256": source_sha,
                          "files": {k: str(v) for k, v in source["files"].items()}, "config": source["config"],
                          "inferred": list(inferred) if inferred else None},
        "metrics": source["metrics"], "per_class": source["per_class"],
        "checkpoint": named or _imported_checkpoint(path, source_sha, reproduction, protocol, expected_root),
        "overrides": {},
        "dataset": {"name": IMPORTED, "split": datasets.get(IMPORTED).val_split, "root": None, "num_images": None, "manifest_sha256": None},
        "launch": {"launcher": None, "nnodes": None, "gpus": None, "world_size": None, "samples_per_gpu": None,
                   "accumulate": None, "total_batch": None, "command": shlex.join(command)},
        "environment": _environment(source["environment"]),
        "seed": source["seed"],
        "timing": {"started": None, "finished": None, "wall_s": None, "images_per_s": None, "imported": now},
        "artifacts": artifacts,
    }
    if source["curves"] is not None:
        record["curves"] = source["curves"]
    if "eval_json" in artifacts:
        record["eval_json"] = {"path": artifacts["eval_json"], "sha256": source_sha}
    if not source["metrics"]:
        record["note"] = "the log holds no evaluation: training curves only, nothing to verify"
    write_result(run_dir, record)
    release(run_dir)
    return run_dir
