"""The run page draws a retrain's early verdict (issue 26): the run's curve over the references' band with the first
off-track point, read from the run folder's own watch.json; a watch.json outside the folder or of another shape is
a note on the page, never a traceback."""
import json
import re

from click.testing import CliRunner

from harness.cli import cli
from harness.verify.importer import import_result

VERDICT = "off track (first at iter 40: mIoU 12.0 below the references' band [20.1, 24.3])"


def _watch(points=None) -> dict:
    points = points or [
        {"iter": 20, "checks": {"loss": {"value": 1.9, "band": [1.7, 2.1], "references": [1.8, 2.0]},
                                "mIoU": {"value": 15.0, "band": [14.0, 17.0], "references": [15.1, 15.9]}}},
        {"iter": 40, "checks": {"loss": {"value": 1.8, "band": [1.4, 1.7], "references": [1.5, 1.6]},
                                "mIoU": {"value": 12.0, "band": [20.1, 24.3], "references": [21.0, 23.0]}}}]
    return {"verdict": VERDICT, "points": points, "first_off_track": {"iter": 40, "reason": "mIoU below the band"}}


def _run(eva02, tmp_path, watch_name="watch.json", watch=None):
    run = import_result(eva02 / "eval_eva02_L_sz512_ss.json", out_dir=tmp_path / "run")
    (run / "watch.json").write_text(json.dumps(watch or _watch()))
    record = json.loads((run / "result.json").read_text())
    record["early_verdict"] = {"file": watch_name, "verdict": VERDICT, "first_off_track": {"iter": 40}}
    (run / "result.json").write_text(json.dumps(record))
    return run


def _page(run, tmp_path) -> str:
    result = CliRunner().invoke(cli, ["report", str(run), "-o", str(tmp_path / "reports")], catch_exceptions=True)
    assert result.exit_code == 0, (result.output, result.exception)
    return next((tmp_path / "reports").glob("eva02_L_sz512_ss_*.html")).read_text()


def test_the_page_draws_the_early_verdict_over_the_band(eva02, tmp_path):
    page = _page(_run(eva02, tmp_path), tmp_path)
    assert re.search(r'<img id="early-verdict" class="fig" [^>]*src="data:image/png;base64,', page)
    assert 'id="early-verdict-line">off track (first at iter 40' in page


def test_a_watch_file_outside_the_run_folder_is_a_note(eva02, tmp_path):
    (tmp_path / "elsewhere.json").write_text(json.dumps(_watch()))
    page = _page(_run(eva02, tmp_path, watch_name="../elsewhere.json"), tmp_path)
    assert 'id="early-verdict"' not in page
    assert "early verdict ../elsewhere.json skipped: it leaves the run folder (..)" in page


def test_a_watch_file_of_another_shape_is_a_note(eva02, tmp_path):
    bad = _watch([{"iter": 20, "checks": {"mIoU": {"value": "high", "band": "x"}}}])
    page = _page(_run(eva02, tmp_path, watch=bad), tmp_path)
    assert 'id="early-verdict"' not in page and "early verdict chart skipped" in page
