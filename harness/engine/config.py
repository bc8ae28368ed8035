"""The mmcv Config a job runs: the reproduction's config with the job's data root, overrides and recipe changes.

The device is the target's (job["device"], decided by harness.run.api for the machines that will run the job), never
the one of the process that builds the config: a dry run on a Slurm login node shows what the GPU nodes run.
"""
from __future__ import annotations

from harness.run.options import DEVICES, target_device  # noqa: F401  (the one device resolver)


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

    device = device or job.get("device") or target_device("auto", (job.get("launch") or {}).get("launcher", "none"))
    cfg = Config.fromfile(job["config"])
    for split in ("train", "val", "test"):
        _set_data_root(cfg.data.get(split), job["data_root"])
    cfg.model.pretrained = None
    if job.get("run_dir"):
        cfg.work_dir = job["run_dir"]
    if job["kind"] == "eval":
        cfg.data.test.test_mode = True
        cfg.model.train_cfg = None
        if job.get("test_aug"):
            _set_test_aug(cfg.data.test.pipeline, job["test_aug"])
    else:
        _train_overrides(cfg, job, device)
    _device_choices(cfg, device)
    if job.get("cfg_options"):
        cfg.merge_from_dict(job["cfg_options"])
    return cfg


def _device_choices(cfg, device: str) -> None:
    """What the device decides, written into the config so the dumped and dry-run configs show it: the process
    group backend (NCCL on GPUs, gloo on CPUs) and, for AmpOptimizerHook, mmcv's torch-AMP Fp16OptimizerHook on
    CUDA (dynamic loss scale, as the authors' apex O1) or the fp32 hook elsewhere."""
    cfg.dist_params = dict(cfg.get("dist_params") or {}, backend="nccl" if device == "cuda" else "gloo")
    hook = cfg.get("optimizer_config") or {}
    if hook.get("type") == "AmpOptimizerHook" and device == "cuda":
        cfg.optimizer_config = {"type": "Fp16OptimizerHook", "loss_scale": hook.get("loss_scale", "dynamic"),
                                "grad_clip": hook.get("grad_clip"), "distributed": False}


def _set_test_aug(pipeline, test_aug: dict) -> None:
    """A protocol's test-time augmentation (the zoo's ms: mmseg's --aug-test) on the MultiScaleFlipAug step."""
    steps = [step for step in pipeline if step.get("type") == "MultiScaleFlipAug"]
    if not steps:
        from harness.errors import ReproError
        raise ReproError("the config's test pipeline has no MultiScaleFlipAug step to set the protocol's "
                         "img_ratios/flip on", fix="use the ss protocol, or a config with mmseg's usual test pipeline")
    for step in steps:
        step.update(test_aug)


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
