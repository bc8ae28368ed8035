"""The demo chain end to end, on a smaller setting than `repro demo` (same code, fewer images and iterations)."""
import json
import shutil

import pandas as pd
import pytest
from click.testing import CliRunner

from harness.cli import cli
from harness.demo import DemoSettings, run_demo
from harness.paths import REPO_ROOT

pytestmark = pytest.mark.slow
SMALL = dict(train_images=24, val_images=6, max_iters=20)


@pytest.fixture
def expected_without_demo_baseline(tmp_path):
    """A copy of expected/ whose demo rows have no values yet: the small setting is not the real demo's."""
    root = tmp_path / "expected"
    shutil.copytree(REPO_ROOT / "expected", root)
    summary = pd.read_csv(root / "summary.csv", keep_default_na=False)
    summary.loc[summary["reproduction"] == "eva02_demo", "value"] = ""
    summary.to_csv(root / "summary.csv", index=False)
    return root


def test_demo_chain_small(tmp_path, expected_without_demo_baseline, capfd, monkeypatch):
    monkeypatch.delenv("REPRO_VERBOSE", raising=False)
    lines = []
    settings = DemoSettings(work_dir=tmp_path / "demo", expected_root=expected_without_demo_baseline,
                            echo=lines.append, **SMALL)
    first = run_demo(settings)

    # every step left its files: records that succeeded, a checkpoint, eval JSONs, a JUnit file, the reports
    for kind in ("train", "ss", "ms"):
        record = json.loads((first.runs[kind] / "result.json").read_text())
        assert record["status"] == "succeeded", (kind, record.get("failure"))
        assert record["reproduction"] == "eva02_demo"
        assert set(record["metrics"]) >= {"aAcc", "mIoU", "mAcc"}
        assert len(record["per_class"]) == 150
    ms = json.loads((first.runs["ms"] / "result.json").read_text())
    assert ms["launch"]["launcher"] == "torchrun" and ms["launch"]["world_size"] == 2
    assert list(first.runs["train"].glob("*.pth"))
    assert (tmp_path / "demo" / "verify.xml").is_file()
    html = first.report.read_text()
    assert first.report.name == "index.html" and "eva02_demo" in html

    # without a baseline the verdict is FAIL, naming the missing expected value
    assert first.passed is False and first.verify_exit == 1
    assert any("demo verdict: FAIL" in line for line in lines)

    # record the baseline the way a maintainer would, then the same runs PASS
    runner = CliRunner()
    regen = runner.invoke(cli, ["verify", str(first.runs["ss"]), str(first.runs["ms"]),
                                "--expected", str(expected_without_demo_baseline), "--regen"])
    assert regen.exit_code == 1 and "written as the new baseline" in regen.output

    # a second demo in the same work dir (stale runs, existing data) reproduces the metrics and so the verdict
    lines.clear()
    capfd.readouterr()
    second = run_demo(settings)
    assert second.passed is True, "\n".join(lines)

    # a readable console: the steps, a few bar lines per phase, the verdict (issue #15: at most ~60 lines);
    # the engine's whole output is in each run's console.log, beside mmseg's own logs
    printed = capfd.readouterr()
    shown = lines + printed.out.splitlines() + printed.err.splitlines()
    assert len(shown) <= 60, "\n".join(shown)
    assert "\r" not in printed.out and not any("mmseg - INFO" in line for line in shown)
    for kind, logs in (("train", ("train.log", "train.log.json")), ("ss", ("eval.log", "eval.log.json"))):
        console_log = (second.runs[kind] / "console.log").read_text()
        assert "mmseg - INFO" in console_log and "[eval] " in console_log
        assert all((second.runs[kind] / name).stat().st_size > 0 for name in logs)
        assert any(line.strip().startswith(f"logs: {second.runs[kind]}/{{console.log") for line in lines)
    assert any("demo verdict: PASS" in line for line in lines)
    for protocol in ("ss", "ms"):
        assert second.metrics[protocol] == pytest.approx(first.metrics[protocol], abs=1e-6)
    assert second.runs["ss"] != first.runs["ss"]          # fresh run folders, nothing overwritten


def test_demo_rebuilds_damaged_data(tmp_path):
    from harness.demo import prepare_data

    settings = DemoSettings(work_dir=tmp_path, echo=lambda _: None, **SMALL)
    root = prepare_data(settings)
    victim = root / "annotations" / "training" / "ADE_train_00000003.png"
    victim.unlink()
    assert prepare_data(settings) == root and victim.is_file()
    shutil.rmtree(root)
    assert prepare_data(settings) == root and victim.is_file()
