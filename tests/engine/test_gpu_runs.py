"""The real train and eval pipelines on CUDA (marked `gpu`; skipped where torch sees no CUDA device):

- 30 AMP training iterations (15 optimizer steps, accumulation 2) of the demo: finite loss, mmcv's fp16
  accumulation hook in the dumped config, and the same learning rate at every logged iteration as the CPU run;
- the final evaluation of that AMP run is in fp32, like `repro eval` of its checkpoint, and gives its numbers;
- an NCCL evaluation under torchrun on every visible GPU equals the one-process result.
"""
from __future__ import annotations

import inspect
import json
import math
from pathlib import Path

import pytest
import torch

pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device (torch sees none)")]

DEMO = "eva02_demo"
FAST = ["data.workers_per_gpu=2"]
STEPS, ACCUMULATE = 15, 2


@pytest.fixture(scope="module")
def data_root(tmp_path_factory) -> Path:
    from harness.fetch.synthetic import generate
    return generate(tmp_path_factory.mktemp("data") / "ADEChallengeData2016", num_train=16, num_val=8, seed=0)


def _train(device: str, data_root: Path, work: Path) -> dict:
    from harness.run.api import train
    return train(DEMO, max_iters=STEPS, samples_per_gpu=2, accumulate=ACCUMULATE, checkpoint_interval=STEPS,
                 eval_interval=1000, data_root=data_root, work_dir=work, cfg_options=FAST, echo=False, device=device)


@pytest.fixture(scope="module")
def amp_run(data_root, tmp_path_factory) -> dict:
    return _train("cuda", data_root, tmp_path_factory.mktemp("amp") / "run")


def _train_lines(record: dict) -> list[dict]:
    log = Path(record["_run_dir"]) / "train.log.json"
    return [ln for ln in map(json.loads, log.read_text().splitlines()) if ln.get("mode") == "train"]


def test_amp_training_with_accumulation(amp_run, data_root, tmp_path):
    assert amp_run["status"] == "succeeded", amp_run.get("failure")
    assert amp_run["device"] == "cuda" and amp_run["training"]["amp"] is True
    assert amp_run["training"]["iterations"] == STEPS * ACCUMULATE
    assert amp_run["training"]["optimizer_steps"] == STEPS
    config = (Path(amp_run["_run_dir"]) / "config.py").read_text()
    assert "GradientCumulativeFp16OptimizerHook" in config and "loss_scale='dynamic'" in config
    assert "backend='nccl'" in config
    lines = _train_lines(amp_run)
    assert lines and all(math.isfinite(ln["loss"]) for ln in lines)
    cpu = _train("cpu", data_root, tmp_path / "cpu")
    assert cpu["status"] == "succeeded" and cpu["training"]["amp"] is False
    cpu_lr = {ln["iter"]: ln["lr"] for ln in _train_lines(cpu)}
    gpu_lr = {ln["iter"]: ln["lr"] for ln in lines}
    assert gpu_lr.keys() == cpu_lr.keys()
    assert all(gpu_lr[i] == pytest.approx(cpu_lr[i], rel=1e-9) for i in gpu_lr)


def _engine(name: str) -> dict:
    """evaluate()'s engine argument where the fast loop (issue #12) exists; the stock loop is the only one before."""
    from harness.run.api import evaluate
    if "engine" in inspect.signature(evaluate).parameters:
        return {"engine": name}
    if name != "stock":
        pytest.skip("this harness has no fast evaluation loop")
    return {}


def _eval(amp_run: dict, data_root: Path, work: Path, engine: str, gpus: int = 0) -> dict:
    from harness.run.options import LaunchOptions
    from harness.run.api import evaluate
    ckpt = Path(amp_run["_run_dir"]) / amp_run["artifacts"]["final_checkpoint"]
    launch = LaunchOptions("torchrun", gpus=gpus) if gpus else None
    return evaluate(DEMO, checkpoint=ckpt, data_root=data_root, work_dir=work, cfg_options=FAST, echo=False,
                    device="cuda", launch=launch, **_engine(engine))


@pytest.fixture(scope="module")
def one_process(amp_run, data_root, tmp_path_factory) -> dict:
    """`repro eval` of the AMP run's final checkpoint on one GPU with mmseg's loop (the train run's final one)."""
    return _eval(amp_run, data_root, tmp_path_factory.mktemp("eval") / "one", "stock")


def test_final_evaluation_is_fp32_like_repro_eval(amp_run, one_process):
    assert amp_run["precision"] == "fp32"
    assert one_process["status"] == "succeeded", one_process.get("failure")
    assert one_process["device"] == "cuda" and one_process.get("precision", "fp32") == "fp32"
    assert one_process["metrics"] == pytest.approx(amp_run["metrics"], abs=1e-9)


@pytest.mark.parametrize("engine", ["stock", "fast"])
def test_nccl_eval_on_every_gpu_equals_one_process(engine, amp_run, one_process, data_root, tmp_path):
    gpus = torch.cuda.device_count()
    one = one_process if engine == "stock" else _eval(amp_run, data_root, tmp_path / "one", engine)
    many = _eval(amp_run, data_root, tmp_path / "many", engine, gpus=gpus)
    assert one["status"] == many["status"] == "succeeded", many.get("failure")
    assert many["launch"]["world_size"] == gpus and "torch.distributed.run" in many["launch"]["command"]
    assert one["metrics"] == many["metrics"] and one["per_class"] == many["per_class"]
    log = (tmp_path / "many" / "eval.log").read_text()
    assert "backend nccl" in log and "device cuda" in log
