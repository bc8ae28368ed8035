"""The real pipelines on the demo reproduction and a synthetic dataset: train, resume after SIGKILL, evaluate on one
process and on two torchrun CPU processes (gloo), dry runs, and failures that leave a failed record."""
from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.registry import datasets

pytest.importorskip("mmseg.apis")

from harness.run.api import evaluate, train
from harness.run.options import LaunchOptions
from harness.run.record import read_result

DEMO = "eva02_demo"
FAST = ["data.workers_per_gpu=1"]
REPRO = str(Path(sys.executable).parent / "repro")


@pytest.fixture(scope="module")
def trained(synthetic_root, tmp_path_factory):
    """A 4-step demo training run, 2 images x accumulate 2 = the published batch of 4 (so 8 runner iterations),
    checkpoints every 2 steps, evaluation every 4: its result record."""
    work = tmp_path_factory.mktemp("train") / "run"
    return train(DEMO, max_iters=4, samples_per_gpu=2, accumulate=2, checkpoint_interval=2, eval_interval=4,
                 data_root=synthetic_root, work_dir=work, cfg_options=FAST, echo=False)


def _files(run_dir: Path, record: dict) -> dict:
    arts = record["artifacts"]
    return {k: run_dir / v for k, v in arts.items() if isinstance(v, str)}


@pytest.mark.slow
def test_train_writes_checkpoints_logs_and_a_record(trained):
    run_dir = Path(trained["_run_dir"])
    assert trained["status"] == "succeeded"
    rec = read_result(run_dir)
    assert rec["status"] == "succeeded" and rec["kind"] == "train" and rec["protocol"] == "ss"
    assert rec["artifacts"]["checkpoints"] == ["iter_4.pth", "iter_8.pth"]   # runner iterations = micro-batches
    assert rec["artifacts"]["best_checkpoint"] == "best_mIoU_iter_8.pth"
    for path in _files(run_dir, rec).values():
        assert path.exists(), path
    assert 0 <= rec["metrics"]["mIoU"] <= 100 and len(rec["per_class"]) == 150
    assert rec["seed"] == 0 and rec["launch"]["world_size"] == 1 and rec["launch"]["total_batch"] == 4
    assert rec["launch"]["samples_per_gpu"] == 2 and rec["launch"]["accumulate"] == 2
    assert rec["training"]["iterations"] == 8 and rec["training"]["optimizer_steps"] == 4
    assert rec["training"]["sync_bn_to_bn"] is True
    config = (run_dir / "config.py").read_text()
    assert "GradientCumulativeOptimizerHook" in config and "cumulative_iters=2" in config
    assert rec["environment"]["mmcv"] == "1.7.2" and rec["environment"]["packages"]
    assert rec["checkpoint"]["sha256"] and rec["checkpoint"]["path"].endswith("iter_8.pth")
    lines = [json.loads(ln) for ln in (run_dir / "train.log.json").read_text().splitlines()]
    train_lines = [ln for ln in lines if ln.get("mode") == "train"]
    assert train_lines and all("loss" in ln and "lr" in ln for ln in train_lines)
    assert [ln for ln in lines if ln.get("mode") == "val" and "mIoU" in ln]
    eval_json = json.loads((run_dir / rec["artifacts"]["eval_json"]).read_text())
    assert set(eval_json) == {"config", "metric"} and "IoU.bed " in eval_json["metric"]
    # the eval JSON is mmseg's (rounded fractions); result.json holds the same numbers in percent, unrounded
    assert eval_json["metric"]["mIoU"] == pytest.approx(round(rec["metrics"]["mIoU"], 2) / 100, abs=1e-9)


@pytest.mark.slow
def test_eval_one_process_and_torchrun_two_cpu_processes_agree(trained, synthetic_root, tmp_path):
    ckpt = Path(trained["_run_dir"]) / trained["artifacts"]["final_checkpoint"]
    one = evaluate(DEMO, checkpoint=ckpt, data_root=synthetic_root, work_dir=tmp_path / "one", cfg_options=FAST,
                   echo=False)
    two = evaluate(DEMO, checkpoint=ckpt, data_root=synthetic_root, work_dir=tmp_path / "two", cfg_options=FAST,
                   launch=LaunchOptions("torchrun", gpus=2), echo=False)
    assert one["status"] == two["status"] == "succeeded"
    assert two["launch"]["world_size"] == 2 and "torch.distributed.run" in two["launch"]["command"]
    assert one["metrics"] == two["metrics"] and one["per_class"] == two["per_class"]
    # the same weights evaluated at the end of training give the same numbers too
    assert one["metrics"] == trained["metrics"]
    assert one["checkpoint"]["sha256"] == trained["checkpoint"]["sha256"]
    assert one["dataset"]["num_images"] == 8 and one["dataset"]["manifest_sha256"]
    assert one["timing"]["images_per_s"] > 0
    log = (tmp_path / "two" / "eval.log").read_text()
    assert "backend gloo" in log and "ddp_forward_module" in log


