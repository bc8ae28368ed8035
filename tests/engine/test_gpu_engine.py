"""The engine's CUDA paths on a real GPU (marked `gpu`; skipped where torch sees no CUDA device):

- the golden mini model on CUDA against the CPU golden: logits within 1e-4 with TF32 off, argmax >= 99.9 % with it on;
- mmcv's CPU->GPU scatter with our `scatter_get_stream` shim, through MMDataParallel and a real segmentor;
- MMDistributedDataParallel(device_ids=[...]) as wrap_model builds it, in a one-process NCCL group;
- collect_results_gpu under torchrun with one process per visible GPU.
"""
from __future__ import annotations

import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from conftest import DEMO, GOLDEN, build_model, load_config

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device (torch sees none)")]

ATOL = 1e-4


@pytest.fixture(autouse=True)
def _engine_shims():
    from harness.engine import shims
    shims.apply_all()
    import harness.engine.modules  # noqa: F401
    yield


@pytest.fixture
def tf32(request):
    """TF32 for matmuls and convolutions on (param True) or off, restored afterwards."""
    before = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = request.param
    yield request.param
    torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = before


@pytest.fixture(scope="module")
def golden_cuda():
    from mmcv.cnn.utils import revert_sync_batchnorm
    from mmseg.models import build_segmentor
    from test_golden import golden_config

    import harness.engine.modules  # noqa: F401
    from harness.engine.checkpoint import load_seg_checkpoint
    cfg = golden_config()
    model = revert_sync_batchnorm(build_segmentor(cfg.model))
    load_seg_checkpoint(model, GOLDEN / "weights.pth")
    return cfg, model.cuda().eval(), dict(np.load(GOLDEN / "expected.npz"))


def _max_diff(ours, expected) -> float:
    ours = ours.detach().float().cpu().numpy()
    assert ours.shape == expected.shape
    return float(np.abs(ours - expected).max())


@pytest.mark.parametrize("tf32", [False], indirect=True)
def test_golden_logits_on_cuda_fp32(golden_cuda, tf32):
    from test_golden import run_pipeline
    cfg, model, exp = golden_cuda
    x = torch.from_numpy(exp["crop_input"]).cuda()
    meta = [dict(img_shape=(128, 128, 3), ori_shape=(128, 128, 3), pad_shape=(128, 128, 3), flip=False)]
    imgs, metas = run_pipeline(cfg.ss)
    with torch.no_grad():
        feats = model.backbone(x)
        crop = model.encode_decode(x, meta)
        logits = model.slide_inference(imgs[0].cuda(), metas[0], rescale=True)
        pred = model(return_loss=False, img=[imgs[0].cuda()], img_metas=metas, rescale=True)[0]
    for i, f in enumerate(feats):
        assert _max_diff(f, exp[f"feat{i}"]) <= ATOL, f"feat{i}"
    assert _max_diff(crop, exp["crop_logits"]) <= ATOL
    assert _max_diff(logits[:, :, ::4, ::4], exp["ss_logits_sub4"]) <= ATOL
    assert float((pred == exp["ss_pred"]).mean()) >= 0.999


@pytest.mark.parametrize("tf32", [True], indirect=True)
def test_golden_argmax_on_cuda_tf32(golden_cuda, tf32):
    from test_golden import run_pipeline
    cfg, model, exp = golden_cuda
    x = torch.from_numpy(exp["crop_input"]).cuda()
    meta = [dict(img_shape=(128, 128, 3), ori_shape=(128, 128, 3), pad_shape=(128, 128, 3), flip=False)]
    with torch.no_grad():
        crop = model.encode_decode(x, meta).argmax(1).cpu().numpy()
        ss = model(return_loss=False, img=[t.cuda() for t in run_pipeline(cfg.ss)[0]],
                   img_metas=run_pipeline(cfg.ss)[1], rescale=True)[0]
    assert float((crop == exp["crop_logits"].argmax(1)).mean()) >= 0.999
    assert float((ss == exp["ss_pred"]).mean()) >= 0.999


