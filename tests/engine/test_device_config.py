"""The target decides the device (`--device auto|cpu|cuda`), and the resolved config says what it implies: on CUDA
the torch-AMP fp16 optimizer hook and NCCL, elsewhere the fp32 hook and gloo, whatever machine prints it. A train
run's final evaluation drops the fp16 autocast that AMP training leaves on the model, as `repro eval` has it."""
from __future__ import annotations

import pytest
import torch
from conftest import CONFIGS, DEMO, build_model, load_config

from harness.engine.config import build_config, target_device
from harness.errors import ReproError

pytest.importorskip("mmseg.apis")

NO_CUDA = pytest.mark.skipif(torch.cuda.is_available(), reason="checks a machine without CUDA")


def test_auto_means_the_machines_that_run_the_job():
    assert target_device("auto", "slurm") == "cuda"            # the GPU nodes, even from a login node without one
    assert target_device("auto", "none", cuda_here=False) == "cpu"
    assert target_device("auto", "torchrun", cuda_here=True) == "cuda"
    assert target_device("auto", "none") == ("cuda" if torch.cuda.is_available() else "cpu")
    assert target_device("cpu", "slurm") == "cpu" and target_device("cuda", "none", cuda_here=False) == "cuda"
    with pytest.raises(ReproError, match="unknown device 'gpu'"):
        target_device("gpu", "none")


def _train_job(device: str | None, accumulate: int = 1, launcher: str = "none") -> dict:
    return {"kind": "train", "config": str(CONFIGS["eva02_L_sz512"]), "data_root": "/nonexistent/ade", "device": device,
            "samples_per_gpu": 2, "max_iters": 80000, "accumulate": accumulate, "launch": {"launcher": launcher}}


def test_cuda_config_has_the_amp_hook_and_nccl():
    cfg = build_config(_train_job("cuda"))
    assert cfg.optimizer_config == {"type": "Fp16OptimizerHook", "loss_scale": "dynamic", "grad_clip": None,
                                    "distributed": False}
    assert cfg.dist_params.backend == "nccl"
    acc = build_config(_train_job("cuda", accumulate=2))
    assert acc.optimizer_config.type == "GradientCumulativeFp16OptimizerHook" and acc.dist_params.backend == "nccl"
    assert acc.optimizer_config.cumulative_iters == 2 and acc.optimizer_config.loss_scale == "dynamic"


def test_cpu_config_has_the_fp32_hook_and_gloo():
    cfg = build_config(_train_job("cpu"))
    assert cfg.optimizer_config.type == "AmpOptimizerHook" and cfg.dist_params.backend == "gloo"
    acc = build_config(_train_job("cpu", accumulate=2))
    assert acc.optimizer_config.type == "GradientCumulativeOptimizerHook"


def test_job_without_a_device_follows_its_launcher():
    """job.json written before --device existed: the launcher decides, as `auto` would."""
    cfg = build_config(_train_job(None, launcher="slurm"))
    assert cfg.optimizer_config.type == "Fp16OptimizerHook" and cfg.dist_params.backend == "nccl"


def test_dry_run_on_a_login_node_prints_the_gpu_nodes_config(tmp_path):
    from click.testing import CliRunner

    from harness.cli import cli
    runner = CliRunner()
    for flags in (["--device", "cuda"], []):   # explicit, and auto (Slurm: the GPU nodes)
        result = runner.invoke(cli, ["train", "eva02_L_sz512", "--launcher", "slurm", *flags, "--work-dir",
                                     str(tmp_path / "w"), "--dry-run"], catch_exceptions=False)
        assert result.exit_code == 0, result.output
        text = result.stdout
        assert "type='Fp16OptimizerHook'" in text and "loss_scale='dynamic'" in text
        assert "dist_params = dict(backend='nccl')" in text
        assert "--device cuda" in text                                    # the rerun line names the device
        notes = [ln for ln in text.splitlines() if ln.startswith("# note: ")]
        assert any("differs from the published 16" in n for n in notes)  # 1 GPU x 2: a note in a dry run
    cpu = runner.invoke(cli, ["train", "eva02_L_sz512", "--launcher", "slurm", "--gpus", "8", "--device", "cpu",
                              "--work-dir", str(tmp_path / "w"), "--dry-run"], catch_exceptions=False)
    assert cpu.exit_code == 0, cpu.output
    assert "dist_params = dict(backend='gloo')" in cpu.stdout and "Fp16OptimizerHook" not in cpu.stdout
    assert not (tmp_path / "w").exists()


def test_batch_mismatch_is_still_an_error_outside_a_dry_run(tmp_path):
    from harness.run.api import train
    with pytest.raises(ReproError, match="differs from the published 16"):
        train("eva02_L_sz512", launch=None, work_dir=tmp_path / "w", device="cpu", echo=False)
    assert not (tmp_path / "w").exists()


@NO_CUDA
def test_cuda_asked_for_here_without_a_gpu_is_one_line(tmp_path):
    from click.testing import CliRunner

    from harness.cli import cli
    from harness.fetch.synthetic import generate
    root = generate(tmp_path / "ADEChallengeData2016", num_train=2, num_val=2, seed=0)
    ckpt = tmp_path / "demo.pth"
    torch.save({"state_dict": {}, "meta": {}}, ckpt)
    result = CliRunner().invoke(cli, ["eval", "eva02_demo", "--checkpoint", str(ckpt), "--data-root", str(root),
                                      "--device", "cuda", "--work-dir", str(tmp_path / "w")])
    assert result.exit_code == 2, result.output
    err = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert len(err) == 1 and "--device cuda" in err[0] and "--device cpu" in err[0]
    assert not (tmp_path / "w").exists()


@NO_CUDA
def test_engine_refuses_cuda_job_on_a_process_without_gpu():
    from harness.engine.distributed import init_distributed
    with pytest.raises(RuntimeError, match="--device cuda but this process sees no CUDA device"):
        init_distributed("none", "cuda")
    assert init_distributed("none", "cpu")["device"] == "cpu"


def test_final_evaluation_drops_the_fp16_autocast_of_amp_training():
    from mmcv import Config
    from mmcv.runner import wrap_fp16_model

    from harness.engine.train import match_eval_fp16
    cfg = load_config(DEMO)
    model = build_model(cfg)
    wrap_fp16_model(model)                                          # what Fp16OptimizerHook.before_run does
    flagged = [m for m in model.modules() if hasattr(m, "fp16_enabled")]
    assert flagged and all(m.fp16_enabled for m in flagged)
    assert match_eval_fp16(model, cfg) is False
    assert not any(m.fp16_enabled for m in flagged)
    assert match_eval_fp16(model, Config(dict(cfg._cfg_dict.to_dict(), fp16=dict(loss_scale=512.0)))) is True
    assert all(m.fp16_enabled for m in flagged)
