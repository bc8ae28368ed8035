"""Process group and model wrapping: rank/world/device from torchrun's or Slurm's variables, MMDDP or MMDP."""
from __future__ import annotations

import os


def init_distributed(launcher: str, device: str | None = None) -> dict:
    """Rank, world size and device from torchrun's (RANK/WORLD_SIZE/LOCAL_RANK) or Slurm's (SLURM_*) variables.

    `device` is the job's (cpu or cuda, decided for the target by harness.run.api); None means this process's torch
    decides. A job for cuda on a process without a GPU fails here in one line instead of training on the CPU.
    """
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
    if device == "cuda" and not torch.cuda.is_available():
        raise RuntimeError("the job asks for --device cuda but this process sees no CUDA device "
                           f"(CUDA_VISIBLE_DEVICES={env.get('CUDA_VISIBLE_DEVICES', 'unset')!r}); "
                           "run it on a GPU node or pass --device cpu")
    cuda = torch.cuda.is_available() if device is None else device == "cuda"
    if cuda:
        torch.cuda.set_device(local_rank % torch.cuda.device_count())
    distributed = world > 1 or launcher in ("torchrun", "slurm")
    if distributed and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if cuda else "gloo")
    return {"rank": rank, "world_size": world, "local_rank": local_rank, "distributed": distributed,
            "device": "cuda" if cuda else "cpu", "backend": ("nccl" if cuda else "gloo") if distributed else None}


def gather_results(results: list, size: int, info: dict, tmpdir: str | None) -> list:
    """Every rank's per-image results in dataset order on rank 0 ([] elsewhere): mmcv's collect_results_gpu over
    NCCL on GPUs (no shared filesystem needed), collect_results_cpu through `tmpdir` on CPU processes."""
    if not info["distributed"]:
        return results
    from mmcv.engine import collect_results_cpu, collect_results_gpu
    if info["device"] == "cuda":
        return collect_results_gpu(results, size) or []
    return collect_results_cpu(results, size, tmpdir) or []


def wrap_model(model, info: dict, find_unused: bool = False):
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
    wrapped = MMDataParallel(model)
    wrapped.device_ids = []   # --device cpu on a GPU host: DataParallel picked every GPU; mmcv's CPU path needs none
    return wrapped


def sync_bn_to_bn(model, info: dict):
    """SyncBN needs one process group on CUDA; one process, or CPU processes (gloo), get plain BN."""
    from mmcv.cnn.utils import revert_sync_batchnorm
    if not info["distributed"] or info["device"] != "cuda":
        return revert_sync_batchnorm(model), True
    return model, False
