"""Fixtures for the eval/train pipeline tests: a small synthetic ADE20K-format dataset and a CLI runner."""
from __future__ import annotations

import shlex
from pathlib import Path

import pytest
from click.testing import CliRunner

from harness.cli import cli


@pytest.fixture(scope="session")
def synthetic_root(tmp_path_factory) -> Path:
    """16 training / 8 validation images, generated once per session (a second or two)."""
    from harness.fetch.synthetic import generate
    return generate(tmp_path_factory.mktemp("data") / "ADEChallengeData2016", num_train=16, num_val=8, seed=0)


@pytest.fixture
def repro():
    """repro(*args) -> click Result; the CLI in this process (the engine still starts as a subprocess)."""
    runner = CliRunner()

    def invoke(*args):
        argv = [str(a) for a in args]
        result = runner.invoke(cli, argv, catch_exceptions=False)
        result.argv = shlex.join(["repro", *argv])
        return result
    return invoke

