"""The engine installed by the noxfile: compiled mmcv ops, mmseg's API, and a stock UPerHead segmentor that trains."""
import importlib.metadata as md
from pathlib import Path

import pytest
from packaging.requirements import Requirement

ENGINE = {"torch": "2.14.1", "torchvision": "0.29.1", "mmcv-full": "1.7.2", "mmsegmentation": "0.29.1"}
REQUIREMENTS = Path(__file__).resolve().parents[1] / "requirements-engine.txt"


def _exact_pins_for_this_python() -> dict[str, str]:
    """requirements-engine.txt's `name==version` lines whose environment marker holds for this interpreter."""
    lines = (line.split("#")[0].strip() for line in REQUIREMENTS.read_text().splitlines())
    reqs = [Requirement(line) for line in lines if line]
    return {r.name: str(r.specifier)[2:] for r in reqs
            if str(r.specifier).startswith("==") and (r.marker is None or r.marker.evaluate())}


def test_pinned_versions_are_installed():
    for dist, version in ENGINE.items():
        assert md.version(dist).split("+")[0] == version, dist


def test_requirement_pins_hold_for_this_python():
    pins = _exact_pins_for_this_python()
    assert "numpy" in pins and "torch" in pins   # exactly one numpy line applies to every supported Python
    for dist, version in pins.items():
        assert md.version(dist).split("+")[0] == version, f"{dist}: requirements-engine.txt pins {version}"


def test_compiled_ops_and_apis_import():
    import mmcv.ops
    import mmseg.apis  # noqa: F401

    assert callable(mmcv.ops.sigmoid_focal_loss)   # the import mmseg's focal loss needs, from the compiled _ext
    from mmcv.utils import ext_loader
    ext = ext_loader.load_ext("_ext", ["nms"])
    assert hasattr(ext, "nms")


def test_stock_uperhead_segmentor_forward_and_backward_on_cpu():
    import torch
    from mmcv.cnn.utils import revert_sync_batchnorm
    from mmseg.models import build_segmentor

    norm = dict(type="SyncBN", requires_grad=True)
    from mmcv import ConfigDict
    model = build_segmentor(ConfigDict(
        type="EncoderDecoder",
        backbone=dict(type="ResNetV1c", depth=18, num_stages=4, out_indices=(0, 1, 2, 3), norm_cfg=norm),
        decode_head=dict(type="UPerHead", in_channels=[64, 128, 256, 512], in_index=[0, 1, 2, 3],
                         pool_scales=(1, 2, 3, 6), channels=32, num_classes=5, norm_cfg=norm, align_corners=False,
                         loss_decode=dict(type="CrossEntropyLoss", use_sigmoid=False, loss_weight=1.0)),
        train_cfg=dict(), test_cfg=dict(mode="whole")))
    model = revert_sync_batchnorm(model)            # SyncBN -> BN on one CPU process
    assert not any(isinstance(m, torch.nn.SyncBatchNorm) for m in model.modules())
    model.train()
    torch.manual_seed(0)
    img = torch.randn(2, 3, 64, 64)
    gt = torch.randint(0, 5, (2, 1, 64, 64))
    metas = [dict(ori_shape=(64, 64, 3), img_shape=(64, 64, 3), pad_shape=(64, 64, 3), flip=False)] * 2
    losses = model.forward_train(img, metas, gt)
    loss = sum(v for k, v in losses.items() if "loss" in k)
    loss.backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None for g in grads) and torch.isfinite(loss)
    assert any(g.abs().sum() > 0 for g in grads)
    model.eval()
    with torch.no_grad():
        pred = model.simple_test(img[:1], metas[:1], rescale=True)
    assert pred[0].shape == (64, 64)


@pytest.mark.parametrize("module", ["harness.cli", "harness.registry", "harness.verify.compare", "harness.report"])
def test_light_rooms_do_not_import_the_engine(module):
    import subprocess
    import sys
    code = f"import sys, {module}; print(sorted(m for m in ('torch', 'mmcv', 'mmseg') if m in sys.modules))"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip() == "[]"