def _engine_processes(work: Path) -> list[int]:
    """Live processes whose command line names this run's job file."""
    pids = []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and str(work / "job.json").encode() in (proc / "cmdline").read_bytes():
                pids.append(int(proc.name))
        except OSError:
            continue
    return pids


@pytest.mark.slow
def test_train_resumes_after_sigkill(synthetic_root, tmp_path):
    work = tmp_path / "run"
    # two CPU processes (torchrun, gloo) x 2 images: distributed training, killed, resumed
    launch = ["--launcher", "torchrun", "--gpus", "2", "--samples-per-gpu", "2"]
    argv = [REPRO, "train", DEMO, "--max-iters", "8", "--checkpoint-interval", "2", "--eval-interval", "1000",
            *launch, "--data-root", str(synthetic_root), "--work-dir", str(work), "--cfg-options", FAST[0]]
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 240
    while not (work / "iter_4.pth").exists():
        assert proc.poll() is None, "training ended before it could be killed"
        assert time.monotonic() < deadline, "no checkpoint after 240 s"
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)        # repro itself, no chance to clean up; its workers get SIGTERM
    proc.wait()
    deadline = time.monotonic() + 30
    while _engine_processes(work) and time.monotonic() < deadline:
        time.sleep(0.5)
    assert not _engine_processes(work), "engine processes outlived the killed repro"
    assert not (work / "result.json").exists()   # nothing there looks successful
    done = sorted(int(p.stem.split("_")[1]) for p in work.glob("iter_*.pth"))
    assert done and max(done) < 8

    rec = train(DEMO, max_iters=8, checkpoint_interval=2, eval_interval=1000, resume=True, data_root=synthetic_root,
                samples_per_gpu=2, launch=LaunchOptions("torchrun", gpus=2), work_dir=work, cfg_options=FAST,
                echo=False)
    assert rec["status"] == "succeeded" and rec["training"]["resumed"] is True
    assert rec["launch"]["world_size"] == 2 and rec["batch"]["total_batch"] == 4
    resumed_from = rec["training"]["resumed_from"]
    assert resumed_from in {f"iter_{n}.pth" for n in done}
    assert rec["training"]["iterations"] == 8
    log = (work / "train.log").read_text()
    assert f"resumed from {work / resumed_from}" in log
    # the resumed run appends to train.log.json: a second meta line, then iterations after the checkpoint
    lines = [json.loads(ln) for ln in (work / "train.log.json").read_text().splitlines()]
    metas = [i for i, ln in enumerate(lines) if "exp_name" in ln]
    assert len(metas) == 2
    after = [ln["iter"] for ln in lines[metas[1]:] if ln.get("mode") == "train"]
    assert after[0] == int(resumed_from[5:-4]) + 1 and after[-1] == 8


def test_dry_run_torchrun_two_nodes(repro, tmp_path):
    work = tmp_path / "w"
    result = repro("eval", "eva02_L_sz512", "--launcher", "torchrun", "--gpus", "8", "--nnodes", "2",
                   "--node-rank", "1", "--master-addr", "10.0.0.1", "--work-dir", work, "--dry-run")
    assert result.exit_code == 2, result.output          # no weights, no data here: the plan, then the refusal
    lines = result.stdout.splitlines()
    py = shlex.quote(sys.executable)
    assert (f"{py} -m torch.distributed.run --nnodes 2 --node-rank 1 --master-addr 10.0.0.1 --master-port 29500 "
            f"--nproc-per-node 8 -m harness.engine.entry --job {work / 'job.node1.json'}") in lines   # node 1's own file
    assert "# resolved config:" in lines
    assert any("crop_size=(512, 512)" in ln for ln in lines)           # the config is printed
    notes = [ln for ln in lines if ln.startswith("# note: ")]
    assert any("repro download eva02_L_sz512" in n for n in notes)      # missing weights: a note, and exit 2
    assert result.stderr.startswith("error: dry run: the real run would be refused: weights of eva02_L_sz512")
    assert any("repro prepare ade20k" in n for n in notes)
    assert not work.exists()                                             # nothing written, nothing started


