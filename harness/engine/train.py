"""The training run: mmcv's IterBasedRunner with the recipe's hooks, --resume, then the final evaluation."""
from __future__ import annotations

import time
from pathlib import Path

from harness.engine.distributed import sync_bn_to_bn, wrap_model
from harness.engine.evaluate import final_evaluation


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


AMP_HOOKS = ("Fp16OptimizerHook", "GradientCumulativeFp16OptimizerHook")


def trains_with_amp(cfg, device: str) -> bool:
    hook = (cfg.get("optimizer_config") or {}).get("type")
    return hook in AMP_HOOKS or (hook == "AmpOptimizerHook" and device == "cuda")


def match_eval_fp16(model, cfg) -> bool:
    """Set `fp16_enabled` as `repro eval` of the checkpoint has it; return it (True: mmcv's fp16 autocast).

    mmcv's AMP hooks set `fp16_enabled` on every auto_fp16 module for training; left on, the final evaluation would
    run under fp16 autocast while `repro eval` (which wraps the model only when the config has `fp16`) runs fp32.
    """
    wanted = cfg.get("fp16") is not None
    for module in model.modules():
        if hasattr(module, "fp16_enabled"):
            module.fp16_enabled = wanted
    return wanted


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
    model, reverted = sync_bn_to_bn(model, info)
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
    model = wrap_model(model, info, find_unused=cfg.get("find_unused_parameters", False))
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

    # the final evaluation (protocol ss) with the final weights, in the precision `repro eval` would use:
    # result.json's metrics
    fp16 = match_eval_fp16(model, cfg)
    logger.info(f"final evaluation with fp16 autocast {'on' if fp16 else 'off'}, as `repro eval` of the checkpoint")
    out = final_evaluation(model, cfg, info, run_dir, job, logger)   # the job's eval precision (default fp32)
    precision = "fp16" if fp16 else out.get("precision", "fp32")
    if info["rank"] != 0:
        return {}
    checkpoints = sorted((p.name for p in run_dir.glob("iter_*.pth")), key=lambda n: int(n[5:-4]))
    best = runner.meta.get("hook_msgs", {}).get("best_ckpt") if runner.meta else None
    best = Path(best).name if best else None
    final = f"iter_{runner.iter}.pth"
    samples = (runner.iter - start_iter) * cfg.data.samples_per_gpu * info["world_size"]
    artifacts = {"eval_json": out["eval_json"], "log_json": "train.log.json", "checkpoints": checkpoints,
                 "best_checkpoint": best, "final_checkpoint": final if (run_dir / final).exists() else None,
                 **out.get("pictures", {})}
    from harness.fileio import file_sha256
    final_path = run_dir / final
    return {"metrics": out["metrics"], "per_class": out["per_class"], "artifacts": artifacts,
            "checkpoint": {"path": str(final_path), "sha256": file_sha256(final_path) if final_path.exists() else None,
                           "source": f"train run {run_dir} (final iteration {runner.iter})"},
            "seed": seed, "precision": precision,
            "timing": {"images_per_s": out["images_per_s"], "eval_s": out["eval_seconds"],
                       "peak_memory_mib": out.get("peak_memory_mib"),
                       "train_s": train_seconds, "train_images_per_s": samples / train_seconds if train_seconds else None},
            "training": {"iterations": runner.iter, "optimizer_steps": runner.iter // int(job.get("accumulate") or 1),
                         "resumed_from": resumed_from, "sync_bn_to_bn": reverted, "device": info["device"],
                         "amp": trains_with_amp(cfg, info["device"]), "best_score": (runner.meta or {}).get("hook_msgs", {})
                         .get("best_score")},
            "_torch": torch.__version__, "_mmcv": mmcv.__version__}
