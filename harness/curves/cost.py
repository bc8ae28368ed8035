"""GPU-hours used and projected: the measured time per iteration × the processes (GPUs) running it.

used: Σ over logged points of (seconds per iteration, mmcv's `time`, averaged over the log interval) × the
iterations since the previous point, × the world size; evaluation time is not in `time`, so it is not counted.
to go: the mean `time` of the last 5 points × the iterations left to max_iters × the world size. Without a
world size (a log alone) one process is assumed, and said.
"""
from __future__ import annotations

LAST_POINTS = 5


def estimate(run, max_iters: int | None) -> dict:
    timed = [p for p in run.train if p.time is not None]
    k = max(run.iters_per_step, 1)
    world = run.world_size or (run.gpus[0] if run.gpus[0] else None)
    procs = world or 1
    if not timed:
        return {"gpu_hours_used": None, "gpu_hours_to_go": None, "processes": world,
                "note": "no timed log line yet"}
    used_s, previous = 0.0, 0
    for p in timed:
        used_s += p.time * (p.iter - previous) * k       # `time` is per runner iteration; iter is in steps
        previous = p.iter
    step_s = sum(p.time for p in timed[-LAST_POINTS:]) / len(timed[-LAST_POINTS:]) * k
    left = max((max_iters or previous) - previous, 0)
    out = {"processes": world, "seconds_per_step": step_s, "iterations_done": previous, "max_iters": max_iters,
           "gpu_hours_used": used_s * procs / 3600, "gpu_hours_to_go": step_s * left * procs / 3600}
    out["gpu_hours_projected"] = out["gpu_hours_used"] + out["gpu_hours_to_go"]
    if world is None:
        out["note"] = "world size unknown: one process assumed"
    return out


def line(c: dict) -> str:
    if c.get("gpu_hours_used") is None:
        return f"cost: unknown ({c.get('note', '')})"
    text = (f"cost: {c['gpu_hours_used']:.3g} GPU-hours used, {c['gpu_hours_to_go']:.3g} to go "
            f"({c['gpu_hours_projected']:.3g} projected; {c['seconds_per_step']:.3g} s/step × {c['processes'] or 1} "
            f"process(es), iter {c['iterations_done']}/{c['max_iters'] or '?'})")
    return text + (f"; {c['note']}" if c.get("note") else "")
