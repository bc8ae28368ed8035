"""harness/paths.py is the one place that reads the path variables, and the README names every one of them."""
import ast
import re

from harness import paths
from harness.paths import REPO_ROOT

PATH_VARIABLES = {"REPRO_HOME", "XDG_CACHE_HOME", "REPRO_DATA", "REPRO_RUNS", "REPRO_REPRODUCTIONS",
                  "REPRO_DATASETS", "REPRO_EXPECTED", "REPRO_MMSEG_ZOO"}


def _environment_reads(tree) -> set[str]:
    """Names read through os.environ.get(...), os.environ[...], os.getenv(...) in one module."""
    names = set()
    for node in ast.walk(tree):
        key = None
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.args \
                and node.func.attr in ("get", "getenv") and isinstance(node.args[0], ast.Constant):
            key = node.args[0].value
        elif isinstance(node, ast.Subscript) and isinstance(node.slice, ast.Constant) \
                and isinstance(node.value, ast.Attribute) and node.value.attr == "environ":
            key = node.slice.value
        if isinstance(key, str):
            names.add(key)
    return names


def test_only_paths_reads_path_variables():
    readers = {}
    for module in sorted((REPO_ROOT / "harness").rglob("*.py")):
        found = _environment_reads(ast.parse(module.read_text())) & PATH_VARIABLES
        if found:
            readers[str(module.relative_to(REPO_ROOT))] = found
    assert set(readers) == {"harness/paths.py"}, readers


def test_every_path_variable_is_documented():
    readme = (REPO_ROOT / "README.md").read_text()
    line = readme[readme.index("Where files live"):].split("\n\n")[0]
    assert set(re.findall(r"[A-Z_]{6,}", line)) >= PATH_VARIABLES
    assert all(name in paths.__doc__ for name in PATH_VARIABLES)


def test_registry_folders_follow_their_variables(tmp_path, monkeypatch):
    from harness.registry import datasets, folders, zoo
    from harness.verify import expected

    for name in ("REPRO_REPRODUCTIONS", "REPRO_DATASETS", "REPRO_EXPECTED", "REPRO_MMSEG_ZOO"):
        monkeypatch.setenv(name, str(tmp_path / name.lower()))
    assert folders.reproductions_root() == tmp_path / "repro_reproductions"
    assert datasets.datasets_root() == tmp_path / "repro_datasets"
    assert expected.expected_dir() == tmp_path / "repro_expected"
    assert zoo.zoo_root() == tmp_path / "repro_mmseg_zoo"
    monkeypatch.delenv("REPRO_EXPECTED")
    assert expected.expected_dir() == REPO_ROOT / "expected"
