"""KNet (7 zoo entries): mmseg 0.29.1's IterativeDecodeHead sets no `out_channels`, so every KNet model failed to
build (`EncoderDecoder: 'IterativeDecodeHead' object has no attribute 'out_channels'`) with no refusal before the
start. The engine's shim `knet_out_channels` (harness/engine/shims.py) makes them build and run."""
from __future__ import annotations

import json
import shlex

import pytest
from click.testing import CliRunner

from harness.cli import cli

from .conftest import random_b0_checkpoint

pytest.importorskip("mmseg")

KNET = "knet_s3_fcn_r50-d8_8x2_512x512_adamw_80k_ade20k"
KNET_ID = f"mmseg/{KNET}"


def repro(*args):
    result = CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)
    result.argv = shlex.join(["repro", *map(str, args)])
    return result


@pytest.mark.slow
def test_every_knet_entry_builds_with_the_engines_shims():
    from mmcv import Config
    from mmseg.models import build_segmentor

    from harness import registry
    from harness.engine import shims

    shims.apply_all()
    entries = [rep for rid, rep in registry.zoo_reproductions().items() if rid.startswith("mmseg/knet_")]
    assert len(entries) == 7
    for rep in entries:
        cfg = Config.fromfile(str(rep.config_path("ss")))
        cfg.model.pretrained = None
        cfg.model.backbone.init_cfg = None
        model = build_segmentor(cfg.model)
        assert model.out_channels == model.decode_head.num_classes == 150, rep.id


@pytest.mark.slow
def test_a_knet_entry_evaluates_with_random_weights(home, tmp_path):
    from harness.fetch.synthetic import generate
    from harness.registry import get

    data = generate(tmp_path / "data" / "ADEChallengeData2016", num_train=2, num_val=2, seed=3)
    checkpoint = tmp_path / "knet_random.pth"
    checkpoint.write_bytes(random_b0_checkpoint(get(KNET_ID).config_path("ss")))
    dry = repro("eval", KNET_ID, "--dry-run", "--device", "cpu", "--checkpoint", checkpoint, "--data-root", data)
    assert dry.exit_code == 0 and "type='IterativeDecodeHead'" in dry.output, dry.output
    result = repro("eval", KNET_ID, "--checkpoint", checkpoint, "--data-root", data, "--device", "cpu")
    assert result.exit_code == 0, result.output
    run = next((tmp_path / "runs" / "mmseg" / KNET / "ss").iterdir())
    record = json.loads((run / "result.json").read_text())
    assert record["status"] == "succeeded" and record["dataset"]["num_images"] == 2
    assert set(record["metrics"]) >= {"aAcc", "mIoU", "mAcc"} and len(record["per_class"]) == 150
