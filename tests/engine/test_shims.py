"""Each compatibility shim against the real mmcv/mmseg code: the unpatched path fails, the shimmed one works."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

pytest.importorskip("mmcv.parallel")

from mmcv.parallel import DataContainer, MMDistributedDataParallel

from harness.engine import shims
from harness.errors import ReproError


@pytest.fixture(autouse=True)
def pristine_engine():
    """Start and end every test with mmcv unpatched, whatever ran before in this process."""
    shims.revert_all()
    yield
    shims.revert_all()


@pytest.fixture
def process_group(tmp_path):
    """A one-process gloo group, as MMDistributedDataParallel needs one."""
    import torch.distributed as dist
    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    yield
    dist.destroy_process_group()


# --------------------------------------------------------------------------------------- scatter _get_stream

def _scatter_to_gpu0():
    from mmcv.parallel._functions import Scatter
    return Scatter.forward([0], torch.ones(2, 3))    # a CPU tensor to GPU 0, as MMDataParallel does


def test_scatter_get_stream_unpatched_fails_on_the_int_device():
    with pytest.raises(AttributeError, match="'int' object has no attribute 'type'"):
        _scatter_to_gpu0()


def test_scatter_get_stream_shimmed():
    shims.scatter_get_stream()
    if torch.cuda.is_available():
        (out,) = _scatter_to_gpu0()
        assert out.device == torch.device("cuda", 0) and torch.equal(out.cpu(), torch.ones(2, 3))
    else:
        # the stream lookup now succeeds; the copy itself then needs a GPU this machine does not have
        from mmcv.parallel import _functions
        assert _functions._get_stream(0) is None
        with pytest.raises((RuntimeError, AssertionError)) as info:
            _scatter_to_gpu0()
        assert "'int' object" not in str(info.value)


# --------------------------------------------------------------------------------------- MMDDP forward

class Doubler(nn.Module):
    """Stands in for a segmentor: forward wants tensors, train_step/val_step take a data dict like mmseg's."""

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.ones(1))

    def forward(self, img, img_metas=None):
        assert isinstance(img, torch.Tensor), f"model got {type(img).__name__}"
        if img_metas is not None:
            assert isinstance(img_metas, list), f"img_metas is {type(img_metas).__name__}"
        return img * self.w * 2

    def train_step(self, data_batch, optimizer=None):
        return {"loss": self(**data_batch).sum()}

    def val_step(self, data_batch, optimizer=None):
        return self.train_step(data_batch, optimizer)


def test_ddp_forward_unpatched_fails(process_group):
    ddp = MMDistributedDataParallel(Doubler(), device_ids=None)
    with pytest.raises(AttributeError, match="_use_replicated_tensor_module"):
        ddp(torch.ones(2))


def test_ddp_forward_shimmed(process_group):
    shims.ddp_forward_module()
    ddp = MMDistributedDataParallel(Doubler(), device_ids=None)
    assert torch.equal(ddp(torch.ones(2)), torch.full((2,), 2.0))


def _dc_batch():
    """A batch as mmseg's loader yields it: mmcv's collate of DataContainer samples."""
    from mmcv.parallel import collate
    sample = {"img": DataContainer(torch.ones(3, 2, 2), stack=True), "img_metas": DataContainer({"a": 1}, cpu_only=True)}
    return collate([sample], samples_per_gpu=1)


def test_ddp_cpu_datacontainers_unpatched_reach_the_model(process_group):
    shims.ddp_forward_module()
    ddp = MMDistributedDataParallel(Doubler(), device_ids=None)
    with pytest.raises(AssertionError, match="model got DataContainer"):
        ddp(**_dc_batch())
    with pytest.raises(AssertionError, match="model got DataContainer"):
        ddp.train_step(_dc_batch(), None)


def test_ddp_cpu_datacontainers_shimmed(process_group):
    shims.ddp_forward_module()
    shims.ddp_cpu_datacontainers()
    ddp = MMDistributedDataParallel(Doubler(), device_ids=None)
    assert torch.equal(ddp(**_dc_batch()), torch.full((1, 3, 2, 2), 2.0))
    assert ddp.train_step(_dc_batch(), None)["loss"].item() == 24.0
    assert ddp.val_step(_dc_batch(), None)["loss"].item() == 24.0


# --------------------------------------------------------------------------------------- torch.load defaults

def _mmseg_style_checkpoint(path: Path) -> Path:
    """What mmcv's CheckpointHook writes after EvalHook(save_best='mIoU'): numpy scalars in meta."""
    from mmcv.runner import save_checkpoint
    save_checkpoint(nn.Linear(2, 2), str(path), meta={"hook_msgs": {"best_score": np.float64(0.4321)},
                                                      "CLASSES": ("wall", "bed ")})
    return path


