"""The setup check before a launch: the run's resolved config and launch against each reference's env_info and
config, one line per difference, refused unless `--allow-setup-difference NAME`.

What is compared (the commonest reasons a retrain misses the paper: another GPU count or batch, another crop,
fp16 or not, a changed schedule):

| name | the run | a reference |
| --- | --- | --- |
| total_batch | world size × samples per GPU × accumulation | GPUs in env_info × samples_per_gpu × accumulation |
| crop_size | RandomCrop's crop_size of the train pipeline | the same in its config |
| iterations | optimizer steps (runner max_iters / accumulation) | runner max_iters / update interval |
| optimizer | optimizer type | the same |
| lr | optimizer lr | the same |
| lr_schedule | policy, power, min_lr, warmup, warmup_iters (in steps), warmup_ratio | the same |
| sync_bn | SyncBN in the model and more than one CUDA process | SyncBN in its config (and a distributed run) |
| fp16 | mixed precision on the target device | fp16 / use_fp16 / an fp16 optimizer hook in its config |

A reference's accumulation is its hook's `update_interval` (the authors' DistOptimizerHook) or `cumulative_iters`.
A reference's config text is read without executing it (`literal_config`: assignments of literals, `dict(...)` and
names defined before), since a log from a URL is not code to run. A fact a reference does not state (no env_info,
no config) is named as unknown and not refused.
"""
from __future__ import annotations

import ast
import logging
import math

from harness.errors import ReproError

log = logging.getLogger(__name__)

NAMES = ("total_batch", "crop_size", "iterations", "optimizer", "lr", "lr_schedule", "sync_bn", "fp16")
FP16_HOOKS = ("Fp16OptimizerHook", "GradientCumulativeFp16OptimizerHook")


class SetupDifference(ReproError):
    """The run's setup differs from a reference's in a way not allowed by --allow-setup-difference."""


def literal_config(text: str) -> dict:
    """The top-level assignments of an mmcv config text that are literals, dict(...) calls, lists, tuples or names
    assigned before; anything else (a function call, an import) is skipped. Nothing is executed."""
    scope: dict = {}

    def value(node):
        if isinstance(node, ast.Constant):
            return node.value
        if isinstance(node, (ast.List, ast.Tuple)):
            items = [value(e) for e in node.elts]
            return items if isinstance(node, ast.List) else tuple(items)
        if isinstance(node, ast.Dict):
            return {value(k): value(v) for k, v in zip(node.keys, node.values)}
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "dict" and not node.args:
            return {kw.arg: value(kw.value) for kw in node.keywords}
        if isinstance(node, ast.Name) and node.id in scope:
            return scope[node.id]
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            return -value(node.operand)
        if isinstance(node, ast.BinOp):      # e.g. 8000 * 2 in a hand-written config
            left, right = value(node.left), value(node.right)
            ops = {ast.Mult: lambda a, b: a * b, ast.Add: lambda a, b: a + b, ast.Sub: lambda a, b: a - b,
                   ast.Div: lambda a, b: a / b}
            if type(node.op) in ops and isinstance(left, (int, float)) and isinstance(right, (int, float)):
                return ops[type(node.op)](left, right)
        raise ValueError("not a literal")

    try:
        tree = ast.parse(text)
    except SyntaxError:
        return {}
    for stmt in tree.body:
        if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name):
            try:
                scope[stmt.targets[0].id] = value(stmt.value)
            except (ValueError, TypeError, KeyError, ZeroDivisionError):
                continue
    return scope


def _get(cfg, key, default=None):
    return cfg.get(key, default) if hasattr(cfg, "get") else default


def _crop(cfg) -> tuple | None:
    train = _get(_get(cfg, "data") or {}, "train") or {}
    for _ in range(3):       # RepeatDataset / wrappers: the dataset inside
        if _get(train, "pipeline") is None and _get(train, "dataset") is not None:
            train = train["dataset"]
    for step in _get(train, "pipeline") or []:
        if _get(step, "type") == "RandomCrop":
            size = step.get("crop_size")
            return tuple(size) if size is not None else None
    crop = _get(cfg, "crop_size")
    return tuple(crop) if crop is not None else None


def _has_sync_bn(node) -> bool:
    if isinstance(node, dict) or hasattr(node, "items"):
        return any((k == "type" and v == "SyncBN") or _has_sync_bn(v) for k, v in node.items())
    if isinstance(node, (list, tuple)):
        return any(_has_sync_bn(v) for v in node)
    return False


