"""`repro verify` reads run directories someone else wrote: nothing found near them is loaded or executed."""
import subprocess
import sys


def _traps(folder, marker):
    """A conftest.py that would write `marker`, and pytest settings that would break the run if read."""
    folder.joinpath("conftest.py").write_text(
        f"from pathlib import Path\nPath({str(marker)!r}).write_text('conftest ran')\n"
        "def pytest_collection_modifyitems(items):\n    items.clear()\n")
    folder.joinpath("pytest.ini").write_text("[pytest]\naddopts = --this-option-does-not-exist\n")
    folder.joinpath("pyproject.toml").write_text("[tool.pytest.ini_options]\naddopts = '-p no_such_plugin'\n")


def test_no_conftest_or_pytest_settings_near_a_run_directory_is_loaded(make_record, repro, tmp_path):
    run = make_record()
    marker = tmp_path / "conftest-ran.txt"
    _traps(run, marker)
    _traps(run.parent, marker)          # and one folder above, where pytest would look for a rootdir conftest

    result = repro("verify", run, "-v")

    assert not marker.exists(), "a conftest.py beside the run directory was executed"
    assert result.exit_code == 0, result.output
    assert "303 passed" in result.output


def test_isolated_in_a_fresh_process_too(make_record, tmp_path):
    """The same from the command line, as a reviewer runs it (entry-point plugin autoload is switched off too)."""
    run = make_record()
    marker = tmp_path / "conftest-ran.txt"
    _traps(run, marker)
    code = ("import sys\nfrom harness.cli import main\nsys.argv = ['repro', 'verify', sys.argv[1]]\nmain()")
    done = subprocess.run([sys.executable, "-c", code, str(run)], capture_output=True, text=True, cwd=run)
    assert not marker.exists()
    assert done.returncode == 0, done.stdout + done.stderr
