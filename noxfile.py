"""Sessions for the repro harness. Start them with ./noxw (it bootstraps nox), e.g. `./noxw -s tests`.

Every session that needs the engine shares ONE virtualenv, .nox/engine, built by `install_engine` below:
torch + torchvision (pinned), mmcv-full 1.7.2 compiled once into a wheel cache and reused, mmsegmentation
0.29.1 without its stale mmcls requirement, and this package. A stamp file makes the second run instant.
"""
from __future__ import annotations

import hashlib
import os
import shutil
import sys
from pathlib import Path

import nox

sys.path.insert(0, str(Path(__file__).resolve().parent / "tools"))
import build_mmcv_wheel  # noqa: E402  (tools/ is not a package; the noxfile shares its wheel lookup)

ROOT = Path(__file__).resolve().parent
ENGINE_VENV = ROOT / ".nox" / "engine"
ENGINE_PY = ENGINE_VENV / "bin" / "python"
STAMP = ENGINE_VENV / ".repro-engine-stamp"
WHEELHOUSE = Path(os.environ.get("REPRO_WHEELHOUSE", Path.home() / ".cache" / "repro" / "wheelhouse")).expanduser()
ENGINE_INPUTS = ("requirements-engine.txt", "pyproject.toml", "tools/build_mmcv_wheel.py", "noxfile.py")
REPRODUCTIONS = sorted(p.parent.name for p in (ROOT / "reproductions").glob("*/reproduction.toml")
                       if p.parent.name != "eva02_demo")

nox.options.sessions = ["lint", "tests"]
nox.options.reuse_venv = "yes"


def _engine_fingerprint() -> str:
    digest = hashlib.sha256()
    for name in ENGINE_INPUTS:
        digest.update((ROOT / name).read_bytes())
    digest.update(sys.version.encode())
    return digest.hexdigest()


def install_engine(session: nox.Session) -> Path:
    """Create or update .nox/engine and return its python. The only place the engine is installed."""
    fingerprint = _engine_fingerprint()
    if ENGINE_PY.exists() and STAMP.exists() and STAMP.read_text() == fingerprint:
        session.log(f"engine up to date in {ENGINE_VENV}")
        return ENGINE_PY
    if not ENGINE_PY.exists():
        session.run(sys.executable, "-m", "venv", str(ENGINE_VENV), external=True)
    py = str(ENGINE_PY)
    pip = [py, "-m", "pip", "install", "--disable-pip-version-check"]
    session.run(*pip, "-r", "requirements-engine.txt", external=True)
    session.run(py, "tools/build_mmcv_wheel.py", "--python", py, "--wheelhouse", str(WHEELHOUSE), external=True)
    wheel = build_mmcv_wheel.cached_wheel(WHEELHOUSE, build_mmcv_wheel.plan(py, WHEELHOUSE)["key"])  # built or found
    session.run(*pip, "--no-deps", "--force-reinstall", str(wheel), external=True)
    session.run(*pip, "--no-deps", "mmsegmentation==0.29.1", external=True)  # its mmcls requirement is never imported
    session.run(*pip, "-e", ".[test]", external=True)
    session.run(py, "-c", "import mmcv.ops, mmseg.apis, mmseg.models; print('engine ok')", external=True)
    STAMP.write_text(fingerprint)
    return ENGINE_PY


def _install_browser(session: nox.Session) -> None:
    """Headless Chromium for the report's browser test; Debian's package, installed only where we are root."""
    if shutil.which("chromium"):
        return
    if hasattr(os, "geteuid") and os.geteuid() == 0 and shutil.which("apt-get"):
        session.run("apt-get", "update", "-qq", external=True)
        session.run("apt-get", "install", "-y", "-qq", "chromium", external=True)
    else:
        session.warn("chromium not found: the browser test of the HTML report will be skipped "
                     "(install Debian's `chromium` package to run it)")


@nox.session(venv_backend="none")
def tests(session: nox.Session) -> None:
    """Run the whole test suite on the real engine (CPU)."""
    py = install_engine(session)
    _install_browser(session)
    args = session.posargs or ["-q", "--durations=15", "tests"]
    session.run(str(py), "-m", "pytest", *args, external=True)


@nox.session(venv_backend="none")
def demo(session: nox.Session) -> None:
    """The main job on the built-in demo: prepare → train → eval (ss, ms) → verify → report, on CPU."""
    py = install_engine(session)
    session.run(str(py), "-m", "harness", "demo", *session.posargs, external=True)


@nox.session(venv_backend="none")
def bench(session: nox.Session) -> None:
    """Speed and memory benchmarks (benchmarks/*.py); each prints ratios measured in one run."""
    py = install_engine(session)
    for script in sorted((ROOT / "benchmarks").glob("*.py")):
        session.run(str(py), str(script), *session.posargs, external=True)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff over the package, tests, tools and noxfile."""
    session.install("ruff==0.17.6")
    session.run("ruff", "check", "harness", "tests", "tools", "benchmarks", "noxfile.py")


@nox.session(venv_backend="none", default=False)
@nox.parametrize("reproduction", REPRODUCTIONS, ids=REPRODUCTIONS)
def reproduce(session: nox.Session, reproduction: str) -> None:
    """GPU CI job: download → dataset check → eval → verify → report for one reproduction."""
    py = str(install_engine(session))
    repro = [py, "-m", "harness"]
    protocols = ["ss", "ms"] if reproduction == "eva02_L_sz512" else ["ss"]
    session.run(*repro, "download", reproduction, external=True)
    session.run(*repro, "prepare", "ade20k", "--verify", external=True)
    for protocol in protocols:
        work = ROOT / "runs" / reproduction / protocol / "nox"
        if work.exists():
            shutil.rmtree(work)
        session.run(*repro, "eval", reproduction, "--protocol", protocol, "--work-dir", str(work),
                    *session.posargs, external=True)
        session.run(*repro, "verify", str(work), "--tier", "released",
                    "--junitxml", str(work / "verify.xml"), external=True)
        session.run(*repro, "report", str(work), "-o", str(ROOT / "reports"), external=True)
