"""`repro batch`: several reproductions/protocols run one after another through the real engine, or prepared as
one Slurm job array whose script is checked as text and then run task by task as Slurm runs it; `repro verify` and
`repro report --compare` of the batch show every run, those that never started or never finished included."""
from __future__ import annotations

import io
import json
import os
import stat
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

pytest.importorskip("mmseg.apis")

from demo_runs import train_demo_briefly  # noqa: E402

from harness.run.record import read_result  # noqa: E402
from harness.run.api import evaluate  # noqa: E402

DEMO = "eva02_demo"
B0_ID = "mmseg/segformer_mit-b0_512x512_160k_ade20k"
NO_WEIGHTS = "eva02_B_sz512"       # its released weights are not downloaded in a test's REPRO_HOME
FAST = ["--cfg-options", "data.workers_per_gpu=1", "--device", "cpu"]


@pytest.fixture(scope="module")
def demo_train(synthetic_root, tmp_path_factory) -> Path:
    return train_demo_briefly(synthetic_root, tmp_path_factory.mktemp("train") / "run")


@pytest.fixture(scope="module")
def b0_checkpoint(tmp_path_factory) -> Path:
    """The zoo entry's own model (its mmseg config) with torch's random initialisation, as a checkpoint file."""
    import torch
    from mmcv import Config
    from mmseg.models import build_segmentor

    from harness.engine import shims
    from harness.registry import get

    shims.apply_all()
    cfg = Config.fromfile(str(get(B0_ID).config_path("ss")))
    cfg.model.pretrained = None
    cfg.model.backbone.init_cfg = None          # no download of ImageNet weights: random is the point
    torch.manual_seed(0)
    buffer = io.BytesIO()
    torch.save({"state_dict": build_segmentor(cfg.model).state_dict(), "meta": {}}, buffer)
    path = tmp_path_factory.mktemp("zoo") / "b0_random.pth"
    path.write_bytes(buffer.getvalue())
    return path


@pytest.fixture(scope="module")
def local_batch(demo_train, b0_checkpoint, synthetic_root, tmp_path_factory):
    """eva02_demo ss + ms, a zoo entry, and a reproduction whose weights are missing, run here as one batch."""
    from click.testing import CliRunner

    from harness.cli import cli
    folder = tmp_path_factory.mktemp("batch") / "b"
    argv = ["batch", DEMO, f"{B0_ID}:ss", f"{NO_WEIGHTS}:ss", "--checkpoint", f"{DEMO}={demo_train}",
            "--checkpoint", f"{B0_ID}={b0_checkpoint}", "--data-root", str(synthetic_root), "--batch-dir", str(folder),
            *FAST]
    result = CliRunner().invoke(cli, argv, catch_exceptions=False)
    return folder, result


@pytest.mark.slow
def test_a_local_batch_runs_each_reproduction_and_protocol_and_lists_them(local_batch, demo_train, synthetic_root,
                                                                        tmp_path):
    folder, result = local_batch
    assert result.exit_code == 1, result.output                  # one run could not start
    batch = json.loads((folder / "batch.json").read_text())
    runs = [(r["reproduction"], r["protocol"], r["state"]) for r in batch["runs"]]
    assert runs == [(DEMO, "ss", "succeeded"), (DEMO, "ms", "succeeded"), (B0_ID, "ss", "succeeded"),
                    (NO_WEIGHTS, "ss", "not-started")]
    assert "weights" in batch["runs"][3]["failure"] and not (folder / batch["runs"][3]["run_dir"]).exists()
    records = [read_result(folder / r["run_dir"]) for r in batch["runs"][:3]]
    assert [(r["reproduction"], r["protocol"]) for r in records] == [(DEMO, "ss"), (DEMO, "ms"), (B0_ID, "ss")]
    assert "1 not-started" in result.output and "repro verify" in result.output

    # a run of the batch is the same run as one `repro eval`: same numbers, every class
    alone = evaluate(DEMO, "ss", checkpoint=demo_train, data_root=synthetic_root, work_dir=tmp_path / "alone",
                     cfg_options=["data.workers_per_gpu=1"], device="cpu", echo=False)
    assert records[0]["metrics"] == alone["metrics"] and records[0]["per_class"] == alone["per_class"]


@pytest.mark.slow
def test_verify_of_the_batch_is_one_verdict_over_every_run(local_batch, tmp_path):
    from click.testing import CliRunner

    from harness.cli import cli
    folder, _ = local_batch
    xml = tmp_path / "verify.xml"
    result = CliRunner().invoke(cli, ["verify", str(folder), "--junitxml", str(xml)], catch_exceptions=False)
    assert result.exit_code == 1, result.output
    assert f"FAIL {NO_WEIGHTS} ss (task 3): not started:" in result.output
    assert "37.85" in result.output                              # the zoo entry judged against its metafile
    last = result.output.strip().splitlines()[-1]
    assert last.startswith("batch: 4 runs —") and "1 without a verdict" in last and last.endswith("FAIL")
    cases = ET.parse(xml).getroot().iter("testcase")
    failed = {c.get("name") for c in cases if c.find("failure") is not None}
    assert f"{NO_WEIGHTS} ss task 3" in failed


