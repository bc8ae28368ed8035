import subprocess
import sys

from click.testing import CliRunner

from harness.cli import cli


def test_help_lists_the_commands_without_importing_the_engine():
    # `repro --help` must stay fast: it may not import torch, mmcv or mmseg
    code = ("import sys; from harness.cli import cli; from click.testing import CliRunner; "
            "r = CliRunner().invoke(cli, ['--help']); assert r.exit_code == 0, r.output; "
            "heavy = sorted(m for m in ('torch', 'mmcv', 'mmseg', 'pandas', 'matplotlib') if m in sys.modules); "
            "print(r.output); print('HEAVY', heavy)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "HEAVY []" in out
    for command in ("list", "download", "prepare", "eval", "train", "verify", "import", "report", "demo"):
        assert f"  {command} " in out, command


def test_repro_error_is_one_line_and_exit_2():
    result = CliRunner().invoke(cli, ["eval", "no_such_model", "--dry-run"])
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert lines == [lines[0]] and lines[0].startswith("error: Unknown reproduction 'no_such_model'.")
