"""One record validator (harness/recordcheck.py, called by harness.run.record.read_result): a record whose metrics
are not JSON numbers or whose per_class has not the documented shape is one line, exit 2, for every command that
reads it."""
import json

import pytest
from click.testing import CliRunner

from harness.cli import cli
from harness.recordcheck import RecordError, check_result

from .conftest import hand_edited

BAD_METRICS = {
    "a string": ("59.77", "metrics.mIoU is the string '59.77', not a JSON number"),
    "a padded string": (" 59.77\n", "metrics.mIoU is the string ' 59.77\\n', not a JSON number"),
    "an underscored string": ("5_9.77", "metrics.mIoU is the string '5_9.77', not a JSON number"),
    "a boolean": (True, "metrics.mIoU is the boolean true, not a JSON number"),
    "a list": ([59.77], "metrics.mIoU is a list, not a JSON number"),
    "an object": ({"value": 59.77}, "metrics.mIoU is an object, not a JSON number"),
    "a huge integer": (10 ** 400, "metrics.mIoU is an integer of 401 digits, beyond any metric"),
}
BAD_PER_CLASS = {
    "a list": (lambda pc: list(pc.values()), "per_class is a list, not an object"),
    "a number for a class": (lambda pc: {**pc, "wall": 82.66},
                             "per_class['wall'] is 82.66, not an object {\"IoU\": …, \"Acc\": …}"),
    "a string value": (lambda pc: {**pc, "wall": {"IoU": "82.66", "Acc": 90.0}},
                       "per_class['wall'].IoU is the string '82.66', not a JSON number"),
    "a list value": (lambda pc: {**pc, "sky": {"IoU": [94.0], "Acc": 97.0}},
                     "per_class['sky'].IoU is a list, not a JSON number"),
}


def run_cli(*args):
    """The CLI as a user runs it: exceptions are not caught for the test, a traceback would be one."""
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=True)


def _batch(tmp_path, run_dir):
    """A batch folder listing one run (as `repro batch` writes it), so verify/report take the batch path."""
    batch = tmp_path / "batch"
    batch.mkdir()
    (batch / "batch.json").write_text(json.dumps({
        "schema": "repro.batch/1", "created": "2026-01-01T00:00:00+00:00", "updated": "2026-01-01T00:00:00+00:00",
        "command": "repro batch", "launcher": "none", "slurm_job": None,
        "runs": [{"task": 0, "reproduction": "eva02_L_sz512", "protocol": "ss", "checkpoint": None,
                  "run_dir": str(run_dir), "state": "succeeded", "failure": None, "slurm_job": None}]}))
    return batch


COMMANDS = {
    "verify": lambda bad, good, tmp: ("verify", bad),
    "report": lambda bad, good, tmp: ("report", bad, "-o", tmp / "reports"),
    "compare": lambda bad, good, tmp: ("compare", good, bad, "-o", tmp / "reports"),
    "verify batch": lambda bad, good, tmp: ("verify", _batch(tmp, bad)),
    "report batch": lambda bad, good, tmp: ("report", _batch(tmp, bad), "-o", tmp / "reports"),
}


def _one_line_exit_2(result, field_message: str, path):
    assert result.exit_code == 2, (result.output, result.exception)
    assert not isinstance(result.exception, Exception) or isinstance(result.exception, SystemExit), result.exception
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"error: {path}: {field_message} — fix: "), lines[0]


@pytest.mark.parametrize("command", list(COMMANDS))
@pytest.mark.parametrize("case", list(BAD_METRICS))
def test_a_metric_that_is_not_a_json_number_is_one_line_exit_2_for_every_command(make_record, tmp_path, command,
                                                                                  case):
    value, message = BAD_METRICS[case]
    bad, good = make_record(), make_record()
    bad = hand_edited(bad, metrics={"aAcc": 86.67, "mIoU": value, "mAcc": 72.05})
    _one_line_exit_2(run_cli(*COMMANDS[command](bad, good, tmp_path)), message, bad / "result.json")


@pytest.mark.parametrize("command", list(COMMANDS))
@pytest.mark.parametrize("case", list(BAD_PER_CLASS))
def test_a_malformed_per_class_is_one_line_exit_2_for_every_command(make_record, tmp_path, command, case):
    change, message = BAD_PER_CLASS[case]
    bad, good = make_record(), make_record()
    per_class = json.loads((bad / "result.json").read_text())["per_class"]
    bad = hand_edited(bad, per_class=change(per_class))
    _one_line_exit_2(run_cli(*COMMANDS[command](bad, good, tmp_path)), message, bad / "result.json")


def test_an_eval_json_with_string_metrics_is_refused_by_import(eva02, tmp_path):
    data = json.loads((eva02 / "eval_eva02_L_sz512_ss.json").read_text())
    data["metric"]["mIoU"] = "0.5977"
    source = tmp_path / "eval.json"
    source.write_text(json.dumps(data))
    result = run_cli("import", source, "-o", tmp_path / "run")
    assert result.exit_code == 2 and len(result.stderr.splitlines()) == 1, result.stderr
    assert f"{source}: metric.mIoU is the string '0.5977', not a JSON number" in result.stderr
    assert not (tmp_path / "run" / "result.json").exists()


def test_numbers_null_nan_and_out_of_range_pass_the_shape_check():
    record = {"schema": "repro.result/1", "reproduction": "eva02_L_sz512", "protocol": "ss", "kind": "eval",
              "status": "succeeded", "metrics": {"aAcc": 86, "mIoU": float("nan"), "mAcc": 150.0},
              "per_class": {"wall": {"IoU": None, "Acc": 1e308}}, "seed": None, "checkpoint": None}
    check_result(record, "x")          # the verdict judges NaN and out-of-range values, not the shape check


@pytest.mark.parametrize("field, value, message", [
    ("reproduction", ["eva02_L_sz512"], "reproduction is a list, not a string"),
    ("protocol", "", "protocol is empty"),
    ("status", None, "status is null, not a string"),
    ("reproduction", "eva02\x1b]0;owned\x07", "reproduction 'eva02\\x1b]0;owned\\x07' holds control characters"),
    ("checkpoint", "released", "checkpoint is the string 'released', not an object"),
    ("seed", 1.5, "seed is 1.5, not an integer"),
    ("artifacts", {"gallery": ["x"]}, "artifacts.gallery is a list, not a string"),
])
def test_identity_and_object_fields_have_their_types(field, value, message):
    record = {"schema": "repro.result/1", "reproduction": "eva02_L_sz512", "protocol": "ss", "kind": "eval",
              "status": "succeeded", field: value}
    with pytest.raises(RecordError) as caught:
        check_result(record, "r.json")
    assert caught.value.message == f"r.json: {message}"
