"""tools/build_mmcv_wheel.py on every supported Python: it fetches the real mmcv-full sdist without running its
setup.py, and patches that setup.py's version lookup, which Python 3.13 breaks (exec() into locals(), PEP 667).
The patched get_version() is the sdist's own function, run here by this interpreter."""
from __future__ import annotations

import ast
import os
import sys
import tarfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tools"))
import build_mmcv_wheel as bmw  # noqa: E402


def _run_get_version(src: Path) -> str:
    """Run setup.py's own get_version() (only that function: the module imports the build tools)."""
    tree = ast.parse((src / "setup.py").read_text())
    (func,) = [node for node in tree.body if isinstance(node, ast.FunctionDef) and node.name == "get_version"]
    namespace: dict = {}
    exec(compile(ast.Module(body=[func], type_ignores=[]), str(src / "setup.py"), "exec"), namespace)
    cwd = os.getcwd()
    os.chdir(src)
    try:
        return namespace["get_version"]()
    finally:
        os.chdir(cwd)


@pytest.fixture(scope="module")
def sdist_src(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("mmcv_sdist")
    try:
        sdist = bmw.download_sdist(tmp / "sdist")
    except OSError as exc:   # URLError is an OSError
        pytest.skip(f"the package index is not reachable: {exc}")
    with tarfile.open(sdist) as tar:
        tar.extractall(tmp / "src", filter="data")
    (src,) = [p for p in (tmp / "src").iterdir() if p.is_dir()]
    return src


def test_sdist_is_fetched_without_running_setup_py(sdist_src):
    assert sdist_src.name == f"mmcv-full-{bmw.MMCV_VERSION}"
    assert (sdist_src / "setup.py").exists() and (sdist_src / "mmcv" / "version.py").exists()


def test_patched_version_lookup_works_on_this_python(sdist_src):
    original = (sdist_src / "setup.py").read_text()
    if sys.version_info >= (3, 13):
        with pytest.raises(KeyError):              # the bug, as the unpatched sdist has it
            _run_get_version(sdist_src)
    bmw.patch_version_read(sdist_src / "setup.py")
    assert _run_get_version(sdist_src) == bmw.MMCV_VERSION
    (sdist_src / "setup.py").write_text(original)


def test_patch_refuses_an_unexpected_setup_py(tmp_path):
    (tmp_path / "setup.py").write_text("def get_version():\n    return '9'\n")
    with pytest.raises(bmw.BuildError, match="get_version"):
        bmw.patch_version_read(tmp_path / "setup.py")
