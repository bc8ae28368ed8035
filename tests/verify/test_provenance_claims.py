"""Provenance is derived from the record's fields, never taken from its `provenance` word (issue 24): tier released
needs the recorded checkpoint sha256 to equal the released one; `repro import --checkpoint/--checkpoint-sha256` says
which checkpoint imported numbers came from; a failed run's FAIL line says that it failed and why."""
import json

from click.testing import CliRunner

from harness.cli import cli
from harness.fetch import weights
from harness.fileio import file_sha256

from .conftest import RELEASED


def run_cli(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=True)


def _line(result, head="eva02_L_sz512 ss: mIoU"):
    return next(line for line in result.output.splitlines() if line.startswith(head))


def _claim(sha=None):
    return {"path": None, "sha256": sha, "source": "trust me", "provenance": "released", "released_sha256": sha}


def test_a_record_that_only_claims_released_is_refused_naming_the_field(make_record):
    run = make_record(checkpoint=_claim())
    result = run_cli("verify", run)
    assert result.exit_code == 2, result.output
    assert result.stderr.splitlines() == [
        f"error: {run / 'result.json'}: checkpoint.provenance says 'released', but checkpoint.sha256 is not recorded "
        "— fix: re-run `repro eval` with the released weights, or `repro import --checkpoint PATH` "
        "(or --checkpoint-sha256 HEX) naming them; a record edited by hand is not a result"]


def test_a_claim_with_another_sha256_is_refused_even_when_it_names_that_sha256_as_released(make_record):
    run = make_record(checkpoint=_claim("ab" * 32))
    result = run_cli("verify", run)
    assert result.exit_code == 2
    assert (f"checkpoint.provenance says 'released', but checkpoint.sha256 abababababab… is not the released sha256 "
            f"{RELEASED['eva02_L_sz512'][:12]}…") in result.stderr
    assert len(result.stderr.splitlines()) == 1
    report = run_cli("report", run, "-o", run.parent / "reports")     # the report shows the refusal, no tier
    assert report.exit_code == 0, report.output
    page = next((run.parent / "reports").glob("eva02_L_sz512_ss_*.html")).read_text()
    assert "NOT VERIFIED" in page and "checkpoint.provenance says" in page


def test_the_released_sha256_recorded_without_the_word_is_released(make_record):
    checkpoint = {"path": "w.pth", "sha256": RELEASED["eva02_L_sz512"], "source": "a file"}
    result = run_cli("verify", make_record(checkpoint=checkpoint))
    assert result.exit_code == 0, result.output
    assert "tier released (released weights, published protocol)" in _line(result)


def test_where_the_released_sha256_is_not_known_a_sha256_cannot_be_released(make_record):
    (weights.weights_dir() / weights.LOCK).unlink()        # no verified download on this machine
    result = run_cli("verify", make_record(checkpoint={"path": "w.pth", "sha256": "ab" * 32, "source": "a file"}))
    assert result.exit_code == 0, result.output
    assert ("tier retrain (checkpoint sha256 abababababab… cannot be checked: no released sha256 of eva02_L_sz512 is "
            "known here (`repro download eva02_L_sz512` records it))") in _line(result)


def test_a_failed_run_fail_line_says_it_failed_and_why(make_record):
    run = make_record(status="failed", failure="the engine exited 137 (out of memory) at iteration 12")
    result = run_cli("verify", run)
    assert result.exit_code == 1, result.output
    assert ("eva02_L_sz512 ss status: the run failed: the engine exited 137 (out of memory) at iteration 12 "
            "[released]") in result.output
    assert "judged over the runs together" not in result.output and "obtained —" not in result.output
    assert ("— FAIL (the run failed: the engine exited 137 (out of memory) at iteration 12; 1 of 304 checks failed: "
            "status)") in _line(result)


def _copy_of_authors_eval(eva02, tmp_path, name="eval_eva02_L_sz512_ss.json"):
    """The authors' numbers in other bytes: nothing in the file says which checkpoint it measured."""
    copy = tmp_path / "eval.json"
    copy.write_text(json.dumps(json.loads((eva02 / name).read_text())))
    return copy


def test_import_with_the_declared_released_sha256_is_released_and_says_declared(eva02, tmp_path):
    run = tmp_path / "run"
    result = run_cli("import", _copy_of_authors_eval(eva02, tmp_path), "-o", run,
                     "--checkpoint-sha256", RELEASED["eva02_L_sz512"].upper())
    assert result.exit_code == 0, result.output
    checkpoint = json.loads((run / "result.json").read_text())["checkpoint"]
    assert (checkpoint["sha256"], checkpoint["sha256_origin"], checkpoint["path"]) == (
        RELEASED["eva02_L_sz512"], "declared", None)
    verdict = run_cli("verify", run)
    assert verdict.exit_code == 0, verdict.output
    assert ("— PASS (303 checks); tier released (released weights (sha256 declared at import, not measured), "
            "published protocol); overrides: none") in _line(verdict)


def test_import_with_another_declared_sha256_is_retrain(eva02, tmp_path):
    run = tmp_path / "run"
    assert run_cli("import", _copy_of_authors_eval(eva02, tmp_path), "-o", run,
                   "--checkpoint-sha256", "cd" * 32).exit_code == 0
    assert "tier retrain (checkpoint is not the released file (sha256 cdcdcdcdcdcd…))" in _line(run_cli("verify", run))


def test_import_with_the_checkpoint_file_hashes_it(eva02, tmp_path):
    weights_file = tmp_path / "eva02_L_ade_seg_upernet_sz512.pth"
    weights_file.write_bytes(b"the released weights, in miniature")
    lock = json.loads((weights.weights_dir() / weights.LOCK).read_text())
    for entry in lock.values():          # this file is the released one on this machine (as after `repro download`)
        if entry["sha256"] == RELEASED["eva02_L_sz512"]:
            entry["sha256"] = file_sha256(weights_file)
    (weights.weights_dir() / weights.LOCK).write_text(json.dumps(lock))
    run = tmp_path / "run"
    assert run_cli("import", _copy_of_authors_eval(eva02, tmp_path), "-o", run,
                   "--checkpoint", weights_file).exit_code == 0
    checkpoint = json.loads((run / "result.json").read_text())["checkpoint"]
    assert (checkpoint["sha256"], checkpoint["sha256_origin"], checkpoint["provenance"]) == (
        file_sha256(weights_file), "measured", "released")
    assert "tier released (released weights, published protocol)" in _line(run_cli("verify", run))


def test_import_refuses_a_bad_sha256_both_options_and_a_missing_file_in_one_line(eva02, tmp_path):
    source = _copy_of_authors_eval(eva02, tmp_path)
    cases = {("--checkpoint-sha256", "xyz"): "--checkpoint-sha256 'xyz' is not a sha256 (64 hex digits)",
             ("--checkpoint-sha256", "ab" * 32, "--checkpoint", source): "--checkpoint and --checkpoint-sha256 both",
             ("--checkpoint", tmp_path / "absent.pth"): f"--checkpoint {tmp_path / 'absent.pth'} is not a file"}
    for i, (args, message) in enumerate(cases.items()):
        result = run_cli("import", source, "-o", tmp_path / f"run{i}", *args)
        assert result.exit_code == 2, result.output
        assert len(result.stderr.splitlines()) == 1 and message in result.stderr, result.stderr
        assert not (tmp_path / f"run{i}").exists()