def test_checkpoint_loading_unpatched_refuses_numpy_meta(tmp_path):
    import pickle

    from mmcv.runner import load_checkpoint
    ckpt = _mmseg_style_checkpoint(tmp_path / "best.pth")
    with pytest.raises(pickle.UnpicklingError):
        load_checkpoint(nn.Linear(2, 2), str(ckpt), map_location="cpu")


def test_checkpoint_loading_shimmed_is_safe_and_works(tmp_path):
    from mmcv.runner import load_checkpoint
    shims.safe_checkpoint_loading()
    ckpt = _mmseg_style_checkpoint(tmp_path / "best.pth")
    loaded = load_checkpoint(nn.Linear(2, 2), str(ckpt), map_location="cpu")
    assert loaded["meta"]["hook_msgs"]["best_score"] == pytest.approx(0.4321)
    # still safe: a pickle that would construct an arbitrary object is refused, not executed
    torch.save({"state_dict": {}, "meta": {"x": Doubler}}, tmp_path / "evil.pth")
    with pytest.raises(ReproError, match="refusing to load"):
        load_checkpoint(nn.Linear(2, 2), str(tmp_path / "evil.pth"), map_location="cpu")


# --------------------------------------------------------------------------------------- --local-rank

def _mmseg_test_tool():
    import mmseg
    path = Path(mmseg.__file__).parent / ".mim" / "tools" / "test.py"
    spec = importlib.util.spec_from_file_location("mmseg_tools_test", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_local_rank_mmseg_tool_rejects_the_new_spelling(monkeypatch, capsys):
    tool = _mmseg_test_tool()
    monkeypatch.setattr(sys, "argv", ["test.py", "cfg.py", "ckpt.pth", "--eval", "mIoU", "--local-rank=1"])
    with pytest.raises(SystemExit) as info:
        tool.parse_args()
    assert info.value.code == 2 and "unrecognized arguments: --local-rank=1" in capsys.readouterr().err


@pytest.mark.parametrize("flag", [["--local-rank=1"], ["--local_rank", "1"]])
def test_local_rank_entry_accepts_both_spellings(flag, monkeypatch):
    from harness.engine.entry import parse_args
    monkeypatch.delenv("LOCAL_RANK", raising=False)
    args = parse_args(["--job", "job.json", *flag])
    assert args.local_rank == 1
    shims.export_local_rank(args.local_rank)
    import os
    assert os.environ["LOCAL_RANK"] == "1"


# --------------------------------------------------------------------------------------- yapf (no shim)

def test_config_dump_with_installed_yapf(tmp_path):
    """mmcv 1.7.1 passed verify=True to yapf, which yapf >= 0.40.2 rejects; 1.7.2 checks the version first."""
    import yapf
    from mmcv import Config
    from mmcv.utils import digit_version
    from yapf.yapflib.yapf_api import FormatCode

    if digit_version(yapf.__version__) >= digit_version("0.40.2"):
        with pytest.raises(TypeError):
            FormatCode("a = 1\n", verify=True)        # the call mmcv 1.7.1 made
    cfg = Config({"model": {"type": "EncoderDecoder", "backbone": {"type": "EVA2", "depth": 2}}, "crop_size": (64, 64)})
    cfg.dump(str(tmp_path / "dumped.py"))
    again = Config.fromfile(str(tmp_path / "dumped.py"))
    assert again.model.backbone.depth == 2 and tuple(again.crop_size) == (64, 64)


# ------------------------------------------------------------------------------------ KNet out_channels

KNET = "mmseg/knet_s3_fcn_r50-d8_8x2_512x512_adamw_80k_ade20k"


def _build_knet():
    from mmcv import Config
    from mmseg.models import build_segmentor

    from harness import registry
    cfg = Config.fromfile(str(registry.get(KNET).config_path("ss")))
    cfg.model.pretrained = None
    cfg.model.backbone.init_cfg = None          # random weights: no download
    return build_segmentor(cfg.model)


def test_knet_unpatched_fails_to_build():
    pytest.importorskip("mmseg")
    with pytest.raises(AttributeError, match="'IterativeDecodeHead' object has no attribute 'out_channels'"):
        _build_knet()


def test_knet_shimmed_builds_and_predicts_every_class():
    pytest.importorskip("mmseg")
    shims.knet_out_channels()
    model = _build_knet().eval()
    assert model.out_channels == model.decode_head.num_classes == 150
    meta = {"img_shape": (64, 64, 3), "ori_shape": (64, 64, 3), "pad_shape": (64, 64, 3), "flip": False}
    with torch.no_grad():
        logits = model.encode_decode(torch.randn(1, 3, 64, 64), [meta])
    assert logits.shape == (1, 150, 64, 64)


def test_apply_all_names_every_shim_and_is_idempotent():
    names = shims.apply_all()
    assert names == ["scatter_get_stream", "ddp_forward_module", "ddp_cpu_datacontainers", "safe_checkpoint_loading",
                     "knet_out_channels"]
    from mmcv.parallel import _functions
    patched = _functions._get_stream
    shims.apply_all()
    assert _functions._get_stream is patched
