"""The early verdict inside `repro train`: an mmcv hook that judges the run at every log and evaluation point.

It runs after mmcv's logger and evaluation hooks (priority LOWEST), so the iteration's train and val lines are in
train.log.json when it reads them. At each log interval it appends the exact lr of the first param group to
curve.jsonl (the .log.json rounds lr to 5 decimals), judges the run against the references job.json recorded
(harness/curves/track.py) and writes watch.json atomically. With `--stop-when-off-track`, an evaluation point
whose answer is off track ends the run there: its checkpoint is saved (if that iteration had none) and the
runner stops after it; rank 0 decides and, in a distributed run, tells the other ranks at every evaluation point.
Only the engine imports this module (it needs mmcv).
"""
from __future__ import annotations

import json
from pathlib import Path

from mmcv.runner import HOOKS, Hook

from harness.curves import logs, references, track
from harness.fileio import write_json_atomic

WATCH_FILE = "watch.json"


def _is_eval_iter(runner, interval: int | None) -> bool:
    return bool(interval) and (runner.iter + 1) % interval == 0


@HOOKS.register_module(force=True)
class EarlyVerdictHook(Hook):
    def __init__(self, run_dir: str, job: dict, log_interval: int, eval_interval: int | None, rank: int,
                 distributed: bool):
        self.run_dir, self.job = Path(run_dir), job
        self.curves = job.get("curves") or {}
        self.log_interval, self.eval_interval = max(int(log_interval), 1), eval_interval
        self.rank, self.distributed = rank, distributed
        self.refs, self.stopped, self.last = [], None, None
        self.k = int(job.get("accumulate") or 1)

    def before_run(self, runner):
        if self.rank == 0:
            self.refs = references.from_records(self.curves.get("references") or [])

    def after_train_iter(self, runner):
        at_log = self.every_n_iters(runner, self.log_interval)
        at_eval = _is_eval_iter(runner, self.eval_interval)
        stop = False
        if self.rank == 0 and (at_log or at_eval):
            lr = runner.current_lr()
            lr = lr[0] if isinstance(lr, list) else next(iter(lr.values()))[0]
            line = {"iter": runner.iter + 1, **({"lr": lr} if at_log else {}), **({"eval": True} if at_eval else {})}
            with open(self.run_dir / logs.EXACT_FILE, "a") as fh:    # the val line's own iteration, too
                fh.write(json.dumps(line) + "\n")
            stop = self.judge(runner, at_eval)
        if at_eval and self.distributed:
            import torch
            import torch.distributed as dist
            flag = torch.tensor([1 if stop else 0], device="cuda" if torch.cuda.is_available()
                                and dist.get_backend() == "nccl" else "cpu")
            dist.broadcast(flag, 0)
            stop = bool(flag.item())
        if stop:
            self.stop(runner)

    def judge(self, runner, at_eval: bool) -> bool:
        run = logs.read_run(self.run_dir)
        report = track.judge(run, self.refs, int(self.job.get("max_iters") or 0) or None)
        report["stop_when_off_track"] = bool(self.curves.get("stop_when_off_track"))
        report["setup"] = self.curves.get("setup")
        self.last = report
        step = (runner.iter + 1) // self.k
        off = track.off_track_eval(report)
        stop = bool(at_eval and report["stop_when_off_track"] and off is not None and off["iter"] == step)
        if stop:
            self.stopped = {"iter": step, "reason": off["answer"],
                            "note": f"stopped at iter {step} by --stop-when-off-track: {off['answer']}"}
            report["stopped"] = self.stopped
        write_json_atomic(self.run_dir / WATCH_FILE, report)
        point = next((p for p in reversed(report["points"]) if p["iter"] == step), None)
        if at_eval and point is not None:       # in train.log / console.log (and the terminal with --verbose)
            runner.logger.info(f"early verdict at iter {step}: {point['answer']}")
        return stop

    def stop(self, runner):
        from mmcv.runner import CheckpointHook
        for hook in runner.hooks:
            if isinstance(hook, CheckpointHook) and not hook.every_n_iters(runner, hook.interval):
                hook._save_checkpoint(runner)          # keep this iteration's weights
        runner.logger.info(f"early verdict: {(self.stopped or {}).get('note', 'stopped (off track)')}")
        runner._max_iters = runner.iter + 1


def register(runner, job: dict, cfg, run_dir: Path, info: dict) -> EarlyVerdictHook | None:
    """Add the hook when the job recorded references or asked to stop when off track (job['curves'])."""
    curves = job.get("curves")
    if not curves:
        return None
    log_interval = int((cfg.get("log_config") or {}).get("interval", 50))
    eval_interval = (cfg.get("evaluation") or {}).get("interval")
    hook = EarlyVerdictHook(str(run_dir), job, log_interval, eval_interval, info["rank"], info["distributed"])
    runner.register_hook(hook, priority="LOWEST")
    return hook


def record_fields(hook: EarlyVerdictHook | None) -> dict:
    """What the run record keeps of the early verdict: watch.json named, where it stopped and why."""
    if hook is None:
        return {}
    report = hook.last or {}
    return {"early_verdict": {"file": WATCH_FILE, "verdict": report.get("verdict"),
                              "first_off_track": report.get("first_off_track"), "stopped": hook.stopped,
                              "references": [{k: r[k] for k in ("name", "origin", "sha256", "seed")}
                                             for r in report.get("references", [])],
                              "cost": report.get("cost")}}
