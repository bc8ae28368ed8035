"""Fields read from records reach the terminal with their control characters made visible (issue 24): an ESC
sequence in a record can neither clear the screen nor retitle the window of the person running `repro`."""
import json
import re

from click.testing import CliRunner

from harness.cli import cli
from harness.console import printable

from .conftest import hand_edited

CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f\x7f-\x9f]")      # everything but the newline that ends a line
CLEAR = "\x1b[2J\x1b[H"
TITLE = "\x1b]0;owned\x07"


def run_cli(*args):
    result = CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=True)
    assert not isinstance(result.exception, Exception) or isinstance(result.exception, SystemExit), result.exception
    return result


def _no_control(result):
    text = result.output + result.stderr
    assert not CONTROL.search(text), repr(CONTROL.search(text).group())
    return text


def test_printable_shows_control_characters_and_keeps_text():
    assert printable(f"a{CLEAR}b\nc\u202ed é ✓") == "a\\x1b[2J\\x1b[Hb\\nc\\u202ed é ✓"
    assert printable(TITLE) == "\\x1b]0;owned\\x07"


def test_an_escape_in_a_records_reproduction_id_is_shown_not_obeyed(make_record, tmp_path):
    run = hand_edited(make_record(), reproduction=f"eva02_L_sz512{TITLE}", note=f"see {CLEAR}")
    for args in (("verify", run), ("compare", run, make_record(), "-o", tmp_path / "c"),
                 ("report", run, "-o", tmp_path / "r")):
        result = run_cli(*args)
        assert result.exit_code == 2, result.output
        assert "reproduction 'eva02_L_sz512\\x1b]0;owned\\x07' holds control characters" in _no_control(result)


def test_escapes_in_a_records_failure_and_checkpoint_are_shown_not_obeyed(make_record, tmp_path):
    run = make_record(status="failed", failure=f"killed{CLEAR}PASS", note=f"hello{TITLE}",
                      checkpoint={"path": None, "sha256": None, "source": f"mine{TITLE}"})
    result = run_cli("verify", run)
    assert result.exit_code == 1
    text = _no_control(result)
    assert "the run failed: killed\\x1b[2J\\x1b[HPASS" in text
    assert "checkpoint not recorded (mine\\x1b]0;owned\\x07)" in text


def test_compare_and_report_show_escapes_in_run_folder_names(make_record, tmp_path):
    first, second = make_record(), make_record()
    named = first.rename(first.with_name(f"run{CLEAR}"))
    compare = run_cli("compare", named, second, "-o", tmp_path / f"out{TITLE}")
    assert compare.exit_code == 0, compare.output
    assert "run\\x1b[2J\\x1b[H" in _no_control(compare)
    report = run_cli("report", named, "-o", tmp_path / f"out{TITLE}")
    assert report.exit_code == 0
    assert "out\\x1b]0;owned\\x07" in _no_control(report)


def test_a_batch_runs_failure_is_shown_not_obeyed_in_the_verdict_and_its_junit_xml(make_record, tmp_path):
    import xml.etree.ElementTree as ET

    batch = tmp_path / "batch"
    batch.mkdir()
    (batch / "batch.json").write_text(json.dumps({
        "schema": "repro.batch/1", "created": "2026-01-01T00:00:00+00:00", "updated": "2026-01-01T00:00:00+00:00",
        "command": "repro batch", "launcher": "none", "slurm_job": None,
        "runs": [{"task": 0, "reproduction": "eva02_L_sz512", "protocol": "ss", "checkpoint": None,
                  "run_dir": str(make_record()), "state": "succeeded", "failure": None, "slurm_job": None},
                 {"task": 1, "reproduction": f"eva02_L_sz512{TITLE}", "protocol": "ms", "checkpoint": None,
                  "run_dir": str(tmp_path / f"never{CLEAR}"), "state": "not-started",
                  "failure": f"refused{CLEAR}PASS", "slurm_job": None}]}))
    junit = tmp_path / "verdict.xml"
    result = run_cli("verify", batch, "--junitxml", junit)
    assert result.exit_code == 1, result.output
    text = _no_control(result)
    assert ("FAIL eva02_L_sz512\\x1b]0;owned\\x07 ms (task 1): not started: refused\\x1b[2J\\x1b[HPASS — "
            f"{tmp_path}/never\\x1b[2J\\x1b[H") in text
    failures = [f for f in ET.parse(junit).iter("failure") if "refused" in f.get("message")]
    assert [f.get("message") for f in failures] == ["not started: refused\\x1b[2J\\x1b[HPASS"]