def _schedule(lr_config: dict, iters_per_step: int) -> dict:
    keys = ("policy", "power", "min_lr", "min_lr_ratio", "warmup", "warmup_ratio")
    out = {k: lr_config.get(k) for k in keys if lr_config.get(k) is not None}
    if lr_config.get("warmup_iters") is not None:
        out["warmup_iters"] = int(lr_config["warmup_iters"]) // max(iters_per_step, 1)
    return out


def facts_of_config(cfg, world_size: int | None, accumulate: int | None, fp16: bool | None,
                    distributed: bool | None) -> dict:
    """The compared facts of a config (an mmcv Config or literal_config's dict); None: not known."""
    optimizer = dict(_get(cfg, "optimizer") or {})
    spg = _get(_get(cfg, "data") or {}, "samples_per_gpu")
    runner = _get(cfg, "runner") or {}
    iters = runner.get("max_iters") if hasattr(runner, "get") else None
    k = accumulate or 1
    total = world_size * spg * k if world_size and spg else None
    return {
        "total_batch": total, "_batch_parts": (world_size, spg, k),
        "crop_size": _crop(cfg),
        "iterations": int(iters) // k if iters else None,
        "optimizer": optimizer.get("type"),
        "lr": optimizer.get("lr"),
        "lr_schedule": _schedule(dict(_get(cfg, "lr_config") or {}), k),
        "sync_bn": _has_sync_bn(_get(cfg, "model") or {}) and distributed is not False,
        "fp16": fp16,
    }


def reference_facts(ref) -> dict:
    """A reference's facts from its env_info (GPU count) and config text; the accumulation of the authors'
    DistOptimizerHook is `update_interval`, of mmcv's cumulative hooks `cumulative_iters`."""
    cfg = literal_config(ref.log.config_text or "")
    hook = cfg.get("optimizer_config") or {}
    k = int(hook.get("update_interval") or hook.get("cumulative_iters") or 1)
    gpus = ref.log.world_size or ref.log.gpus[0]
    fp16 = None
    if cfg:
        # an earlier `repro train` run's dumped config has its device's hook resolved (Fp16OptimizerHook on CUDA)
        fp16 = bool(hook.get("use_fp16") or hook.get("type") in FP16_HOOKS or cfg.get("fp16") is not None)
    facts = facts_of_config(cfg, gpus, k, fp16, ref.log.distributed if ref.log.distributed is not None else
                            (gpus or 1) > 1)
    if not cfg:
        facts = {name: None for name in NAMES} | {"_batch_parts": (gpus, None, None)}
    return facts


def run_facts(cfg, world_size: int, accumulate: int, device: str) -> dict:
    """The run's facts from its resolved config (harness/engine/config.py) and launch."""
    from harness.engine.train import trains_with_amp
    return facts_of_config(cfg, world_size, accumulate, trains_with_amp(cfg, device),
                           world_size > 1 and device == "cuda")


def _show(name: str, facts: dict) -> str:
    value = facts.get(name)
    if name == "total_batch" and value is not None:
        w, spg, k = facts["_batch_parts"]
        return f"{value} ({w} × {spg}" + (f" × accumulate {k})" if k != 1 else ")")
    if name == "crop_size" and value is not None:
        return "×".join(str(v) for v in value)
    if isinstance(value, dict):
        return ", ".join(f"{k} {v}" for k, v in value.items()) or "none"
    if isinstance(value, bool):
        return "on" if value else "off"
    return str(value)


def _equal(a, b) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        return isinstance(a, (int, float)) and isinstance(b, (int, float)) and math.isclose(a, b, rel_tol=1e-9)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in a)
    return a == b


def compare(ours: dict, ref_facts: dict, ref_label: str) -> tuple[list[dict], list[str]]:
    """(differences, unknowns): each difference {name, run, reference, line}."""
    differences, unknown = [], []
    for name in NAMES:
        theirs = ref_facts.get(name)
        if theirs is None or (name == "lr_schedule" and not theirs):
            unknown.append(f"{name}: the reference {ref_label} does not state it")
            continue
        if _equal(ours.get(name), theirs):
            continue
        differences.append({"name": name, "run": _show(name, ours), "reference": _show(name, ref_facts),
                            "line": f"{name}: {_show(name, ours)} here, {_show(name, ref_facts)} in {ref_label}"})
    return differences, unknown


