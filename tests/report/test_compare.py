"""`repro compare`: runs side by side on the console (metrics, expected mIoU, Δ, verdict) and in compare.html."""
from click.testing import CliRunner

from harness.cli import cli
from harness.run.record import read_result
from harness.verify.importer import import_result


def repro(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


def _row(lines: list[str], run_dir) -> list[str]:
    return next(line for line in lines if line.endswith(("PASS", "FAIL", "not verified")) and run_dir.name in line
                ).split()


def test_compare_prints_one_row_per_run_and_writes_compare_html(lowered_run, eva02, tmp_path):
    released = import_result(eva02 / "eval_eva02_L_sz512_ss.json", out_dir=tmp_path / "runs" / "released")
    out = tmp_path / "reports"
    result = repro("compare", released, lowered_run, "-o", out)
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split() == ["run", "aAcc", "mIoU", "mAcc", "expected", "mIoU", "Δ", "mIoU", "verdict"]
    good, low = _row(lines, released), _row(lines, lowered_run)
    for row, run_dir in ((good, released), (low, lowered_run)):
        metrics = read_result(run_dir)["metrics"]
        assert row[-6:-3] == [f"{metrics[m]:.2f}" for m in ("aAcc", "mIoU", "mAcc")]
    assert good[-1] == "PASS" and low[-1] == "FAIL"
    # the two runs share one expected mIoU; the lowered one is 2 points under it, the released one on it
    assert good[-3] == low[-3] and abs(float(low[-2]) - float(good[-2]) + 2.0) < 0.015
    assert (out / "compare.html").is_file() and lines[-1] == f"wrote {out / 'compare.html'}"
    html = (out / "compare.html").read_text()
    assert released.name in html and lowered_run.name in html


def test_compare_of_one_run_is_refused(eva02, tmp_path):
    released = import_result(eva02 / "eval_eva02_L_sz512_ss.json", out_dir=tmp_path / "runs" / "released")
    result = CliRunner().invoke(cli, ["compare", str(released), "-o", str(tmp_path / "reports")])
    assert result.exit_code == 2 and "needs two runs or more, got 1" in result.output
    assert not (tmp_path / "reports").exists()