@pytest.mark.slow
def test_report_compare_of_the_batch_shows_every_run(local_batch, tmp_path):
    from click.testing import CliRunner

    from harness.cli import cli
    folder, _ = local_batch
    out = tmp_path / "reports"
    result = CliRunner().invoke(cli, ["report", "--compare", str(folder), "-o", str(out)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    page = (out / "compare.html").read_text()
    assert "4 runs side by side" in page
    for title in (f"{DEMO} ss", f"{DEMO} ms", f"{B0_ID} ss", f"{NO_WEIGHTS} ss"):
        assert title in page, title
    assert "not started" in page and "weights" in page
    assert len([p for p in out.glob("*.html") if p.name not in ("index.html", "compare.html")]) == 4


# ------------------------------------------------------------------------------ the Slurm array, without Slurm


def _dry_run(*args):
    from click.testing import CliRunner

    from harness.cli import cli
    return CliRunner().invoke(cli, ["batch", *map(str, args), "--dry-run"], catch_exceptions=False)


def test_the_array_script_has_one_task_per_run_and_quoted_values(demo_train, synthetic_root, tmp_path):
    folder = tmp_path / "batch dir"
    result = _dry_run(DEMO, "--checkpoint", demo_train, "--launcher", "slurm", "--partition", "gpu a100",
                      "--sbatch-arg", "--comment='a b'", "--data-root", synthetic_root, "--batch-dir", folder)
    assert result.exit_code == 0, result.output
    script = result.output.split("# sbatch script (")[1].split("\n", 1)[1].split("# submitted with:")[0]
    lines = script.splitlines()
    assert "#SBATCH --array=0-1" in lines and "#SBATCH --partition='gpu a100'" in lines
    assert "#SBATCH '--comment=a b'" in lines
    assert f"#SBATCH --output='{folder}/slurm-%A_%a.out'" in lines
    assert f"runs=('{folder}/00-eva02_demo-ss' '{folder}/01-eva02_demo-ms')" in lines
    assert 'run_dir="${runs[$SLURM_ARRAY_TASK_ID]}"' in lines
    assert any(ln.endswith('--job "$run_dir"/job.json') and ln.startswith("srun ") for ln in lines)
    assert any('finalize --run-dir "$run_dir" --rc "$rc"' in ln for ln in lines)
    assert not folder.exists()                                   # a dry run writes nothing
    bad = _dry_run(DEMO, "--checkpoint", demo_train, "--launcher", "slurm", "--partition", "gpu\n#SBATCH --x",
                   "--data-root", synthetic_root)
    assert bad.exit_code == 2 and bad.output.count("\n") == 1 and "newline or control character" in bad.output


SBATCH = """#!/bin/bash
# sbatch as Slurm runs an array job: prints the job id, then runs the script once per array task with Slurm's
# variables (here one after another); a task listed in LOSE_TASK is lost before it starts (a failed node)
script="${@: -1}"
range=$(sed -n 's/^#SBATCH --array=\\([0-9]*\\)-\\([0-9]*\\).*/\\1 \\2/p' "$script")
echo 4242
for i in $(seq $range); do
  [ "$i" = "${LOSE_TASK:-}" ] && continue
  SLURM_ARRAY_JOB_ID=4242 SLURM_ARRAY_TASK_ID=$i SLURM_JOB_ID=$((5000 + i)) SLURM_JOB_NODELIST=localhost \\
    bash "$script" >/dev/null 2>&1
done
"""
SRUN = """#!/bin/bash
# srun of one task: drop srun's own options, run the command with the variables srun gives a task
while [[ "$1" == --* ]]; do shift; done
SLURM_PROCID=0 SLURM_NTASKS=1 SLURM_LOCALID=0 exec "$@"
"""
SCONTROL = """#!/bin/bash
# scontrol: the node list's host names; and the lost array task as Slurm reports it once it has ended
if [ "$2" = hostnames ]; then echo localhost; exit 0; fi
echo "JobId=5001 ArrayJobId=4242 ArrayTaskId=${LOSE_TASK} JobName=x JobState=NODE_FAIL Reason=None ExitCode=0:0 NodeList=localhost BatchHost=localhost"
"""


@pytest.fixture
def slurm_shims(tmp_path, monkeypatch) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, text in (("sbatch", SBATCH), ("srun", SRUN), ("scontrol", SCONTROL)):
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod((bin_dir / name).stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setenv("LOSE_TASK", "1")
    return bin_dir


@pytest.mark.slow
def test_array_tasks_run_their_own_run_and_finalize_and_a_lost_task_is_settled(slurm_shims, demo_train,
                                                                               synthetic_root, tmp_path):
    from click.testing import CliRunner

    from harness.cli import cli
    folder = tmp_path / "array"
    result = CliRunner().invoke(cli, ["batch", DEMO, "--checkpoint", str(demo_train), "--launcher", "slurm",
                                      "--data-root", str(synthetic_root), "--batch-dir", str(folder), *FAST],
                                catch_exceptions=False)
    assert result.exit_code == 0 and "submitted Slurm job array 4242 (2 tasks)" in result.output, result.output
    batch = json.loads((folder / "batch.json").read_text())
    assert batch["slurm_job"] == "4242" and [r["slurm_job"] for r in batch["runs"]] == ["4242_0", "4242_1"]
    ss, ms = (folder / r["run_dir"] for r in batch["runs"])
    job = json.loads((ss / "job.json").read_text())
    assert job["launch"]["array_task"] == 0 and job["launch"]["command"].endswith(f"{folder}/job.sbatch")
    record = read_result(ss)                                     # task 0 ran and its finalize step wrote this
    assert record["status"] == "succeeded" and record["launch"]["launcher"] == "slurm"
    assert (ss / "slurm-4242_0.out").exists() and not (ms / "result.json").exists()

    out = CliRunner().invoke(cli, ["verify", str(folder)], catch_exceptions=False)
    assert out.exit_code == 1, out.output
    lost = read_result(ms)                                       # settled from Slurm's state by verify
    assert lost["status"] == "failed" and "NODE_FAIL" in lost["failure"]
    assert f"FAIL {DEMO} ms (task 1): failed: Slurm job 4242_1 ended NODE_FAIL" in out.output
    assert sys.executable in (folder / "job.sbatch").read_text()