def test_dry_run_slurm(repro, tmp_path):
    work = tmp_path / "w"
    result = repro("eval", "eva02_L_sz512", "--launcher", "slurm", "--gpus", "8", "--nnodes", "2", "--partition",
                   "gpu", "--time", "04:00:00", "--work-dir", work, "--dry-run")
    assert result.exit_code == 2, result.output          # no weights, no data here: the plan, then the refusal
    lines = result.stdout.splitlines()
    py = shlex.quote(sys.executable)
    assert f"sbatch --parsable {work / 'job.sbatch'}" in lines
    i = lines.index("#!/bin/bash")
    assert lines[i:i + 9] == [
        "#!/bin/bash", "#SBATCH --job-name=repro-eva02_L_sz512-eval", "#SBATCH --nodes=2",
        "#SBATCH --ntasks-per-node=8", "#SBATCH --gpus-per-node=8", "#SBATCH --cpus-per-task=5",
        f"#SBATCH --output={work / 'slurm-%j.out'}", "#SBATCH --partition=gpu", "#SBATCH --time=04:00:00"]
    assert lines[i + 9:i + 12] == ["#SBATCH --signal=B:TERM@60", "#SBATCH --requeue", "#SBATCH --open-mode=append"]
    # an evaluation's step runs in the background, so the shell can pass on the time limit's signal and requeue
    assert f"srun --kill-on-bad-exit=1 {py} -u -m harness.engine.entry --job {work / 'job.json'} &" in lines
    assert f'{py} -m harness.run.finalize --run-dir {work} --rc "$rc"' in lines
    assert not work.exists()


@pytest.mark.slow
def test_a_checkpoint_of_another_model_is_a_failed_record(repro, synthetic_root, tmp_path):
    import torch
    ckpt = tmp_path / "other.pth"
    torch.save({"state_dict": {"backbone.foo": torch.zeros(3)}, "meta": {}}, ckpt)
    work = tmp_path / "run"
    result = repro("eval", DEMO, "--checkpoint", ckpt, "--data-root", synthetic_root, "--work-dir", work,
                   "--cfg-options", FAST[0])
    assert result.exit_code == 1
    err = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert len(err) == 1 and err[0].startswith("error: eval of eva02_demo failed:") and "does not match" in err[0]
    rec = read_result(work)
    assert rec["status"] == "failed" and "does not match the model" in rec["failure"]
    assert rec["checkpoint"]["path"] == str(ckpt)


@pytest.mark.parametrize("rc, reason", [(0, "processes exited 0 but expected outputs are missing: eval_json, config, log, metrics"),
                                        (137, "processes exited with code 137: RuntimeError: boom")])
def test_finalize_as_the_sbatch_script_calls_it(tmp_path, rc, reason):
    """Exit code 0 is not enough: a run whose outputs are missing is failed; a non-zero exit names the error."""
    work = tmp_path / "run"
    work.mkdir()
    (work / "job.json").write_text(json.dumps({"kind": "eval", "reproduction": DEMO, "protocol": "ss",
                                               "launch": {"launcher": "slurm", "world_size": 16}}))
    (work / "console.log").write_text("Traceback (most recent call last):\nRuntimeError: boom\n")
    out = subprocess.run([sys.executable, "-m", "harness.run.finalize", "--run-dir", str(work), "--rc", str(rc)],
                         check=False, capture_output=True, text=True)
    assert out.returncode == 1 and out.stdout.startswith("failed: ")
    rec = read_result(work)
    assert rec["status"] == "failed" and rec["failure"] == reason and rec["launch"]["world_size"] == 16
    assert rec["environment"]["python"] == sys.version.split()[0]


def test_dry_run_train_with_accumulation(repro, tmp_path):
    """4 GPUs x 2 images x accumulate 2 = the published 16; runner iterations count micro-batches."""
    result = repro("train", "eva02_L_sz512", "--launcher", "torchrun", "--gpus", "4", "--accumulate", "2",
                   "--work-dir", tmp_path / "w", "--dry-run")
    assert result.exit_code == 2, result.output          # no pretrained weights, no data here
    text = result.stdout
    assert "runner = dict(type='IterBasedRunner', max_iters=160000)" in text
    assert "cumulative_iters=2" in text and "warmup_iters=3000" in text
    assert "checkpoint_config = dict(" in text and "interval=2000" in text
    assert any("repro download eva02_L_sz512" in ln for ln in text.splitlines() if ln.startswith("# note:"))
    assert not (tmp_path / "w").exists()
    # the record's rerun line: the published recipe's defaults spelled out, the launch flags kept
    data_root = str(datasets.data_root("ade20k"))
    assert (f"# as a repro command, defaults resolved: repro train eva02_L_sz512 --seed 0 --max-iters 80000 "
            f"--samples-per-gpu 2 --accumulate 2 --data-root {data_root} --launcher torchrun --gpus 4") in text
