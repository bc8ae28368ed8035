"""Imports go one way: every module of harness/ read with `ast` (imports inside functions included, `from . import
x` resolved), no cycle between harness modules, and no import from a lower layer to a higher one."""
from __future__ import annotations

import ast
from pathlib import Path

HARNESS = Path(__file__).resolve().parents[1] / "harness"

LEAVES = ("harness.errors", "harness.fileio", "harness.clock")
# the run folder's vocabulary, which the engine reads job.json and writes engine.json with
RUN_VOCABULARY = ("harness.run.folder", "harness.run.shape", "harness.run.options", "harness.run.job",
                  "harness.run.record")
# (importer prefix, forbidden prefixes, allowed exceptions)
FORBIDDEN = [
    ("harness.run.folder", ("harness.",), LEAVES),
    ("harness.run.shape", ("harness.",), LEAVES),
    ("harness.engine", ("harness.run", "harness.cli", "harness.verify", "harness.report", "harness.batch"),
     RUN_VOCABULARY),
    ("harness.run", ("harness.cli", "harness.batch", "harness.report"), ()),
    ("harness.batch", ("harness.cli",), ()),
    ("harness.verify", ("harness.cli",), ()),
    ("harness.report", ("harness.cli",), ()),
    ("harness.fetch", ("harness.cli",), ()),
    ("harness.registry", ("harness.cli", "harness.run", "harness.batch"), ()),
]


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(HARNESS.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(HARNESS.rglob("*.py"))}


def _imports(name: str, path: Path, known: set[str]) -> set[str]:
    """The harness modules `name` imports anywhere in its file (functions included)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            # `from pkg import mod` imports the module pkg.mod; `from mod import name`, the module mod
            targets = [f"{base}.{a.name}" if f"{base}.{a.name}" in known else base for a in node.names]
        else:
            continue
        found |= {t for t in targets if t in known and t != name}
    return found


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    known = set(modules)
    return {name: _imports(name, path, known) for name, path in modules.items()}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def _under(name: str, prefix: str) -> bool:
    return name == prefix.rstrip(".") or name.startswith(prefix if prefix.endswith(".") else prefix + ".")


def test_the_graph_is_read_with_function_level_and_relative_imports():
    graph = _graph()
    assert "harness.run.record" in graph["harness.engine.entry"]          # inside main()
    assert "harness.run.folder" in graph["harness.run.finalize"]
    assert len(graph) > 50


def test_no_import_cycle_between_harness_modules():
    cycles = _cycles(_graph())
    assert not cycles, "import cycles: " + "; ".join(" <-> ".join(c) for c in cycles)


def test_no_import_from_a_lower_layer_to_a_higher_one():
    graph = _graph()
    wrong = []
    for name, targets in graph.items():
        if name in LEAVES:
            wrong += [f"{name} -> {t}" for t in targets if t != "harness.errors"]
        for importer, forbidden, allowed in FORBIDDEN:
            if not _under(name, importer):
                continue
            wrong += [f"{name} -> {t}" for t in targets
                      if any(_under(t, f) for f in forbidden) and t not in allowed]
        if not _under(name, "harness.cli") and name != "harness.__main__":
            wrong += [f"{name} -> {t} (only the CLI imports the CLI)" for t in targets if _under(t, "harness.cli")]
    assert not wrong, "imports against the layers: " + "; ".join(sorted(set(wrong)))
