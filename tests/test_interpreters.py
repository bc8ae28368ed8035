"""Which Pythons ./noxw and the noxfile use: pyproject.toml's classifiers name the supported ones; ./noxw
bootstraps nox with `python3` when it is one of them, else with a supported `python3.x` beside it, else stops with
one line; the noxfile offers a `tests-3.x` session for each supported Python it finds (PATH or pyenv).

Other interpreters are stood in for by small executables that answer the version probe (a real one where a venv
is made), on a PATH that holds only them and the shell tools the scripts use."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SUPPORTED = [c.rsplit(" :: ", 1)[1] for c in tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
             ["classifiers"] if c.startswith("Programming Language :: Python :: 3.")]
TOOLS = ("bash", "sed", "sort", "grep", "paste", "rm", "dirname", "cat", "env")
THIS = f"{sys.version_info[0]}.{sys.version_info[1]}"


def _bin_with_tools(tmp_path: Path) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in TOOLS:
        (bin_dir / tool).symlink_to(shutil.which(tool))
    return bin_dir


def _stand_in(path: Path, version: str | None, fails: bool = False) -> None:
    """An executable answering the version probe with VERSION; FAILS: like an inactive pyenv shim."""
    path.parent.mkdir(parents=True, exist_ok=True)
    body = (f'echo "pyenv: {path.name}: command not found" >&2; exit 127' if fails else f'echo {version}')
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(0o755)


def _env(bin_dir: Path, pyenv_root: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VIRTUAL_ENV", "PYTHON", "NOX"))}
    env.update(PATH=str(bin_dir), PYENV_ROOT=str(pyenv_root))
    return env


def test_supported_pythons_are_named_in_pyproject():
    assert SUPPORTED == ["3.11", "3.12", "3.13"]
    assert THIS in SUPPORTED, f"the tests run on Python {THIS}, which pyproject.toml does not list"


def test_noxw_stops_with_one_line_when_no_supported_python_is_found(tmp_path):
    (tmp_path / "noxw").write_bytes((REPO / "noxw").read_bytes())
    (tmp_path / "noxw").chmod(0o755)
    shutil.copy(REPO / "pyproject.toml", tmp_path)
    bin_dir = _bin_with_tools(tmp_path)
    _stand_in(bin_dir / "python3", "3.10")
    _stand_in(bin_dir / "python3.12", None, fails=True)        # an inactive pyenv shim is not an interpreter
    ran = subprocess.run([str(tmp_path / "noxw"), "--list"], env=_env(bin_dir, tmp_path / "no-pyenv"),
                         capture_output=True, text=True, timeout=60)
    assert ran.returncode == 2
    lines = ran.stderr.strip().splitlines()
    assert len(lines) == 1 and "python3 is 3.10" in lines[0], ran.stderr
    assert all(v in lines[0] for v in SUPPORTED), lines[0]
    assert not (tmp_path / ".noxw").exists()


def test_noxw_bootstraps_with_a_supported_python_beside_an_unsupported_python3(tmp_path):
    (tmp_path / "noxw").write_bytes((REPO / "noxw").read_bytes())
    (tmp_path / "noxw").chmod(0o755)
    shutil.copy(REPO / "pyproject.toml", tmp_path)
    (tmp_path / "noxfile.py").write_text("")
    bin_dir = _bin_with_tools(tmp_path)
    _stand_in(bin_dir / "python3", "3.14")
    real = Path(getattr(sys, "_base_executable", sys.executable)).resolve()
    (bin_dir / f"python{THIS}").symlink_to(real)               # this interpreter, under its versioned name
    env = _env(bin_dir, tmp_path / "no-pyenv")
    env.pop("PIP_REQUIRE_VIRTUALENV", None)
    ran = subprocess.run([str(tmp_path / "noxw"), "--version"], env=env, capture_output=True, text=True,
                         timeout=600)
    assert ran.returncode == 0, ran.stderr[-2000:]
    cfg = (tmp_path / ".noxw" / "pyvenv.cfg").read_text()
    assert f"version = {THIS}." in cfg or f"version_info = {THIS}." in cfg, cfg


@pytest.fixture
def repo_noxw():
    if not (REPO / ".noxw" / "bin" / "nox").exists():
        pytest.skip("./noxw has not bootstrapped nox in this checkout yet (run ./noxw --list once)")
    return REPO / "noxw"


def _listed_sessions(repo_noxw: Path, env: dict) -> set[str]:
    ran = subprocess.run([str(repo_noxw), "--list"], env=env, capture_output=True, text=True, timeout=120)
    assert ran.returncode == 0, ran.stderr[-2000:]
    return {line.split()[1] for line in ran.stdout.splitlines() if line[:2] in ("* ", "- ")}


def test_noxfile_offers_tests_sessions_for_the_pythons_found(tmp_path, repo_noxw):
    bin_dir = _bin_with_tools(tmp_path)
    nox_python = subprocess.run([str(REPO / ".noxw" / "bin" / "python"), "-c",
                                 "import sys; print('%d.%d' % sys.version_info[:2])"],
                                capture_output=True, text=True, check=True).stdout.strip()   # always offered
    others = [v for v in SUPPORTED if v != nox_python]
    on_path, in_pyenv = others[0], others[1]
    _stand_in(bin_dir / f"python{on_path}", on_path)
    _stand_in(bin_dir / f"python{in_pyenv}", None, fails=True)          # inactive shim on PATH ...
    pyenv = tmp_path / "pyenv"
    _stand_in(pyenv / "versions" / f"{in_pyenv}.0" / "bin" / f"python{in_pyenv}", in_pyenv)   # ... installed
    _stand_in(bin_dir / "python3.10", "3.10")                           # found, but not supported
    sessions = _listed_sessions(repo_noxw, _env(bin_dir, pyenv))
    assert {f"tests-{v}" for v in SUPPORTED} | {"tests"} <= sessions
    assert "tests-3.10" not in sessions

    sessions = _listed_sessions(repo_noxw, _env(bin_dir, tmp_path / "no-pyenv"))
    assert f"tests-{in_pyenv}" not in sessions                          # the failing shim alone is not enough
    assert {f"tests-{nox_python}", f"tests-{on_path}", "tests"} <= sessions


def test_the_github_workflow_tests_every_supported_python():
    yaml = pytest.importorskip("yaml")
    workflow = REPO / ".github" / "workflows" / "ci.yml"
    if not workflow.exists():
        pytest.skip("no GitHub workflow in this checkout")
    tests_job = yaml.safe_load(workflow.read_text())["jobs"]["tests"]
    assert tests_job["strategy"]["matrix"]["python"] == SUPPORTED
    setup = next(s for s in tests_job["steps"] if s.get("uses", "").startswith("actions/setup-python"))
    assert setup["with"]["python-version"] == "${{ matrix.python }}"
