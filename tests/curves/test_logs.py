"""The training-log parser on the zoo's `.log.json` format (a hand-written fixture) and on the authors' B-512 log."""
import json
import math

import pytest

from harness.curves import logs
from harness.errors import ReproError

ZOO = "curves/zoo_format_example.log.json"


def test_zoo_format_fixture_env_info_seed_config(reference):
    log = logs.read_log(reference / ZOO)
    assert log.gpus == (4, "Tesla V100-SXM2-32GB")
    assert log.seed == 0 and log.exp_name == "fcn_r50-d8_512x512_80k_ade20k.py"
    assert "samples_per_gpu=4" in log.config_text and "policy='poly'" in log.config_text


def test_zoo_format_fixture_train_lines(reference):
    log = logs.read_log(reference / ZOO)
    assert [p.iter for p in log.train] == [50, 100, 150, 200, 7950, 8000, 8050, 15950, 16000]
    first = log.train[0]
    assert first.lr == pytest.approx(0.00999) and first.lr_resolution == 0.5e-5
    assert first.loss == pytest.approx(2.4412)
    assert first.losses["decode.loss_ce"] == pytest.approx(1.75766) and first.time == pytest.approx(0.39214)


def test_zoo_format_fixture_val_lines_belong_to_the_train_iteration_before_them(reference):
    log = logs.read_log(reference / ZOO)
    assert [v.iter for v in log.val] == [8000, 16000]          # their own `iter` (500) is the val batch count
    first = log.val[0]
    assert first.metrics == pytest.approx({"aAcc": 79.32, "mIoU": 29.32, "mAcc": 38.12})
    assert len(first.per_class) == 150
    assert "bed " in first.per_class                            # the class name with its space, as mmseg has it
    raw = json.loads((reference / ZOO).read_text().splitlines()[7])
    assert first.per_class["wall"] == pytest.approx(raw["IoU.wall"] * 100)


def test_authors_b512_log_json_rounds_lr_and_the_text_log_gives_it_back(reference, tmp_path):
    alone = tmp_path / "alone.log.json"
    alone.write_bytes((reference / "eva02/train_eva02_B_sz512.log.json").read_bytes())
    rounded = logs.read_log(alone)
    assert [p.lr for p in rounded.train] == [0.0] * 5          # mmcv's 5 decimals
    pair = tmp_path / "20230318_173313.log.json"
    pair.write_bytes(alone.read_bytes())
    (tmp_path / "20230318_173313.log").write_bytes((reference / "eva02/train_eva02_B_sz512.log").read_bytes())
    merged = logs.read_log(pair)
    assert [p.lr for p in merged.train] == [2.368e-07, 4.780e-07, 7.188e-07, 9.592e-07, 1.199e-06]
    assert merged.train[0].lr_resolution == pytest.approx(0.5e-10)
    assert merged.train[-1].loss == pytest.approx(3.53758)      # the json's 5 decimals kept
    assert merged.gpus == (4, "NVIDIA A100-SXM4-40GB") and merged.seed == 0
    assert "samples_per_gpu=8" in merged.config_text


def test_text_log_alone(reference):
    log = logs.read_log(reference / "eva02/train_eva02_B_sz512.log")
    assert [p.iter for p in log.train] == [50, 100, 150, 200, 250]
    assert log.train[2].losses["aux.loss_ce"] == pytest.approx(1.6425)
    assert log.distributed is True and log.seed == 0
    assert log.config_text.startswith("norm_cfg = dict(type='SyncBN'") and "fp16 = None" in log.config_text


def test_torn_last_line_is_skipped_and_a_bad_middle_line_is_an_error(tmp_path, reference):
    lines = (reference / ZOO).read_text().splitlines()
    torn = tmp_path / "torn.log.json"
    torn.write_text("\n".join(lines[:4]) + "\n" + lines[4][:30])
    assert len(logs.read_log(torn).train) == 3
    bad = tmp_path / "bad.log.json"
    bad.write_text("\n".join([lines[0], "nonsense", *lines[1:]]))
    with pytest.raises(ReproError, match="line 2 is not JSON"):
        logs.read_log(bad)
    with pytest.raises(ReproError, match="neither an mmseg"):
        (tmp_path / "x.txt").write_text("hello\n")
        logs.read_log(tmp_path / "x.txt")


def test_text_resolution():
    assert logs._text_resolution("2.368e-07") == pytest.approx(0.5e-10)
    assert logs._text_resolution("0.5000") == pytest.approx(0.5e-4)
    assert math.isinf(logs.TrainPoint(1, None, math.inf, None).lr_resolution)
