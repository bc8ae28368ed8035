"""Records written by the real pipelines (demo model, synthetic data): provenance, overrides and the eval JSON's
hash are fields, the record passes its own consistency check, and an edit by hand is refused."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

pytest.importorskip("mmseg.apis")

from harness.fetch.synthetic import generate
from harness.run.record import read_result, write_result
from harness.run.api import evaluate, train
from harness.verify.compare import load_run

DEMO = "eva02_demo"
WORKERS = ["data.workers_per_gpu=1"]      # a neutral override: loader workers only


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = generate(tmp_path_factory.mktemp("data") / "ADEChallengeData2016", num_train=16, num_val=8, seed=0)
    work = tmp_path_factory.mktemp("train") / "run"
    record = train(DEMO, max_iters=2, samples_per_gpu=2, accumulate=2, checkpoint_interval=2, eval_interval=2,
                   data_root=root, work_dir=work, cfg_options=WORKERS, echo=False)
    return record, root


def test_a_training_record_names_its_overrides_and_checkpoint(trained):
    record, _ = trained
    run_dir = Path(record["_run_dir"])
    rec = read_result(run_dir)
    assert rec["checkpoint"]["provenance"] == "train-run" and rec["checkpoint"]["train_run"] == str(run_dir)
    assert rec["overrides"]["max_iters"] == 2 and rec["overrides"]["accumulate"] == 2
    assert rec["overrides"]["cfg_options"] == {"data.workers_per_gpu": 1}
    assert rec["eval_json"]["path"] == rec["artifacts"]["eval_json"]
    load_run(run_dir)          # consistent: mmseg's eval JSON, the per-class values and the summary agree


def test_an_eval_of_a_training_checkpoint_is_retrain_material_and_consistent(trained, tmp_path, repro):
    record, root = trained
    rec = evaluate(DEMO, checkpoint=record["_run_dir"], data_root=root, work_dir=tmp_path / "eval",
                   cfg_options=WORKERS + ["model.test_cfg.stride=(32,32)"], echo=False)
    run_dir = Path(rec["_run_dir"])
    saved = read_result(run_dir)
    assert saved["checkpoint"]["provenance"] == "train-run"
    assert saved["checkpoint"]["train_run"] == record["_run_dir"]
    assert saved["overrides"]["cfg_options"] == {"data.workers_per_gpu": 1, "model.test_cfg.stride": [32, 32]}
    import hashlib
    assert saved["eval_json"]["sha256"] == hashlib.sha256((run_dir / saved["eval_json"]["path"]).read_bytes()).hexdigest()

    result = repro("verify", run_dir)                  # the demo is a harness baseline: judged, never refused
    assert result.exit_code in (0, 1), result.output
    assert "overrides: cfg_options data.workers_per_gpu=1, cfg_options model.test_cfg.stride=[32, 32]" in result.output

    saved.pop("_path")
    saved["metrics"]["mIoU"] += 1.0                     # edited by hand afterwards
    write_result(run_dir, saved)
    refused = repro("verify", run_dir)
    assert refused.exit_code == 2
    assert "is not the mean of its" in refused.stderr or "disagrees with" in refused.stderr
    assert json.loads((run_dir / "result.json").read_text())["metrics"]["mIoU"] == saved["metrics"]["mIoU"]
