"""job.json and result.json have one definition each (harness/run/job.py, record.py): the schemas in docs/ are
generated from it, the writers refuse what it does not allow, and the readers check the types they know."""
from __future__ import annotations

import json

import pytest

from harness.errors import ReproError
from harness.paths import REPO_ROOT
from harness.run.job import job_from_dict, read_job, write_job
from harness.run.record import read_result, write_result
from harness.run.schema import schemas, validate
from run.conftest import make_job


def test_the_committed_schemas_are_the_generated_ones():
    for name, text in schemas().items():
        committed = (REPO_ROOT / "docs" / name).read_text()
        assert committed == text, f"docs/{name} is stale: run `python -m harness.run.schema`"


def test_the_record_doc_points_at_the_schema_and_agrees_with_it():
    doc = (REPO_ROOT / "docs" / "result_record.md").read_text()
    result = json.loads(schemas()["result.schema.json"])
    assert "result.schema.json" in doc
    for row in [ln for ln in doc.splitlines() if ln.startswith("| `")]:
        field = row.split("`")[1]
        assert field in result["properties"], f"docs/result_record.md names `{field}`, which the schema lacks"
    launch = result["properties"]["launch"]["properties"]
    assert "gpus" in launch and "gpus_per_node" not in launch and "gpus_per_node" not in doc


def _record(**fields) -> dict:
    return {"reproduction": "eva02_demo", "protocol": "ss", "kind": "eval", "status": "succeeded",
            "metrics": {"aAcc": 80.0, "mIoU": 31.87, "mAcc": 40.0}, **fields}


def test_the_writer_refuses_a_field_the_definition_lacks_or_a_wrong_type(tmp_path):
    with pytest.raises(ValueError, match="launch.gpus_per_node: not a field of LaunchFacts"):
        write_result(tmp_path, _record(launch={"gpus_per_node": 4}))
    with pytest.raises(ValueError, match="seed: expected an integer or null, got '0'"):
        write_result(tmp_path, _record(seed="0"))
    with pytest.raises(ValueError, match="status: missing"):
        write_result(tmp_path, {k: v for k, v in _record().items() if k != "status"})
    assert not (tmp_path / "result.json").exists()                      # nothing half-written
    path = write_result(tmp_path, _record(launch={"gpus": 4, "nnodes": 1}))
    data = json.loads(path.read_text())
    assert validate(data, json.loads(schemas()["result.schema.json"])) == []


def test_the_reader_refuses_a_known_field_of_the_wrong_type_in_one_line(tmp_path):
    (tmp_path / "result.json").write_text(json.dumps(dict(_record(), schema="repro.result/1",
                                                          metrics={"mIoU": "31.87"})))
    with pytest.raises(ReproError) as err:
        read_result(tmp_path)
    assert "metrics.mIoU is the string '31.87', not a JSON number" in err.value.one_line()
    assert "\n" not in err.value.one_line()


def test_the_validator_catches_what_the_schema_forbids():
    schema = json.loads(schemas()["job.schema.json"])
    good = make_job()
    assert validate(good, schema) == []
    assert validate(dict(good, device="gpu"), schema) == ["$.device: 'gpu' is not one of ['cpu', 'cuda']"]
    assert validate(dict(good, surprise=1), schema) == ["$: surprise is not allowed (not in the schema)"]
    assert validate({k: v for k, v in good.items() if k != "config"}, schema) == ["$: config is required"]
    assert validate(dict(good, launch=dict(good["launch"], gpus=True)), schema)     # a bool is not an integer


def test_a_job_round_trips_through_its_one_writer_and_reader(tmp_path):
    job = job_from_dict(make_job(kind="train", max_iters=12, accumulate=2))
    write_job(tmp_path / "job.json", job)
    again = read_job(tmp_path / "job.json")
    assert again == job and "eval_engine" not in json.loads((tmp_path / "job.json").read_text())   # left out
    (tmp_path / "bad.json").write_text(json.dumps(dict(make_job(), kind="predict")))
    with pytest.raises(ReproError, match="kind: expected 'eval' or 'train', got 'predict'"):
        read_job(tmp_path / "bad.json")
