"""`repro verify BATCH`, `repro report --compare` and `repro compare` judge each run once (they judged every run
two or three times: the batch verdict again after pytest's, the compare page's group again after the pages)."""
import pytest

from harness.batch import batchfile
from harness.verify import compare


@pytest.fixture
def judged(monkeypatch):
    """run path -> how many times its checks were computed."""
    counts: dict[str, int] = {}
    original = compare._checks_for

    def counting(run, *args, **kwargs):
        counts[str(run.path)] = counts.get(str(run.path), 0) + 1
        return original(run, *args, **kwargs)
    monkeypatch.setattr(compare, "_checks_for", counting)
    return counts


@pytest.fixture
def two_runs(make_record):
    return [make_record(), make_record()]


def _batch_of(runs, tmp_path):
    folder = tmp_path / "batch"
    folder.mkdir()
    entries = []
    for i, run in enumerate(runs):
        (folder / f"{i:02d}-run").symlink_to(run, target_is_directory=True)
        entries.append({"task": i, "reproduction": "eva02_L_sz512", "protocol": "ss",
                        "checkpoint": None, "run_dir": f"{i:02d}-run", "state": "succeeded", "failure": None,
                        "slurm_job": None})
    batchfile.save(folder, {"schema": batchfile.SCHEMA, "created": "x", "command": "repro batch", "launcher": "none",
                            "slurm_job": None, "runs": entries})
    return folder


def test_verify_of_a_batch_judges_each_run_once(repro, two_runs, tmp_path, judged):
    result = repro("verify", _batch_of(two_runs, tmp_path))
    assert result.exit_code == 0, result.output
    assert "batch: 2 runs — 2 PASS" in result.output
    assert sorted(judged.values()) == [1, 1], judged


@pytest.mark.parametrize("command", [["report", "--compare"], ["compare"]])
def test_report_and_compare_judge_each_run_once(repro, two_runs, tmp_path, judged, command):
    result = repro(*command, *two_runs, "-o", tmp_path / "out")
    assert result.exit_code == 0, result.output
    assert (tmp_path / "out" / "compare.html").is_file()
    assert sorted(judged.values()) == [1, 1], judged
