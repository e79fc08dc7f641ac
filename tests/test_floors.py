"""The engine reads top-down: each floor of ``compression/`` imports only floors below it, and no modules
import each other in a circle (function-level imports count: a lazy import is still a dependency)."""

import ast
from pathlib import Path

import compression

ROOT = Path(compression.__file__).parent

# Lowest first. The top-level modules are the shared language (core) except the entry points.
FLOORS = ["core", "inputs", "tflite", "measure", "techniques", "views", "store", "run", "explore", "entry"]
ENTRY = {"compression", "compression.cli", "compression.__main__"}


def module_name(path: Path) -> str:
    parts = ("compression", *path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def floor_of(module: str) -> str:
    if module in ENTRY:
        return "entry"
    parts = module.split(".")
    return parts[1] if len(parts) > 2 or (ROOT / parts[1]).is_dir() else "core"


def engine_imports(path: Path, modules: set[str]) -> set[str]:
    """The compression modules ``path`` imports, at any depth of its code."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("compression")}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            elif (node.module or "").startswith("compression"):
                target = node.module
            else:
                continue
            # `from .. import _tf` imports the module compression._tf, not the package
            submodules = {f"{target}.{a.name}" for a in node.names} & modules
            found |= submodules or {target}
    return {m for m in found if m != name}


def import_graph() -> dict[str, set[str]]:
    paths = sorted(ROOT.rglob("*.py"))
    modules = {module_name(p) for p in paths}
    return {module_name(p): engine_imports(p, modules) & modules for p in paths}


def upward_imports(graph: dict[str, set[str]]) -> list[str]:
    rank = {floor: i for i, floor in enumerate(FLOORS)}
    return [f"{m} ({floor_of(m)}) imports {t} ({floor_of(t)})"
            for m, targets in sorted(graph.items()) for t in sorted(targets)
            if rank[floor_of(t)] > rank[floor_of(m)]]


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_every_module_is_on_a_known_floor():
    graph = import_graph()
    assert {floor_of(m) for m in graph} == set(FLOORS)
    assert floor_of("compression.run.recipe") == "run" and floor_of("compression.config") == "core"


def test_imports_run_down_the_floors():
    assert upward_imports(import_graph()) == []


def test_no_import_cycle():
    graph = import_graph()
    assert cycles(graph) == []


def test_the_checks_catch_an_upward_import_and_a_circle():
    graph = import_graph()
    graph["compression.inputs.data"] = graph["compression.inputs.data"] | {"compression.run.recipe"}
    assert upward_imports(graph) == ["compression.inputs.data (inputs) imports compression.run.recipe (run)"]
    graph["compression.run.recipe"] = graph["compression.run.recipe"] | {"compression.inputs.data"}
    assert ["compression.inputs.data", "compression.run.recipe"] in [
        [m for m in c if m in ("compression.inputs.data", "compression.run.recipe")] for c in cycles(graph)
    ]


def test_each_floor_says_what_it_owns_and_may_import():
    for floor in FLOORS:
        if floor in ("core", "entry"):
            continue
        doc = ast.get_docstring(ast.parse((ROOT / floor / "__init__.py").read_text())) or ""
        assert "may import" in doc.lower(), floor


def test_job_names_recorded_before_the_floors_still_load():
    from compression.explore.search import run_search
    from compression.run.recipe import run_recipe
    from compression.run.worker import load_job
    from compression.store.schema import kind_of

    assert load_job("compression.recipes:run_recipe") is run_recipe
    assert load_job("compression.search:run_search") is run_search
    assert kind_of("compression.sensitivity:run_sensitivity") == "sensitivity"


def test_the_public_names_stay_importable_from_the_package():
    # users' scripts write `from compression import run_recipe, Recipe, Store, ...`: each resolves after the move
    missing = [name for name in compression.__all__ if getattr(compression, name, None) is None]
    assert missing == []
    assert compression.run_recipe.__module__ == "compression.run.recipe"
