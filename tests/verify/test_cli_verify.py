"""The verify/import/report commands: help with worked examples, and no heavy imports before they run."""
import subprocess
import sys

import pytest


@pytest.mark.parametrize("command", ["verify", "import", "report"])
def test_help_shows_examples(repro, command):
    result = repro(command, "--help")
    assert result.exit_code == 0
    assert "Examples:" in result.output and f"repro {command} " in result.output


def test_help_imports_neither_pandas_nor_pytest_nor_torch():
    code = ("import sys\nfrom click.testing import CliRunner\nfrom harness.cli import cli\n"
            "assert CliRunner().invoke(cli, ['verify', '--help']).exit_code == 0\n"
            "print(sorted(m for m in ('pandas', 'matplotlib', 'torch', 'mmcv', '_pytest', 'scipy') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
