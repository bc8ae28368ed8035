"""The engine entry point: the only code that runs inside each launched process (plain, torchrun or srun).

    python -m harness.engine.entry --job <run_dir>/job.json

Only `main` lives here: parse the job, set up distributed, call evaluate (harness/engine/evaluate.py) or train
(harness/engine/train.py) on the config from harness/engine/config.py. It is the harness's equivalent of the authors' tools/test.py and tools/train.py, with our modules registered:
apply the compatibility shims, set up torch.distributed from the launcher's environment (gloo on CPU, NCCL on
GPUs), build the config from job.json (harness/run/job.py defines it), then evaluate or train with mmseg's pieces.
Rank 0 writes mmseg's eval JSON, the dumped config, the logs and engine.json (metrics, artifacts, timing), which
harness/run/finalize.py turns into result.json. On an exception each rank writes failure[.rankN].txt, one line.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import traceback
from pathlib import Path

from harness.fileio import write_json_atomic
from harness.run.folder import ENGINE_FILE, failure_file
from harness.run.job import read_job

LOG_NAMES = {"eval": "eval.log", "train": "train.log"}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    from harness.engine.shims import local_rank_argument
    parser = argparse.ArgumentParser(prog="python -m harness.engine.entry", description=__doc__.splitlines()[0])
    parser.add_argument("--job", required=True, type=Path, help="job.json written by harness.run.api")
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
    job = read_job(args.job).as_dict()
    run_dir = Path(job["run_dir"])
    rank = int(os.environ.get("RANK", os.environ.get("SLURM_PROCID", "0")))
    try:
        from harness.engine import shims
        applied = shims.apply_all()
        import importlib
        # the reproduction's custom_imports: ours register EVA2, the layer-decay constructor, ... (a zoo entry: none)
        for module in job.get("custom_imports", ["harness.engine.modules"]):
            importlib.import_module(module)
        from harness.engine.config import build_config
        from harness.engine.distributed import init_distributed
        from harness.engine.evaluate import run_eval
        from harness.engine.train import run_train
        info = init_distributed(job["launch"]["launcher"], job.get("device"))
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
            from harness.run.record import capture_environment
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
        name = failure_file(rank)
        message = getattr(exc, "one_line", None)
        line = message() if callable(message) else f"{type(exc).__name__}: {exc}"
        try:
            (run_dir / name).write_text(" ".join(line.split()) + "\n")
        except OSError:
            pass
        return 1


if __name__ == "__main__":
    sys.exit(main())
