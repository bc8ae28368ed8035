"""`AmpOptimizerHook`: the authors' optimizer step without apex, deciding mixed precision by device.

The authors ran apex AMP O1 with dynamic loss scaling and no gradient clipping (DistOptimizerHook, use_fp16=True).
On CUDA this hook hands every step to mmcv's Fp16OptimizerHook(loss_scale='dynamic'): torch.cuda.amp autocast
through mmseg's auto_fp16/force_fp32 decorators plus a dynamic GradScaler, the same recipe. On any other device
(the CPU demo, tests) CUDA autocast does not exist, so the step is mmcv's plain fp32 OptimizerHook and the run log
says so once. Config use (all reproductions share it through _base_/schedules):

    optimizer_config = dict(type='AmpOptimizerHook', loss_scale='dynamic', grad_clip=None)
"""
from __future__ import annotations

from mmcv.runner import HOOKS, Fp16OptimizerHook, OptimizerHook


@HOOKS.register_module()
class AmpOptimizerHook(OptimizerHook):
    def __init__(self, loss_scale='dynamic', grad_clip=None):
        super().__init__(grad_clip=grad_clip)
        self.loss_scale = loss_scale
        self.amp = None  # the Fp16OptimizerHook doing the work on CUDA, else None
        self.device = None

    def before_run(self, runner):
        self.device = next(runner.model.parameters()).device.type
        if self.device == 'cuda':
            self.amp = Fp16OptimizerHook(grad_clip=self.grad_clip, loss_scale=self.loss_scale, distributed=False)
            self.amp.before_run(runner)
            runner.logger.info(f'mixed precision: on (torch AMP, loss_scale={self.loss_scale!r}), as the authors '
                               'ran apex O1 with dynamic loss scaling')
        else:
            runner.logger.warning(f'mixed precision: off, the model is on {self.device} so training runs in fp32 '
                                  '(the published recipe used AMP with dynamic loss scaling on CUDA)')

    def after_train_iter(self, runner):
        if self.amp is not None:
            return self.amp.after_train_iter(runner)
        return super().after_train_iter(runner)
