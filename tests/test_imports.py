"""The package has no import cycles: modules depend downwards only (see the layout in the docs).

Every ``import`` and ``from ... import`` statement of every module under ``eventsim/`` counts,
including those inside functions (a lazy import hides a cycle; it does not remove it).
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "eventsim"


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _resolve(name: str, modules: set[str]) -> str | None:
    """The module (not package attribute) that ``name`` refers to, or None if outside the package."""
    while name and name not in modules:
        name = name.rpartition(".")[0]
    return name or None


def import_graph() -> dict[str, set[str]]:
    files = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    modules = set(files)
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for mod, path in files.items():
        is_pkg = path.name == "__init__.py"
        package = mod if is_pkg else mod.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            targets = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")
                    base = base[:len(base) - (node.level - 1)]
                    prefix = ".".join(base + ([node.module] if node.module else []))
                else:
                    prefix = node.module or ""
                targets = [f"{prefix}.{a.name}" for a in node.names] + [prefix]
            for target in targets:
                dep = _resolve(target, modules)
                # a package's __init__ re-exports its modules: importing from it is not a cycle of them
                if dep and dep != mod and not (is_pkg and dep.startswith(mod + ".")):
                    graph[mod].add(dep)
    return graph


def find_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
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
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_graph_sees_known_imports():
    graph = import_graph()
    assert "eventsim.network" in graph["eventsim.engines.stepped"]
    assert "eventsim.errors" in graph["eventsim.cli"]


def test_cycle_finder_finds_a_planted_cycle():
    assert find_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_cycles():
    cycles = find_cycles(import_graph())
    assert not cycles, "import cycles: " + "; ".join(" <-> ".join(c) for c in cycles)


def test_no_engine_imports_the_other():
    """The engines share parameters, input checks and the per-layer forward through their own
    modules (engines/params.py, inputs.py, forward.py), never through each other."""
    graph = import_graph()
    assert "eventsim.engines.stepped" not in graph["eventsim.engines.asynchronous"]
    assert "eventsim.engines.asynchronous" not in graph["eventsim.engines.stepped"]
    shared = {"eventsim.engines.params", "eventsim.engines.forward", "eventsim.engines.inputs"}
    for engine in ("eventsim.engines.stepped", "eventsim.engines.asynchronous"):
        seen, todo = set(), [engine]
        while todo:                      # what the engine imports, directly or through its own modules
            for dep in graph[todo.pop()] - seen:
                seen.add(dep)
                todo.append(dep)
        assert shared <= seen, shared - seen


def test_kernel_cache_follows_every_kernel_source(tmp_path):
    """Numba keys a cached kernel by its own file only; eventsim's cache folder is named by a hash
    of every kernel module, so an edit in a callee's file (or a layout constant) starts afresh."""
    import shutil

    import numba

    from eventsim import config
    assert numba.config.CACHE_DIR == str(config.kernel_cache_dir())
    assert config.kernel_cache_dir().name == f"eventsim-{config.kernel_source_hash()}"
    copy = tmp_path / "kernels"
    shutil.copytree(config.KERNELS_DIR, copy, ignore=shutil.ignore_patterns("__pycache__"))
    before = config.kernel_source_hash(copy)
    assert before == config.kernel_source_hash()
    layout = copy / "async_layout.py"
    layout.write_text(layout.read_text() + "\n# an edit in a file other kernels import\n")
    assert config.kernel_source_hash(copy) != before
