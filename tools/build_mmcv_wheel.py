"""Build the mmcv-full 1.7.2 wheel once and keep it in a wheel cache, keyed by everything that makes it differ.

mmcv-full publishes no wheels for torch 2.x, so it is compiled from its sdist. Two fixes are needed on
torch 2.x (see docs/install.md): the build imports pkg_resources, so it runs without build isolation in
PYTHON's environment (torch already installed there) with setuptools<70 for the duration of the build only
(torch itself declares setuptools>=77, restored afterwards); and torch's headers require C++20 while mmcv's
setup.py asks for C++17.

Ops flavour. mmcv-full's setup.py compiles CUDA kernels whenever torch sees a GPU, and that needs an nvcc whose
CUDA version matches torch's; most GPU hosts have none, and EVA-02 + UperNet use no mmcv CUDA kernel. So the
build hides every GPU from its process and compiles CPU ops, on every host. `REPRO_MMCV_OPS=cuda` asks for the
CUDA ops instead, after checking that nvcc exists and matches `torch.version.cuda`.

Cache key: mmcv version, Python tag, torch version (with its local part, e.g. +cu130) and ops flavour. Each key
has its own folder in the wheelhouse, so a wheel built against another torch or with other ops is never reused.

Usage: python tools/build_mmcv_wheel.py --python PYTHON --wheelhouse DIR [--dry-run]
Prints the path of the cached wheel (or, with --dry-run, the key, environment and commands it would use).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import urllib.parse
import urllib.request
from pathlib import Path

MMCV_VERSION = "1.7.2"
OLD_STD, NEW_STD = "-std=c++17", "-std=c++20"
# setup.py reads its version with exec() into locals(), which Python 3.13 (PEP 667) no longer lets it see again
OLD_VERSION_READ = ("        exec(compile(f.read(), version_file, 'exec'))\n"
                    "    return locals()['__version__']\n")
NEW_VERSION_READ = ("        namespace = {}\n"
                    "        exec(compile(f.read(), version_file, 'exec'), namespace)\n"
                    "    return namespace['__version__']\n")
SIMPLE_INDEX = "https://pypi.org/simple"
OPS_ENV = "REPRO_MMCV_OPS"
OPS_FLAVOURS = ("cpu", "cuda")


class BuildError(SystemExit):
    """One line naming the problem and the fix; exits non-zero."""


def target_facts(python: str) -> dict:
    """Python tag, torch version and torch's CUDA version of the target interpreter (GPUs hidden: no CUDA init)."""
    code = ("import sys, json, torch; print(json.dumps({'tag': f'cp{sys.version_info[0]}{sys.version_info[1]}', "
            "'torch': torch.__version__, 'torch_cuda': torch.version.cuda}))")
    out = subprocess.check_output([python, "-c", code], text=True, env=build_env("cpu"))
    return json.loads(out.strip().splitlines()[-1])


def python_tag(python: str) -> str:
    out = subprocess.check_output(
        [python, "-c", "import sys; print(f'cp{sys.version_info[0]}{sys.version_info[1]}')"], text=True)
    return out.strip()


def ops_flavour(environ: dict | None = None) -> str:
    flavour = (environ if environ is not None else os.environ).get(OPS_ENV, "cpu").strip().lower() or "cpu"
    if flavour not in OPS_FLAVOURS:
        raise BuildError(f"{OPS_ENV}={flavour!r} is not a known ops flavour; use one of {', '.join(OPS_FLAVOURS)}")
    return flavour


def cache_key(facts: dict, flavour: str) -> str:
    torch_version = re.sub(r"[^A-Za-z0-9.]+", "_", facts["torch"])  # '2.14.1+cu130' -> '2.14.1_cu130'
    return f"mmcv-full-{MMCV_VERSION}_{facts['tag']}_torch{torch_version}_{flavour}"


def cached_wheel(wheelhouse: Path, key: str) -> Path | None:
    hits = sorted((wheelhouse / key).glob(f"mmcv_full-{MMCV_VERSION}-*.whl"))
    return hits[0] if hits else None


def build_env(flavour: str, environ: dict | None = None) -> dict:
    """The build's environment: GPUs hidden for CPU ops (torch then reports none and setup.py builds C++ only)."""
    env = dict(os.environ if environ is None else environ)
    env["MMCV_WITH_OPS"] = "1"
    env.setdefault("MAX_JOBS", str(os.cpu_count() or 2))
    if flavour == "cpu":
        env["CUDA_VISIBLE_DEVICES"] = ""
        env.pop("FORCE_CUDA", None)
    else:
        env["FORCE_CUDA"] = "1"
    return env


def check_nvcc(torch_cuda: str | None, environ: dict | None = None) -> str:
    """For CUDA ops: nvcc must exist and match torch's CUDA major.minor. Returns nvcc's version."""
    env = os.environ if environ is None else environ
    if not torch_cuda:
        raise BuildError(f"{OPS_ENV}=cuda but this torch is a CPU build; install a CUDA torch or unset {OPS_ENV}")
    home = env.get("CUDA_HOME") or env.get("CUDA_PATH")
    nvcc = str(Path(home) / "bin" / "nvcc") if home else shutil.which("nvcc", path=env.get("PATH"))
    if not nvcc or not Path(nvcc).exists():
        raise BuildError(f"{OPS_ENV}=cuda needs nvcc for CUDA {torch_cuda} and none was found; install that "
                         f"toolkit and set CUDA_HOME, or unset {OPS_ENV} for CPU ops (EVA-02 needs none)")
    out = subprocess.run([nvcc, "--version"], capture_output=True, text=True).stdout
    found = re.search(r"release (\d+\.\d+)", out)
    version = found.group(1) if found else "unknown"
    if version != ".".join(torch_cuda.split(".")[:2]):
        raise BuildError(f"{OPS_ENV}=cuda: nvcc at {nvcc} is CUDA {version} but torch was built with CUDA "
                         f"{torch_cuda}; point CUDA_HOME at a {torch_cuda} toolkit or unset {OPS_ENV}")
    return version


