"""`repro eval eva02_demo --engine fast` against `--engine stock` on the synthetic validation set, with a briefly
trained demo checkpoint: ss and ms give the same aAcc/mIoU/mAcc (to 0.01) and per-class IoU (to 0.05), the
record names the engine and precision, and two torchrun CPU processes give what one process gives."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

pytest.importorskip("mmseg.apis")

from harness.cli import cli  # noqa: E402

DEMO = "eva02_demo"
WORKERS = "--cfg-options=data.workers_per_gpu=1"


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    """Synthetic data (8 train / 4 val) and a 20-step demo checkpoint: enough for a model whose maps vary."""
    from harness.fetch.synthetic import generate
    from harness.run.api import train
    root = generate(tmp_path_factory.mktemp("data") / "ADEChallengeData2016", num_train=8, num_val=4, seed=0)
    rec = train(DEMO, max_iters=20, samples_per_gpu=4, checkpoint_interval=20, eval_interval=1000, data_root=root,
                work_dir=tmp_path_factory.mktemp("train") / "run", cfg_options=["data.workers_per_gpu=1"], echo=False)
    return root, Path(rec["_run_dir"]) / rec["artifacts"]["final_checkpoint"]


def _eval(demo_run, work: Path, *flags) -> dict:
    root, ckpt = demo_run
    result = CliRunner().invoke(cli, ["eval", DEMO, "--checkpoint", str(ckpt), "--data-root", str(root),
                                      "--work-dir", str(work), WORKERS, *flags], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return json.loads((work / "result.json").read_text())


def _assert_same_numbers(fast: dict, stock: dict) -> None:
    for key in ("aAcc", "mIoU", "mAcc"):
        assert fast["metrics"][key] == pytest.approx(stock["metrics"][key], abs=0.01), key
    assert fast["per_class"].keys() == stock["per_class"].keys()
    for name, values in stock["per_class"].items():
        if values["IoU"] is None:
            assert fast["per_class"][name]["IoU"] is None, name
        else:
            assert fast["per_class"][name]["IoU"] == pytest.approx(values["IoU"], abs=0.05), name


@pytest.mark.slow
@pytest.mark.parametrize("protocol", ["ss", "ms"])
def test_fast_and_stock_engines_agree(demo_run, tmp_path, protocol):
    stock = _eval(demo_run, tmp_path / "stock", "--protocol", protocol, "--engine", "stock")
    fast = _eval(demo_run, tmp_path / "fast", "--protocol", protocol, "--engine", "fast")
    assert (stock["eval_engine"], fast["eval_engine"]) == ("stock", "fast")
    assert stock["precision"] == fast["precision"] == "fp32"
    assert "--engine fast --precision fp32" in fast["launch"]["repro_command"]
    assert stock["metrics"]["mIoU"] > 0 and sum(v["IoU"] is not None for v in stock["per_class"].values()) >= 5
    _assert_same_numbers(fast, stock)


@pytest.mark.slow
def test_fast_engine_is_the_default_and_shards_like_stock_under_torchrun(demo_run, tmp_path):
    one = _eval(demo_run, tmp_path / "one")
    two = _eval(demo_run, tmp_path / "two", "--launcher", "torchrun", "--gpus", "2")
    assert one["eval_engine"] == two["eval_engine"] == "fast"
    assert two["launch"]["world_size"] == 2
    _assert_same_numbers(two, one)


def test_unknown_engine_or_precision_is_one_line_before_any_run_directory(tmp_path):
    from harness.errors import ReproError
    from harness.run.api import evaluate
    for kwargs, word in (({"engine": "turbo"}, "turbo"), ({"precision": "fp8"}, "fp8")):
        with pytest.raises(ReproError, match=word) as err:
            evaluate(DEMO, work_dir=tmp_path / "w", echo=False, **kwargs)
        assert "fix:" in err.value.one_line()
    assert not (tmp_path / "w").exists()
