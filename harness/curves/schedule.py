"""The lr schedule of a run before it starts: mmcv's own LrUpdaterHook driven through the first iterations on the
run's real param groups (the model built on torch's meta device: no weights, no memory; the optimizer from the
config's constructor, layer decay included), so a dry run shows the lr the logger would write at each of the
references' logged iterations, without a forward pass. Used by `repro train --dry-run` with references."""
from __future__ import annotations

from harness.curves import logs


def simulate(cfg, iterations: list[int], accumulate: int = 1) -> logs.TrainingLog:
    """The lr mmcv logs (first param group) after each runner iteration in ITERATIONS (in optimizer steps)."""
    import logging

    import torch
    from mmcv.runner import IterBasedRunner, build_optimizer
    from mmseg.models import build_segmentor

    from harness.engine import shims
    shims.apply_all()
    import harness.engine.modules  # noqa: F401  (registers EVA2 and the layer-decay constructor)

    cfg.model.pretrained = None
    if cfg.model.get("backbone", {}).get("pretrained"):
        cfg.model.backbone.pretrained = None
    try:
        with torch.device("meta"):
            model = build_segmentor(cfg.model)
    except Exception:            # a module whose constructor computes on tensors: build it on the CPU
        model = build_segmentor(cfg.model)
    optimizer = build_optimizer(model, cfg.optimizer)
    k = max(int(accumulate), 1)
    class Stub(torch.nn.Module):        # the runner wants a model with train_step; nothing is trained
        def train_step(self, *args, **kwargs):
            raise RuntimeError("the lr dry run trains nothing")

    runner = IterBasedRunner(model=Stub(), optimizer=optimizer, work_dir=None,
                             logger=logging.getLogger("repro.schedule"), max_iters=cfg.runner.max_iters)
    runner.register_lr_hook(dict(cfg.lr_config))
    runner.call_hook("before_run")
    wanted = {i * k for i in iterations}
    log = logs.TrainingLog(source="mmcv LrUpdaterHook (dry run)", iters_per_step=k)
    for i in range(max(wanted, default=0)):
        runner._iter = i
        runner.call_hook("before_train_iter")
        if i + 1 in wanted:
            log.train.append(logs.TrainPoint(iter=(i + 1) // k, lr=optimizer.param_groups[0]["lr"],
                                             lr_resolution=0.0, loss=None))
    return log
