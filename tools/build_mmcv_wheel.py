"""Build the mmcv-full 1.7.2 wheel once and keep it in a wheel cache.

mmcv-full publishes no wheels for torch 2.x, so it is compiled from its sdist. Two fixes are needed on
torch 2.14 (see ../shared/reference/install.md): the build imports pkg_resources, so it runs without build
isolation in PYTHON's environment (torch already installed there) with setuptools<70 for the duration of
the build only (torch itself declares setuptools>=77, restored afterwards); and torch's headers require
C++20 while mmcv's setup.py asks for C++17.

Usage: python tools/build_mmcv_wheel.py --python PYTHON --wheelhouse DIR
Prints the path of the cached wheel. A second call finds it and returns at once.
"""
from __future__ import annotations

import argparse
import glob
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

MMCV_VERSION = "1.7.2"
OLD_STD, NEW_STD = "-std=c++17", "-std=c++20"


def python_tag(python: str) -> str:
    out = subprocess.check_output(
        [python, "-c", "import sys; print(f'cp{sys.version_info[0]}{sys.version_info[1]}')"], text=True)
    return out.strip()


def cached_wheel(wheelhouse: Path, tag: str) -> Path | None:
    hits = sorted(wheelhouse.glob(f"mmcv_full-{MMCV_VERSION}-{tag}-{tag}-*.whl"))
    return hits[0] if hits else None


def pip_install(python: str, *requirements: str) -> None:
    subprocess.check_call([python, "-m", "pip", "install", "-q", *requirements])


def patch_cxx_standard(setup_py: Path) -> None:
    text = setup_py.read_text()
    if OLD_STD not in text:
        raise SystemExit(f"{setup_py}: expected '{OLD_STD}' to replace; the mmcv-full sdist changed, update this script")
    setup_py.write_text(text.replace(OLD_STD, NEW_STD))


def build(python: str, wheelhouse: Path) -> Path:
    tag = python_tag(python)
    hit = cached_wheel(wheelhouse, tag)
    if hit:
        return hit
    wheelhouse.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="mmcv-build-") as tmp:
        tmp = Path(tmp)
        pip_install(python, "setuptools<70", "wheel")
        try:
            built = _build_in(tmp, python)
        finally:
            pip_install(python, "setuptools>=77")
        # copy under a temporary name, then rename: a killed build never leaves a half wheel in the cache
        partial = wheelhouse / (built.name + ".part")
        shutil.copy2(built, partial)
        os.replace(partial, wheelhouse / built.name)
    return wheelhouse / built.name


def _build_in(tmp: Path, python: str) -> Path:
    # pip prepares the sdist's metadata by running its setup.py, which needs pkg_resources: no isolation
    subprocess.check_call([python, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
                           "--no-build-isolation", f"mmcv-full=={MMCV_VERSION}", "-d", str(tmp / "sdist")])
    (sdist,) = glob.glob(str(tmp / "sdist" / "mmcv-full-*.tar.gz")) or glob.glob(str(tmp / "sdist" / "*.tar.gz"))
    with tarfile.open(sdist) as tar:
        tar.extractall(tmp / "src", filter="data")
    (src,) = [p for p in (tmp / "src").iterdir() if p.is_dir()]
    patch_cxx_standard(src / "setup.py")
    env = dict(os.environ, MMCV_WITH_OPS="1", MAX_JOBS=os.environ.get("MAX_JOBS", str(os.cpu_count() or 2)))
    print(f"building mmcv-full {MMCV_VERSION} with compiled ops (about 15-30 minutes on 2 cores) ...", flush=True)
    subprocess.check_call([python, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                           str(src), "-w", str(tmp / "out")], env=env)
    (built,) = (tmp / "out").glob("mmcv_full-*.whl")
    return built


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--python", default=sys.executable, help="interpreter of the target environment")
    parser.add_argument("--wheelhouse", required=True, type=Path, help="wheel cache directory")
    args = parser.parse_args()
    print(build(args.python, args.wheelhouse))


if __name__ == "__main__":
    main()
