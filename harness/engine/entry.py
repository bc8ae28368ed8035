"""The engine entry point: the only code that runs inside each launched process (plain, torchrun or srun).

    python -m harness.engine.entry --job <run_dir>/job.json

It is the harness's equivalent of the authors' tools/test.py and tools/train.py, with our modules registered:
apply the compatibility shims, set up torch.distributed from the launcher's environment (gloo on CPU, NCCL on
GPUs), build the config from job.json (harness/runs.py writes it), then evaluate or train with mmseg's pieces.
Rank 0 writes mmseg's eval JSON, the dumped config, the logs and engine.json (metrics, artifacts, timing), which
harness.runs.finalize turns into result.json. On an exception each rank writes failure[.rankN].txt, one line.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
import traceback
from pathlib import Path

ENGINE_FILE = "engine.json"
LOG_NAMES = {"eval": "eval.log", "train": "train.log"}


# ------------------------------------------------------------------------------------------------ config

def _set_data_root(node, root: str) -> None:
    """Set data_root on a dataset config and on any dataset it wraps (RepeatDataset, ConcatDataset)."""
    if isinstance(node, (list, tuple)):
        for item in node:
            _set_data_root(item, root)
        return
    if not isinstance(node, dict):
        return
    if "data_root" in node or "img_dir" in node:
        node["data_root"] = root
    for key in ("dataset", "datasets"):
        if key in node:
            _set_data_root(node[key], root)


def build_config(job: dict, device: str | None = None):
    """The mmcv Config a job runs: the reproduction's config, data_root, the run's overrides, --cfg-options last.

    Training overrides count runner iterations in micro-batches: with `accumulate` K the optimizer steps every K
    iterations, so max_iters, warm-up, checkpoint and evaluation intervals are all multiplied by K and the number
    of optimizer steps, the learning-rate schedule and the evaluation points match the published recipe.
    """
    from mmcv import Config

    if device is None:
        import torch
        device = "cuda" if torch.cuda.is_available() else "cpu"
    cfg = Config.fromfile(job["config"])
    for split in ("train", "val", "test"):
        _set_data_root(cfg.data.get(split), job["data_root"])
    cfg.model.pretrained = None
    if job.get("run_dir"):
        cfg.work_dir = job["run_dir"]
    if job["kind"] == "eval":
        cfg.data.test.test_mode = True
        cfg.model.train_cfg = None
    else:
        _train_overrides(cfg, job, device)
    if job.get("cfg_options"):
        cfg.merge_from_dict(job["cfg_options"])
    return cfg


def _train_overrides(cfg, job: dict, device: str) -> None:
    k = int(job.get("accumulate") or 1)
    cfg.data.samples_per_gpu = job["samples_per_gpu"]
    if job.get("workers_per_gpu") is not None:
        cfg.data.workers_per_gpu = job["workers_per_gpu"]
    max_iters = int(job["max_iters"]) * k
    cfg.runner = {"type": "IterBasedRunner", "max_iters": max_iters}
    if cfg.get("lr_config") and cfg.lr_config.get("warmup_iters"):
        cfg.lr_config.warmup_iters = min(cfg.lr_config.warmup_iters * k, max_iters)
    ckpt = cfg.get("checkpoint_config") or {}
    cfg.checkpoint_config = dict(ckpt, by_epoch=False,
                                 interval=(job.get("checkpoint_interval") or ckpt.get("interval", 1000)) * k)
    ev = cfg.get("evaluation") or {}
    cfg.evaluation = dict(ev, interval=(job.get("eval_interval") or ev.get("interval", 1000)) * k, metric="mIoU",
                          pre_eval=True, save_best=ev.get("save_best", "mIoU"), by_epoch=False)
    if cfg.get("log_config"):
        # short runs (tests, the demo) still log enough points for a loss curve
        cfg.log_config.interval = max(1, min(cfg.log_config.interval, max_iters // 10))
    if k > 1:
        grad_clip = (cfg.get("optimizer_config") or {}).get("grad_clip")
        if device == "cuda":
            cfg.optimizer_config = {"type": "GradientCumulativeFp16OptimizerHook", "cumulative_iters": k,
                                        "loss_scale": "dynamic", "grad_clip": grad_clip}
        else:
            cfg.optimizer_config = {"type": "GradientCumulativeOptimizerHook", "cumulative_iters": k,
                                        "grad_clip": grad_clip}
    if job.get("pretrained"):
        cfg.model.backbone.pretrained = job["pretrained"]["path"]
    cfg.seed = job.get("seed")


# ------------------------------------------------------------------------------------------------ distributed

def init_distributed(launcher: str) -> dict:
    """Rank, world size and device from torchrun's (RANK/WORLD_SIZE/LOCAL_RANK) or Slurm's (SLURM_*) variables."""
    import torch
    import torch.distributed as dist

    env = os.environ
    if launcher == "slurm" or ("SLURM_PROCID" in env and "RANK" not in env and launcher != "none"):
        env["RANK"] = env["SLURM_PROCID"]
        env["WORLD_SIZE"] = env["SLURM_NTASKS"]
        env["LOCAL_RANK"] = env.get("SLURM_LOCALID", "0")
        env.setdefault("MASTER_PORT", "29500")
        env.setdefault("MASTER_ADDR", "127.0.0.1")
    rank = int(env.get("RANK", 0))
    world = int(env.get("WORLD_SIZE", 1))
    local_rank = int(env.get("LOCAL_RANK", 0))
    cuda = torch.cuda.is_available()
    if cuda:
        torch.cuda.set_device(local_rank % torch.cuda.device_count())
    distributed = world > 1 or launcher in ("torchrun", "slurm")
    if distributed and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if cuda else "gloo")
    return {"rank": rank, "world_size": world, "local_rank": local_rank, "distributed": distributed,
            "device": "cuda" if cuda else "cpu", "backend": ("nccl" if cuda else "gloo") if distributed else None}


def _wrap(model, info: dict, find_unused: bool = False):
    from mmcv.parallel import MMDataParallel, MMDistributedDataParallel

    if info["distributed"]:
        if info["device"] == "cuda":
            import torch
            device = torch.cuda.current_device()          # set from LOCAL_RANK by init_distributed
            return MMDistributedDataParallel(model.cuda(), device_ids=[device], broadcast_buffers=False,
                                             find_unused_parameters=find_unused)
        return MMDistributedDataParallel(model, device_ids=None, broadcast_buffers=False,
                                         find_unused_parameters=find_unused)
    if info["device"] == "cuda":
        return MMDataParallel(model.cuda(), device_ids=[0])
    return MMDataParallel(model)


def _sync_bn_to_bn(model, info: dict):
    """SyncBN needs one process group on CUDA; one process, or CPU processes (gloo), get plain BN."""
    from mmcv.cnn.utils import revert_sync_batchnorm
    if not info["distributed"] or info["device"] != "cuda":
        return revert_sync_batchnorm(model), True
    return model, False


# ------------------------------------------------------------------------------------------------ evaluation

def evaluate_loader(model, data_loader, info: dict, tmpdir: str | None = None) -> tuple[list, float]:
    """Our test loop: mmseg's single_gpu_test / multi_gpu_test with pre_eval=True, in one function.

    Per batch: forward with rescale, `dataset.pre_eval` (area histograms per image), progress on rank 0. Then the
    per-image results of all ranks are gathered in dataset order (mmcv's collect_results_gpu / _cpu). Returns
    (results on rank 0 / [] elsewhere, seconds of the loop).
    """
    import mmcv
    import torch
    from mmcv.engine import collect_results_cpu, collect_results_gpu

    model.eval()
    dataset = data_loader.dataset
    results = []
    bar = mmcv.ProgressBar(len(dataset)) if info["rank"] == 0 else None
    start = time.perf_counter()
    for batch_indices, data in zip(data_loader.batch_sampler, data_loader):
        with torch.no_grad():
            result = model(return_loss=False, rescale=True, **data)
        results.extend(dataset.pre_eval(result, indices=batch_indices))
        if bar is not None:
            for _ in range(len(result) * info["world_size"]):
                bar.update()
    if info["distributed"]:
        if info["device"] == "cuda":
            results = collect_results_gpu(results, len(dataset))
        else:
            results = collect_results_cpu(results, len(dataset), tmpdir)
    seconds = time.perf_counter() - start
    if bar is not None:
        sys.stdout.write("\n")
    return (results or []), seconds


def metrics_percent(results: list, class_names) -> tuple[dict, dict]:
    """aAcc/mIoU/mAcc and per-class IoU/Acc in percent at full precision (mmseg's formulas, no rounding)."""
    import numpy as np
    from mmseg.core.evaluation.metrics import pre_eval_to_metrics

    m = pre_eval_to_metrics(results, ["mIoU"])
    iou, acc = np.asarray(m["IoU"], dtype=float), np.asarray(m["Acc"], dtype=float)
    metrics = {"aAcc": float(np.asarray(m["aAcc"])) * 100, "mIoU": float(np.nanmean(iou)) * 100,
               "mAcc": float(np.nanmean(acc)) * 100}
    per_class = {name: {"IoU": _pct(i), "Acc": _pct(a)} for name, i, a in zip(class_names, iou, acc)}
    return metrics, per_class


def _pct(value) -> float | None:
    import math
    value = float(value)
    return None if math.isnan(value) else value * 100


def _eval_json_name(protocol: str) -> str:
    kind = "multi_scale" if protocol == "ms" else "single_scale"
    return f"eval_{kind}_{time.strftime('%Y%m%d_%H%M%S', time.localtime())}.json"


def _write_eval_json(run_dir: Path, protocol: str, config: str, metric: dict) -> str:
    import mmcv
    name = _eval_json_name(protocol)
    mmcv.dump({"config": config, "metric": metric}, str(run_dir / name), indent=4)
    return name


def _final_evaluation(model, cfg, info: dict, run_dir: Path, job: dict, logger) -> dict:
    """Evaluate on data.test with our loop; rank 0 writes the eval JSON; return metrics for engine.json."""
    from mmseg.datasets import build_dataloader, build_dataset

    dataset = build_dataset(cfg.data.test, {"test_mode": True})
    loader = build_dataloader(dataset, samples_per_gpu=1, workers_per_gpu=cfg.data.get("workers_per_gpu", 0),
                              num_gpus=1, dist=info["distributed"], shuffle=False,
                              persistent_workers=False)
    results, seconds = evaluate_loader(model, loader, info, tmpdir=str(run_dir / ".dist_test"))
    if info["rank"] != 0:
        return {}
    metric = dataset.evaluate(results, metric="mIoU", logger=logger)   # mmseg's tables and rounded values
    eval_json = _write_eval_json(run_dir, job["protocol"], job["config"], metric)
    if job["kind"] == "eval":   # one TextLoggerHook-style line, so every run directory has a log.json to read
        with open(run_dir / "eval.log.json", "a") as fh:
            fh.write(json.dumps({"mode": "val", "epoch": 1, "iter": len(dataset),
                                 **{k: float(v) for k, v in metric.items()}}) + "\n")
    metrics, per_class = metrics_percent(results, dataset.CLASSES)
    return {"metrics": metrics, "per_class": per_class, "eval_json": eval_json,
            "num_images": len(dataset), "eval_seconds": seconds, "images_per_s": len(dataset) / seconds}


def run_eval(job: dict, cfg, info: dict, run_dir: Path, logger) -> dict:
    from mmseg.models import build_segmentor

    from harness.engine.checkpoint import load_seg_checkpoint

    model = build_segmentor(cfg.model, test_cfg=cfg.get("test_cfg"))
    if cfg.get("fp16") is not None:
        from mmcv.runner import wrap_fp16_model
        wrap_fp16_model(model)
    meta = load_seg_checkpoint(model, job["checkpoint"]["path"], map_location="cpu")
    logger.info(f"loaded checkpoint {job['checkpoint']['path']} (sha256 {job['checkpoint']['sha256']})")
    model, reverted = _sync_bn_to_bn(model, info)
    model = _wrap(model, info)
    out = _final_evaluation(model, cfg, info, run_dir, job, logger)
    if info["rank"] != 0:
        return {}
    return {"metrics": out["metrics"], "per_class": out["per_class"],
            "artifacts": {"eval_json": out["eval_json"], "log_json": "eval.log.json"},
            "timing": {"images_per_s": out["images_per_s"], "eval_s": out["eval_seconds"]},
            "notes": {"sync_bn_to_bn": reverted, "checkpoint_has_meta": bool(meta)}}


# ------------------------------------------------------------------------------------------------ training

def find_resume_checkpoint(run_dir: Path) -> Path | None:
    """The newest iter_N.pth that is a complete torch file (a process killed while saving leaves a torn one)."""
    import zipfile

    def iteration(p: Path) -> int:
        try:
            return int(p.stem.split("_")[-1])
        except ValueError:
            return -1

    for path in sorted(run_dir.glob("iter_*.pth"), key=iteration, reverse=True):
        try:
            with zipfile.ZipFile(path) as zf:
                if zf.testzip() is None:
                    return path
        except (zipfile.BadZipFile, OSError):
            continue
    return None


def run_train(job: dict, cfg, info: dict, run_dir: Path, logger) -> dict:
    import mmcv
    import torch
    from mmcv.runner import build_optimizer, build_runner
    from mmcv.utils import get_git_hash
    from mmseg import __version__ as mmseg_version
    from mmseg.apis import set_random_seed
    from mmseg.core import DistEvalHook, EvalHook
    from mmseg.datasets import build_dataloader, build_dataset
    from mmseg.models import build_segmentor
    from mmseg.utils import setup_multi_processes
    setup_multi_processes(cfg)          # as tools/train.py: fork start method, OMP/OpenCV threads in workers
    if cfg.get("cudnn_benchmark", False) and not job.get("deterministic"):
        torch.backends.cudnn.benchmark = True
    seed = job.get("seed")
    if seed is not None:
        set_random_seed(seed, deterministic=bool(job.get("deterministic")))
    logger.info(f"Set random seed to {seed}, deterministic: {bool(job.get('deterministic'))}")
    model = build_segmentor(cfg.model, train_cfg=cfg.get("train_cfg"), test_cfg=cfg.get("test_cfg"))
    model.init_weights()
    model, reverted = _sync_bn_to_bn(model, info)
    if reverted:
        logger.info("SyncBN -> BN (one process, or CPU processes)")
    datasets = [build_dataset(cfg.data.train)]
    meta_ckpt = {"mmseg_version": f"{mmseg_version}+{get_git_hash()[:7]}", "config": cfg.pretty_text,
                     "CLASSES": datasets[0].CLASSES, "PALETTE": datasets[0].PALETTE}
    cfg.checkpoint_config.meta = meta_ckpt
    model.CLASSES = datasets[0].CLASSES
    meta = dict(seed=seed, exp_name=Path(job["config"]).name, **meta_ckpt)

    workers = cfg.data.get("workers_per_gpu", 2)
    loader = build_dataloader(datasets[0], cfg.data.samples_per_gpu, workers, num_gpus=1, dist=info["distributed"],
                              seed=seed, drop_last=True, persistent_workers=workers > 0)
    model = _wrap(model, info, find_unused=cfg.get("find_unused_parameters", False))
    optimizer = build_optimizer(model, cfg.optimizer)    # mmcv's builder: finds EVA2LayerDecayOptimizerConstructor
    runner = build_runner(cfg.runner, default_args={"model": model, "batch_processor": None, "optimizer": optimizer,
                                                        "work_dir": str(run_dir), "logger": logger, "meta": meta})
    runner.register_training_hooks(cfg.lr_config, cfg.optimizer_config, cfg.checkpoint_config, cfg.log_config,
                                   cfg.get("momentum_config", None))
    runner.timestamp = "train"                           # train.log.json, appended to across --resume
    if cfg.get("evaluation") is not None:
        val = build_dataset(cfg.data.val, {"test_mode": True})
        val_loader = build_dataloader(val, samples_per_gpu=1, workers_per_gpu=workers, num_gpus=1,
                                      dist=info["distributed"], shuffle=False, persistent_workers=False)
        hook = DistEvalHook if info["distributed"] else EvalHook
        eval_cfg = dict(cfg.evaluation)
        if info["distributed"]:   # NCCL gathers results without a shared filesystem between nodes
            eval_cfg.setdefault("gpu_collect", info["device"] == "cuda")
        runner.register_hook(hook(val_loader, **eval_cfg), priority="LOW")
    resumed_from = None
    if job.get("resume"):
        ckpt = find_resume_checkpoint(run_dir)
        if ckpt is None:
            raise RuntimeError(f"--resume: no complete iter_*.pth in {run_dir}")
        # mmcv's default map_location calls torch.cuda.current_device(), which fails on a CPU-only machine
        runner.resume(str(ckpt), map_location="default" if info["device"] == "cuda" else "cpu")
        resumed_from = ckpt.name
        # mmcv's CheckpointHook saves iter_N.pth after N iterations but stores meta iter N-1, so a stock resume
        # repeats iteration N (one optimizer step too many); continue at N + 1 instead
        done = int(ckpt.stem.split("_")[-1])
        if runner.iter == done - 1:
            runner._iter = runner._inner_iter = done
        logger.info(f"resumed from {ckpt} at iteration {runner.iter}")
    start = time.perf_counter()
    start_iter = runner.iter
    runner.run([loader], cfg.workflow)
    train_seconds = time.perf_counter() - start

    # the final evaluation (protocol ss) with the final weights: result.json's metrics
    out = _final_evaluation(model, cfg, info, run_dir, job, logger)
    if info["rank"] != 0:
        return {}
    checkpoints = sorted((p.name for p in run_dir.glob("iter_*.pth")), key=lambda n: int(n[5:-4]))
    best = runner.meta.get("hook_msgs", {}).get("best_ckpt") if runner.meta else None
    best = Path(best).name if best else None
    final = f"iter_{runner.iter}.pth"
    samples = (runner.iter - start_iter) * cfg.data.samples_per_gpu * info["world_size"]
    artifacts = {"eval_json": out["eval_json"], "log_json": "train.log.json", "checkpoints": checkpoints,
                 "best_checkpoint": best, "final_checkpoint": final if (run_dir / final).exists() else None}
    from harness.preflight import file_sha256
    final_path = run_dir / final
    return {"metrics": out["metrics"], "per_class": out["per_class"], "artifacts": artifacts,
            "checkpoint": {"path": str(final_path), "sha256": file_sha256(final_path) if final_path.exists() else None,
                           "source": f"train run {run_dir} (final iteration {runner.iter})"},
            "seed": seed,
            "timing": {"images_per_s": out["images_per_s"], "eval_s": out["eval_seconds"],
                       "train_s": train_seconds, "train_images_per_s": samples / train_seconds if train_seconds else None},
            "training": {"iterations": runner.iter, "optimizer_steps": runner.iter // int(job.get("accumulate") or 1),
                         "resumed_from": resumed_from, "sync_bn_to_bn": reverted, "device": info["device"],
                         "amp": info["device"] == "cuda", "best_score": (runner.meta or {}).get("hook_msgs", {})
                         .get("best_score")},
            "_torch": torch.__version__, "_mmcv": mmcv.__version__}


# ------------------------------------------------------------------------------------------------ main

def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    from harness.engine.shims import local_rank_argument
    parser = argparse.ArgumentParser(prog="python -m harness.engine.entry", description=__doc__.splitlines()[0])
    parser.add_argument("--job", required=True, type=Path, help="job.json written by harness.runs")
    local_rank_argument(parser)
    return parser.parse_args(argv)


def _logger(run_dir: Path, kind: str, rank: int):
    from mmcv.utils import get_logger
    log_file = str(run_dir / LOG_NAMES[kind]) if rank == 0 else None
    # mode 'a': a resumed training run continues the same log
    return get_logger("mmseg", log_file=log_file, log_level=logging.INFO, file_mode="a")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    from harness.engine.shims import export_local_rank
    export_local_rank(args.local_rank)
    job = json.loads(args.job.read_text())
    run_dir = Path(job["run_dir"])
    rank = int(os.environ.get("RANK", os.environ.get("SLURM_PROCID", "0")))
    try:
        from harness.engine import shims
        applied = shims.apply_all()
        import harness.engine.modules  # noqa: F401  (registers EVA2, the layer-decay constructor, ...)
        info = init_distributed(job["launch"]["launcher"])
        rank = info["rank"]
        cfg = build_config(job, info["device"])
        logger = _logger(run_dir, job["kind"], rank)
        logger.info(f"repro engine: {job['kind']} {job['reproduction']} ({job['protocol']}), rank {rank}/"
                    f"{info['world_size']}, device {info['device']}, backend {info['backend']}, shims {applied}")
        if rank == 0:
            cfg.dump(str(run_dir / "config.py"))
        run = run_eval if job["kind"] == "eval" else run_train
        out = run(job, cfg, info, run_dir, logger)
        if rank == 0:
            from harness.record import capture_environment, write_json_atomic
            out.setdefault("artifacts", {}).update(config="config.py", log=LOG_NAMES[job["kind"]])
            out["kind"] = job["kind"]
            out["environment"] = capture_environment()
            out.pop("_torch", None), out.pop("_mmcv", None)
            write_json_atomic(run_dir / ENGINE_FILE, out)
        if info["distributed"]:
            import torch.distributed as dist
            dist.barrier()
            dist.destroy_process_group()
        return 0
    except BaseException as exc:  # noqa: BLE001  (one line for the record, the traceback for the console log)
        traceback.print_exc()
        name = "failure.txt" if rank == 0 else f"failure.rank{rank}.txt"
        message = getattr(exc, "one_line", None)
        line = message() if callable(message) else f"{type(exc).__name__}: {exc}"
        try:
            (run_dir / name).write_text(" ".join(line.split()) + "\n")
        except OSError:
            pass
        return 1


if __name__ == "__main__":
    sys.exit(main())
