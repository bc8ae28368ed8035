"""Reference sources: a file (with its text twin), a run folder of the same reproduction only, the built-in
authors' log of eva02_B_sz512 (not read from tests/), each recorded with its sha256 and checked when read again."""
import json
import shutil

import pytest

from harness import registry
from harness.curves import references
from harness.errors import ReproError

AUTHORS_SHA = "1090c0071937ff1e543edfc4d88947fd4e79f78c50ba54a1df30657f470c653d"


def test_builtin_reference_of_b512_is_the_authors_log_beside_the_reproduction():
    refs = references.gather([], registry.get("eva02_B_sz512"))
    assert len(refs) == 1 and refs[0].origin == "built-in"
    assert "reproductions/eva02_B_sz512/reference_logs" in str(refs[0].path) and "tests" not in refs[0].path.parts
    record = refs[0].record()
    assert record["sha256"] == AUTHORS_SHA and len(record["files"]) == 2      # the .log.json and its .log twin
    assert (record["gpus"], record["gpu_type"], record["seed"]) == (4, "NVIDIA A100-SXM4-40GB", 0)
    assert references.gather([], registry.get("eva02_L_sz512")) == []
    assert references.gather(["none"], registry.get("eva02_B_sz512")) == []


def test_a_run_folder_of_another_reproduction_is_refused(tmp_path, reference):
    run = tmp_path / "run"
    run.mkdir()
    (run / "job.json").write_text(json.dumps({"reproduction": "eva02_demo"}))
    shutil.copy(reference / "curves/zoo_format_example.log.json", run / "train.log.json")
    with pytest.raises(ReproError, match="is a run of eva02_demo, not of eva02_B_sz512"):
        references.resolve(str(run), registry.get("eva02_B_sz512"))
    ref = references.resolve(str(run), registry.get("eva02_demo"))[0]
    assert ref.origin == "run" and len(ref.log.val) == 2


def test_a_recorded_reference_that_changed_is_refused(tmp_path, reference):
    log = tmp_path / "ref.log.json"
    shutil.copy(reference / "curves/zoo_format_example.log.json", log)
    recorded = [r.record() for r in references.gather([str(log)], registry.get("eva02_demo"))]
    assert references.from_records(recorded)[0].files == recorded[0]["files"]
    with open(log, "a") as fh:
        fh.write("\n")
    with pytest.raises(ReproError, match="changed since the run recorded it"):
        references.from_records(recorded)


def test_unknown_reference_is_one_line_with_the_fix():
    with pytest.raises(ReproError, match="no such file, folder or URL"):
        references.resolve("/nonexistent/x.log.json", registry.get("eva02_demo"))