def check(ours: dict, references: list, allowed: tuple[str, ...] | list[str] = (), notes=None) -> dict:
    """Compare the run's facts with each reference's; raise SetupDifference (one line naming every difference)
    unless each is allowed. `notes` (harness.run.preflight.Notes): a dry run collects the refusal as a note."""
    unknown_names = set(allowed) - set(NAMES)
    if unknown_names:
        raise ReproError(f"--allow-setup-difference {', '.join(sorted(unknown_names))}: no such setup fact",
                         fix=f"name one of: {', '.join(NAMES)}")
    record = {"compared": list(NAMES), "allowed": sorted(set(allowed)), "differences": [], "unknown": [],
              "references": [], "run": {k: _show(k, ours) for k in NAMES}}
    for ref in references:
        diffs, unknown = compare(ours, reference_facts(ref), ref.label)
        record["differences"] += [dict(d, reference_name=ref.label) for d in diffs]
        record["unknown"] += unknown
        record["references"].append(ref.label)
    refused = [d for d in record["differences"] if d["name"] not in allowed]
    for d in record["differences"]:
        if d["name"] in allowed:
            log.warning("setup differs (allowed by --allow-setup-difference %s): %s", d["name"], d["line"])
    if refused:
        names = sorted({d["name"] for d in refused})
        error = SetupDifference("setup differs from the reference: " + "; ".join(d["line"] for d in refused),
                                fix="match it, or pass " + " ".join(f"--allow-setup-difference {n}" for n in names)
                                    + " to train anyway (recorded)")
        record["refused"] = error.one_line().removeprefix("error: ")
        if notes is None:
            raise error
        notes.fail(error)
    return record


def before_launch(rep, specs, allowed, stop_when_off_track: bool, fields: dict, launch, notes) -> dict | None:
    """Preflight of `repro train`: the references gathered and hashed, the run's resolved config compared with
    each (SetupDifference unless allowed; a note in a dry run). Returns job.json's `curves` (None: no reference and
    no --stop-when-off-track, so the engine registers no hook)."""
    from harness.curves import references
    from harness.engine.config import build_config, target_device

    refs = references.gather(list(specs or ()), rep)
    if not refs and not stop_when_off_track:
        if allowed:
            raise ReproError("--allow-setup-difference without any reference to differ from",
                             fix="pass --reference FILE|URL|RUN (or leave the flag out)")
        return None
    device = target_device(fields.get("device") or "auto", launch.launcher)
    job = dict(fields, kind="train", protocol="ss", launch=launch.record(), device=device, run_dir=None,
               data_root=fields.get("data_root") or "/nonexistent", pretrained=None)
    cfg = build_config(job)
    ours = run_facts(cfg, launch.world_size, int(fields.get("accumulate") or 1), device)
    record = check(ours, refs, tuple(allowed or ()), notes)
    if not refs:
        record["unknown"].append("no reference: nothing to compare the setup with")
    out = {"references": [r.record() for r in refs], "setup": record, "stop_when_off_track": bool(stop_when_off_track)}
    if not notes.strict and refs:       # a dry run: the lr schedule at the references' logged iterations
        out["dry_run_lr"] = dry_run_lr(cfg, refs, int(fields.get("accumulate") or 1), fields.get("max_iters"))
        notes.items.append(f"early verdict of the lr schedule (dry run, {out['dry_run_lr']['how']}): "
                           f"{out['dry_run_lr']['verdict']}")
    return out


DRY_RUN_LR_ITERS = 5000


def dry_run_lr(cfg, refs, accumulate: int, max_iters: int | None) -> dict:
    """The lr mmcv would log at each logged iteration of the references (up to DRY_RUN_LR_ITERS), judged."""
    from harness.curves import schedule, track
    wanted = sorted({p.iter for r in refs for p in r.log.lr_points() if p.iter <= DRY_RUN_LR_ITERS})
    simulated = schedule.simulate(cfg, wanted, accumulate)
    report = track.judge(simulated, refs, max_iters)
    return {"how": f"mmcv's LrUpdaterHook on the model's param groups, {len(wanted)} logged iterations",
            "verdict": report["verdict"], "first_off_track": report["first_off_track"],
            "points": [{"iter": p["iter"], "answer": p["answer"]} for p in report["points"]]}


def command_flags(curves: dict | None) -> list[str]:
    """The `repro train` flags that give this early-verdict setup again (job.json's `curves`)."""
    if not curves:
        return []
    names = list(dict.fromkeys(r["name"] for r in curves.get("references", [])))
    flags = [part for name in names for part in ("--reference", name)] if names != ["authors"] else []
    flags += [part for name in curves.get("setup", {}).get("allowed", []) for part in
              ("--allow-setup-difference", name)]
    return flags + ["--stop-when-off-track"] * bool(curves.get("stop_when_off_track"))