def pip_install(python: str, *requirements: str) -> None:
    subprocess.check_call([python, "-m", "pip", "install", "-q", *requirements])


def patch_cxx_standard(setup_py: Path) -> None:
    text = setup_py.read_text()
    if OLD_STD not in text:
        raise BuildError(f"{setup_py}: expected '{OLD_STD}' to replace; the mmcv-full sdist changed, update this script")
    setup_py.write_text(text.replace(OLD_STD, NEW_STD))


def patch_version_read(setup_py: Path) -> None:
    text = setup_py.read_text()
    if OLD_VERSION_READ not in text:
        raise BuildError(f"{setup_py}: expected mmcv's get_version() to patch for Python 3.13; the mmcv-full sdist "
                         "changed, update this script")
    setup_py.write_text(text.replace(OLD_VERSION_READ, NEW_VERSION_READ))


def download_sdist(dest: Path, index: str | None = None) -> Path:
    """The mmcv-full sdist from the package index's JSON listing (PEP 691), sha256-checked. Not `pip download`:
    pip prepares an sdist's metadata by running its setup.py, and that setup.py fails on Python 3.13."""
    index = (index or os.environ.get("PIP_INDEX_URL") or SIMPLE_INDEX).rstrip("/")
    request = urllib.request.Request(f"{index}/mmcv-full/", headers={"Accept": "application/vnd.pypi.simple.v1+json"})
    with urllib.request.urlopen(request, timeout=120) as response:
        files = json.load(response)["files"]
    name = f"mmcv-full-{MMCV_VERSION}.tar.gz"
    (entry,) = [f for f in files if f["filename"] == name] or [None]
    if entry is None:
        raise BuildError(f"{index} lists no {name}; pass --sdist PATH to a copy of it")
    dest.mkdir(parents=True, exist_ok=True)
    target = dest / name
    url = urllib.parse.urljoin(f"{index}/mmcv-full/", entry["url"])
    with urllib.request.urlopen(url, timeout=600) as response, open(target, "wb") as out:
        shutil.copyfileobj(response, out)
    want = entry.get("hashes", {}).get("sha256")
    if want and hashlib.sha256(target.read_bytes()).hexdigest() != want:
        raise BuildError(f"{url}: sha256 differs from the index's; download again or pass --sdist PATH")
    return target


def plan(python: str, wheelhouse: Path) -> dict:
    flavour = ops_flavour()
    facts = target_facts(python)
    if flavour == "cuda":
        check_nvcc(facts["torch_cuda"])
    key = cache_key(facts, flavour)
    env = build_env(flavour)
    return {"key": key, "flavour": flavour, "facts": facts, "folder": str(wheelhouse / key),
            "env": {k: env[k] for k in ("MMCV_WITH_OPS", "MAX_JOBS", "CUDA_VISIBLE_DEVICES", "FORCE_CUDA") if k in env}}


def build(python: str, wheelhouse: Path, sdist: Path | None = None) -> Path:
    info = plan(python, wheelhouse)
    hit = cached_wheel(wheelhouse, info["key"])
    if hit:
        return hit
    folder = wheelhouse / info["key"]
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="mmcv-build-") as tmp:
        tmp = Path(tmp)
        pip_install(python, "setuptools<70", "wheel")
        try:
            built = _build_in(tmp, python, build_env(info["flavour"]), sdist)
        finally:
            pip_install(python, "setuptools>=77")
        # copy under a temporary name, then rename: a killed build never leaves a half wheel in the cache
        partial = folder / (built.name + ".part")
        shutil.copy2(built, partial)
        os.replace(partial, folder / built.name)
    return folder / built.name


def _build_in(tmp: Path, python: str, env: dict, sdist: Path | None) -> Path:
    if sdist is None:
        sdist = download_sdist(tmp / "sdist")
    with tarfile.open(sdist) as tar:
        tar.extractall(tmp / "src", filter="data")
    (src,) = [p for p in (tmp / "src").iterdir() if p.is_dir()]
    patch_cxx_standard(src / "setup.py")
    patch_version_read(src / "setup.py")
    flavour = "CUDA" if env.get("FORCE_CUDA") == "1" else "CPU"
    print(f"building mmcv-full {MMCV_VERSION} with {flavour} ops on {env['MAX_JOBS']} jobs "
          "(about 15-30 minutes on 2 cores) ...", flush=True)
    subprocess.check_call([python, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
                           str(src), "-w", str(tmp / "out")], env=env)
    (built,) = (tmp / "out").glob("mmcv_full-*.whl")
    return built


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--python", default=sys.executable, help="interpreter of the target environment")
    parser.add_argument("--wheelhouse", required=True, type=Path, help="wheel cache directory")
    parser.add_argument("--sdist", type=Path, help="a local mmcv-full sdist (offline hosts) instead of pip download")
    parser.add_argument("--dry-run", action="store_true", help="print the cache key and build environment as JSON")
    args = parser.parse_args()
    if args.dry_run:
        print(json.dumps(plan(args.python, args.wheelhouse), indent=1))
        return
    print(build(args.python, args.wheelhouse, args.sdist))


if __name__ == "__main__":
    main()
