"""The evaluation loop (mmseg's single_gpu_test / multi_gpu_test with pre_eval), its metrics and its outputs."""
from __future__ import annotations

import json
import time
from pathlib import Path

from harness.engine.distributed import gather_results, sync_bn_to_bn, wrap_model


def evaluate_loader(model, data_loader, info: dict, tmpdir: str | None = None,
                    precision: str = "fp32", on_prediction=None) -> tuple[list, float]:
    """Our test loop: mmseg's single_gpu_test / multi_gpu_test with pre_eval=True, in one function.

    Per batch: forward with rescale, `dataset.pre_eval` (area histograms per image), progress on rank 0. Then the
    per-image results of all ranks are gathered in dataset order (mmcv's collect_results_gpu / _cpu). Returns
    (results on rank 0 / [] elsewhere, seconds of the loop). bf16 wraps the forward in autocast.
    """
    import torch

    from harness.engine.precision import forward_context
    from harness.engine.progress import ProgressLines

    model.eval()
    dataset = data_loader.dataset
    results = []
    bar = ProgressLines("eval", len(dataset)) if info["rank"] == 0 else None
    start = time.perf_counter()
    for batch_indices, data in zip(data_loader.batch_sampler, data_loader):
        with torch.no_grad(), forward_context(precision, info["device"]):
            result = model(return_loss=False, rescale=True, **data)
        if on_prediction is not None:   # --show-dir
            for index, pred in zip(batch_indices, result):
                on_prediction(index, pred)
        results.extend(dataset.pre_eval(result, indices=batch_indices))
        if bar is not None:
            bar.update(len(result) * info["world_size"])
    results = gather_results(results, len(dataset), info, tmpdir)
    seconds = time.perf_counter() - start
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


def final_evaluation(model, cfg, info: dict, run_dir: Path, job: dict, logger) -> dict:
    """Evaluate on data.test with the job's engine (fast: harness/engine/evaluate_fast.py; stock: our copy of
    mmseg's loop above) and precision; rank 0 writes the eval JSON; return metrics for engine.json."""
    from mmseg.datasets import build_dataloader, build_dataset

    from harness.engine.precision import set_matmul_precision

    engine, precision = job.get("eval_engine") or "stock", job.get("precision") or "fp32"
    set_matmul_precision(precision)
    dataset = build_dataset(cfg.data.test, {"test_mode": True})
    tmpdir = str(run_dir / ".dist_test")
    workers = cfg.data.get("workers_per_gpu", 0)
    show = _show_dir(job, dataset)
    if engine == "fast":
        from harness.engine.evaluate_fast import build_loader, evaluate_loader_fast
        loader = build_loader(dataset, info, workers)
        results, seconds = evaluate_loader_fast(model, loader, info, tmpdir=tmpdir, precision=precision,
                                                batch_size=job.get("eval_batch_size"), on_prediction=show)
    else:
        loader = build_dataloader(dataset, samples_per_gpu=1, workers_per_gpu=workers, num_gpus=1,
                                  dist=info["distributed"], shuffle=False, persistent_workers=False)
        results, seconds = evaluate_loader(model, loader, info, tmpdir=tmpdir, precision=precision,
                                           on_prediction=show)
    if info["rank"] != 0:
        return {}
    metric = dataset.evaluate(results, metric="mIoU", logger=logger)   # mmseg's tables and rounded values
    eval_json = _write_eval_json(run_dir, job["protocol"], job["config"], metric)
    if job["kind"] == "eval":   # one TextLoggerHook-style line, so every run directory has a log.json to read
        with open(run_dir / "eval.log.json", "a") as fh:
            fh.write(json.dumps({"mode": "val", "epoch": 1, "iter": len(dataset),
                                 **{k: float(v) for k, v in metric.items()}}) + "\n")
    metrics, per_class = metrics_percent(results, dataset.CLASSES)
    pictures = _pictures(model, dataset, results, run_dir, precision, show, logger)
    return {"metrics": metrics, "per_class": per_class, "eval_json": eval_json,
            "num_images": len(dataset), "eval_seconds": seconds, "images_per_s": len(dataset) / seconds,
            "eval_engine": engine, "precision": precision, "pictures": pictures,
            "peak_memory_mib": peak_memory_mib(info["device"])}


def peak_memory_mib(device: str) -> float:
    """This process's peak memory so far: CUDA's allocator peak on a GPU, else the peak resident set size."""
    import torch
    if device == "cuda" and torch.cuda.is_available():
        return torch.cuda.max_memory_allocated() / 2**20
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024   # Linux reports KiB


def _show_dir(job: dict, dataset):
    """--show-dir: the writer each rank hands its predictions to (harness/engine/gallery.py), or None."""
    if not job.get("show_dir"):
        return None
    from harness.engine.gallery import ShowDir
    return ShowDir(Path(job["show_dir"]), dataset, job.get("show_limit"))


def _pictures(model, dataset, results, run_dir: Path, precision: str, show, logger) -> dict:
    """The report's gallery (and --show-dir's count) as artifacts; a gallery that fails costs a warning, not the
    evaluation."""
    from harness.engine.gallery import write_gallery
    artifacts = {}
    if show is not None:
        artifacts.update(show_dir=str(show.directory), show_count=sum(map(show.wanted, range(len(dataset)))))
    try:
        artifacts["gallery"] = write_gallery(model, dataset, results, run_dir, precision)
    except Exception as exc:  # noqa: BLE001
        logger.warning(f"no gallery for the report: {type(exc).__name__}: {exc}")
    return artifacts


def run_eval(job: dict, cfg, info: dict, run_dir: Path, logger) -> dict:
    from mmseg.models import build_segmentor

    from harness.engine.checkpoint import load_seg_checkpoint

    model = build_segmentor(cfg.model, test_cfg=cfg.get("test_cfg"))
    if cfg.get("fp16") is not None:
        from mmcv.runner import wrap_fp16_model
        wrap_fp16_model(model)
    meta = load_seg_checkpoint(model, job["checkpoint"]["path"], map_location="cpu")
    logger.info(f"loaded checkpoint {job['checkpoint']['path']} (sha256 {job['checkpoint']['sha256']})")
    model, reverted = sync_bn_to_bn(model, info)
    model = wrap_model(model, info)
    out = final_evaluation(model, cfg, info, run_dir, job, logger)
    if info["rank"] != 0:
        return {}
    return {"metrics": out["metrics"], "per_class": out["per_class"],
            "artifacts": {"eval_json": out["eval_json"], "log_json": "eval.log.json", **out["pictures"]},
            "timing": {"images_per_s": out["images_per_s"], "eval_s": out["eval_seconds"],
                       "peak_memory_mib": out["peak_memory_mib"]},
            "eval_engine": out["eval_engine"], "precision": out["precision"],
            "notes": {"sync_bn_to_bn": reverted, "checkpoint_has_meta": bool(meta)}}
