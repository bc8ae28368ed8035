"""A zoo entry end to end: download from a loopback host -> eval on synthetic data (CPU) -> verify -> report;
and downloads refused by the sha256 prefix in the file's name."""
from __future__ import annotations

import hashlib
import json
import shlex

import pytest
from click.testing import CliRunner

from harness.cli import cli

from .conftest import B0, B0_ID, url_path

pytest.importorskip("mmseg")


def repro(*args):
    result = CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)
    result.argv = shlex.join(["repro", *map(str, args)])
    return result


def lock(home):
    return json.loads((home / "weights" / "lock.json").read_text())


def test_a_corrupted_download_is_refused_by_its_names_sha256_prefix(server, home):
    from harness.registry import get

    url = get(B0_ID).weights.url                 # the real metafile entry, served with the wrong bytes
    server.add(url_path(url), b"not the published checkpoint" * 1000)
    result = repro("download", B0_ID, "--endpoint", server.url)
    assert result.exit_code == 2, result.output
    line = result.output.strip().splitlines()[-1]
    assert "does not start with c00b9603" in line and "quarantine" in line
    quarantined = [p for p in (home / "weights" / "quarantine").glob(f"{B0}_*.pth.*") if p.suffix != ".reason"]
    assert len(quarantined) == 1 and not list((home / "weights" / "url").glob("*.pth"))
    assert url not in (lock(home) if (home / "weights" / "lock.json").exists() else {})
    result = repro("eval", B0_ID, "--dry-run")          # the entry still says what is missing, and why
    assert "a bad copy was quarantined" in result.output


def test_from_file_with_the_wrong_bytes_is_refused_and_left_in_place(home, tmp_path):
    from harness.registry import get

    local = tmp_path / get(B0_ID).weights.filename
    local.write_bytes(b"x" * 4096)
    result = repro("download", B0_ID, "--from-file", local)
    assert result.exit_code == 2 and "does not start with c00b9603" in result.output
    assert local.read_bytes() == b"x" * 4096


def test_dry_run_prints_the_resolved_config_of_each_protocol(home):
    ss = repro("eval", B0_ID, "--dry-run", "--device", "cpu")
    ms = repro("eval", B0_ID, "--dry-run", "--device", "cpu", "--protocol", "ms")
    # no weights and no data in this home: the plan is printed, then the refusal the real run would meet
    assert ss.exit_code == ms.exit_code == 2, ss.output + ms.output
    assert "the real run would be refused: weights of " + B0_ID in ss.output
    assert "# resolved config:" in ss.output and "type='MixVisionTransformer'" in ss.output
    assert "img_ratios=[0.5, 0.75, 1.0, 1.25, 1.5, 1.75]" in ms.output and "img_ratios" not in ss.output
    refused = repro("eval", B0_ID, "--protocol", "tta", "--dry-run")
    assert refused.exit_code == 2 and "use one of: ms, ss" in refused.output


def test_entries_that_cannot_run_say_why_before_anything_starts(home, tmp_path):
    from importlib.util import find_spec
    if find_spec("mmcls") is None:
        result = repro("eval", "mmseg/upernet_convnext_tiny_fp16_512x512_160k_ade20k", "--device", "cpu")
        assert result.exit_code == 2 and "needs the package of mmcls.models" in result.output
    result = repro("eval", "mmseg/upernet_beit-large_fp16_8x1_640x640_160k_ade20k", "--device", "cpu",
                   "--checkpoint", tmp_path / "none.pth")
    assert result.exit_code == 2 and "sets fp16" in result.output and "CUDA GPU" in result.output
    assert not (tmp_path / "runs").exists()


@pytest.mark.slow
def test_random_weights_go_download_eval_verify_report(server, home, monkeypatch, random_zoo, synthetic_val,
                                                       tmp_path):
    root, url, data = random_zoo
    monkeypatch.setenv("REPRO_MMSEG_ZOO", str(root))
    server.add(url_path(url), data)
    server.plan(url_path(url), ("cut", 2 * 65536))   # the first transfer breaks (at a whole 64 KiB chunk): resumed
    result = repro("download", B0_ID, "--endpoint", server.url)
    assert result.exit_code == 0, result.output
    assert any(r.range == f"bytes={2 * 65536}-" for r in server.gets(url_path(url)))
    assert lock(home)[url]["sha256"] == hashlib.sha256(data).hexdigest()

    result = repro("eval", B0_ID, "--data-root", synthetic_val, "--device", "cpu")
    assert result.exit_code == 0, result.output
    run = next((tmp_path / "runs" / "mmseg" / B0 / "ss").iterdir())
    record = json.loads((run / "result.json").read_text())
    assert record["reproduction"] == B0_ID and record["checkpoint"]["provenance"] == "released"
    assert 0 <= record["metrics"]["mIoU"] < 20                  # random weights

    result = repro("verify", run)
    assert result.exit_code == 1, result.output
    assert "37.85" in result.output and "configs/segformer/segformer.yml in mmsegmentation" in result.output
    assert "tier released" in result.output and "FAIL" in result.output

    # ms = mmseg's --aug-test: the config's test pipeline with ratios 0.5-1.75 and flip, judged on mIoU(ms+flip)
    result = repro("eval", B0_ID, "--protocol", "ms", "--data-root", synthetic_val, "--device", "cpu")
    assert result.exit_code == 0, result.output
    ms_run = next((tmp_path / "runs" / "mmseg" / B0 / "ms").iterdir())
    assert "img_ratios=[0.5, 0.75, 1.0, 1.25, 1.5, 1.75]" in (ms_run / "config.py").read_text()
    assert "flip=True" in (ms_run / "config.py").read_text()
    ms_record = json.loads((ms_run / "result.json").read_text())
    assert ms_record["protocol"] == "ms" and ms_record["metrics"]["mIoU"] != record["metrics"]["mIoU"]
    result = repro("verify", ms_run)
    assert result.exit_code == 1 and "38.97" in result.output and "FAIL" in result.output, result.output

    result = repro("report", run, "-o", tmp_path / "reports")
    assert result.exit_code == 0, result.output
    pages = [p for p in (tmp_path / "reports").glob("*.html") if p.name != "index.html"]
    page = pages[0].read_text() if len(pages) == 1 else ""
    assert "37.85" in page and page.count(">reported<") == 2          # aAcc and mAcc: shown, not judged