def _demo_batch():
    """One real test-pipeline batch of the golden image at the demo's scale, as DataContainers (what loaders give)."""
    from mmcv.parallel import collate
    from mmseg.datasets.pipelines import Compose
    cfg = load_config(DEMO)
    data = Compose(cfg.data.test.pipeline)(dict(img_info=dict(filename=str(GOLDEN / "image.png")), img_prefix=None))
    return cfg, collate([data], samples_per_gpu=1)


@pytest.mark.parametrize("tf32", [False], indirect=True)
def test_scatter_shim_through_mmdataparallel(tf32):
    """MMDataParallel scatters CPU DataContainers to GPU 0 through mmcv's Scatter (our _get_stream shim)."""
    from mmcv.parallel import MMDataParallel

    from harness.engine.distributed import wrap_model
    torch.manual_seed(0)
    cfg, batch = _demo_batch()
    model = build_model(cfg).eval()
    with torch.no_grad():   # a --device cpu job on this GPU host wraps the model like this
        on_cpu = wrap_model(model, {"distributed": False, "device": "cpu"})(return_loss=False, rescale=True, **batch)[0]
        on_gpu = MMDataParallel(model.cuda(), device_ids=[0])(return_loss=False, rescale=True, **batch)[0]
    assert on_gpu.shape == on_cpu.shape
    assert float((on_gpu == on_cpu).mean()) >= 0.999


def test_mmddp_with_device_ids_in_an_nccl_group(tmp_path):
    """wrap_model's MMDistributedDataParallel(device_ids=[current device]) on NCCL: eval forward and a train_step."""
    import torch.distributed as dist
    from mmcv.parallel import MMDataParallel

    from harness.engine.distributed import wrap_model
    torch.manual_seed(0)
    cfg, batch = _demo_batch()
    model = build_model(cfg).cuda().eval()
    dist.init_process_group("nccl", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    try:
        ddp = wrap_model(model, {"distributed": True, "device": "cuda"})
        assert ddp.device_ids == [torch.cuda.current_device()]
        with torch.no_grad():
            ours = ddp(return_loss=False, rescale=True, **batch)[0]
            single = MMDataParallel(model, device_ids=[0])(return_loss=False, rescale=True, **batch)[0]
        assert np.array_equal(ours, single)
        img = torch.randn(2, 3, 64, 64)
        gt = torch.randint(0, 150, (2, 1, 64, 64))
        metas = [dict(img_shape=(64, 64, 3), ori_shape=(64, 64, 3), pad_shape=(64, 64, 3), flip=False)] * 2
        ddp.train()
        out = ddp.train_step(dict(img=img.cuda(), img_metas=metas, gt_semantic_seg=gt.cuda()), None)
        out["loss"].backward()
        assert torch.isfinite(out["loss"]).item()
        assert all(p.grad is not None for p in model.decode_head.conv_seg.parameters())
    finally:
        dist.destroy_process_group()


COLLECT = textwrap.dedent("""
    import json, os, sys, numpy as np, torch, torch.distributed as dist
    from mmcv.engine import collect_results_gpu
    from harness.engine.distributed import init_distributed
    info = init_distributed("torchrun", "cuda")
    rank, world = info["rank"], info["world_size"]
    n = 7 * world + 3
    # mmseg's DistributedSampler order: rank r gets items r, r + world, ... (padded to equal length)
    mine = [np.full((2, 151), i, dtype=np.int64) for i in range(rank, n + (-n) % world, world)]
    out = collect_results_gpu(mine, n)
    if rank == 0:
        json.dump({"backend": dist.get_backend(), "world": world,
                   "order": [int(a[0, 0]) for a in out]}, open(sys.argv[1], "w"))
    dist.destroy_process_group()
""")


def test_collect_results_gpu_under_torchrun(tmp_path):
    script, out = tmp_path / "collect.py", tmp_path / "out.json"
    script.write_text(COLLECT)
    world = torch.cuda.device_count()
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node",
                           str(world), str(script), str(out)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    import json
    result = json.loads(out.read_text())
    assert result["backend"] == "nccl" and result["world"] == world
    assert result["order"] == list(range(7 * world + 3))   # every item once, in dataset order, padding dropped
