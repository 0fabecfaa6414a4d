"""The package-level import graph of ``omnirt`` has no cycle and follows the layers below.

A unit is a sub-package (``omnirt/api``) or a top-level module (``omnirt/settings.py``). Every import statement
counts, module-level or inside a function (either binds the two units together), ``TYPE_CHECKING`` blocks included.
A unit may import units of its own layer or lower ones, never higher ones; ``omnirt/__init__.py`` (the lazy facade
of the Python API and ``celery -A omnirt``) is an entry point, and importing its metadata (``__version__``) binds
nothing. The layers, from the bottom:

0. ``contracts``, ``settings``, ``keys``, ``tracing``: shared types and errors, every ``OMNIRT_*`` option, every Redis
   key, traces and structured logs.
1. ``runtime`` (backends, dtypes, weights, the warm cache, resident model servers), ``events`` (job event streams,
   session channels), ``requests``, ``tracing`` (OpenTelemetry spans, traceparent propagation, the log context).
2. ``registry`` (specs, ``@register_model``, validation; it imports the model families by name, never by an import
   statement), ``jobs`` (job records and stores, the worker registry, stage statistics).
3. ``avatars``: the avatar domain (prepared avatars, session names and admission, the frame scheduler).
4. ``models`` (the families, which register into the registry), ``backplane`` (the shared state a process uses;
   its dispatcher is handed in by whoever builds it).
5. ``workers``: the engine, job execution, sessions, heartbeats, the reaper, the embedded worker threads, the Celery
   bootstep (whose backplane and queue routing :mod:`omnirt.tasks.app` hands in).
6. ``tasks``: the Celery app, queue routing, dispatchers and each process's backplane, the task definitions.
7. ``telemetry``: metrics read from the backplane.
8. ``api``: the Flask front end.
9. Entry points: ``serve``, ``python_api``, ``cli``, ``bench``, ``profiles`` and the package itself.

So a request flows API -> registry -> tasks -> workers -> models -> events, each step calling downward. The API never
imports torch (it also never does at run time: ``tests/test_registry.py``); model code never imports Flask.
"""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "omnirt"

LAYERS: list[set[str]] = [
    {"contracts", "settings", "keys", "tracing"},
    {"runtime", "events", "requests", "tracing"},
    {"registry", "jobs"},
    {"avatars"},
    {"models", "backplane"},
    {"workers"},
    {"tasks"},
    {"telemetry"},
    {"api"},
    {"serve", "python_api", "cli", "bench", "profiles", "omnirt"},
]
LAYER = {unit: level for level, units in enumerate(LAYERS) for unit in units}

#: Attributes of the package itself that are no unit (set before anything else runs).
PACKAGE_METADATA = {"__version__"}

Edges = dict[str, dict[str, list[str]]]  # importer unit -> imported unit -> ["module:line", ...]


def _units() -> set[str]:
    return {path.stem for path in ROOT.glob("*.py") if path.stem != "__init__"} | {
        path.name for path in ROOT.iterdir() if path.is_dir() and any(path.glob("*.py"))
    }


def _module(path: Path) -> tuple[str, bool]:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    is_package = parts[-1] == "__init__"
    return ".".join(parts[:-1] if is_package else parts), is_package


def _unit_of(module: str, units: set[str]) -> str | None:
    parts = module.split(".")
    if parts[0] != "omnirt":
        return None
    if len(parts) == 1:
        return "omnirt"
    return parts[1] if parts[1] in units else None


def _imported(node: ast.AST, module: str, is_package: bool) -> list[str]:
    """The modules an import statement names (``from omnirt import x`` names ``omnirt.x``)."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if not isinstance(node, ast.ImportFrom):
        return []
    if node.level:
        base = module.split(".") if is_package else module.split(".")[:-1]
        base = base[: len(base) - (node.level - 1)]
        source = ".".join([*base, *([node.module] if node.module else [])])
    else:
        source = node.module or ""
    if source == "omnirt":
        return [f"omnirt.{alias.name}" for alias in node.names if alias.name not in PACKAGE_METADATA]
    return [source]


def import_graph() -> tuple[Edges, dict[str, set[str]]]:
    """Unit -> unit edges with where each import is, and the third-party top-level modules each unit imports."""
    units = _units()
    edges: Edges = defaultdict(lambda: defaultdict(list))
    external: dict[str, set[str]] = defaultdict(set)
    for path in sorted(ROOT.rglob("*.py")):
        module, is_package = _module(path)
        source_unit = _unit_of(module, units)
        assert source_unit is not None, path
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            for name in _imported(node, module, is_package):
                target = _unit_of(name, units)
                if target is None:
                    if not name.startswith("omnirt"):
                        external[source_unit].add(name.split(".")[0])
                elif target != source_unit:
                    edges[source_unit][target].append(f"{module}:{node.lineno}")
    return edges, external


def _cycles(edges: Edges) -> list[list[str]]:
    """Strongly connected components with more than one unit (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(unit: str) -> None:
        index[unit] = low[unit] = len(index)
        stack.append(unit)
        on_stack.add(unit)
        for target in edges.get(unit, {}):
            if target not in index:
                visit(target)
                low[unit] = min(low[unit], low[target])
            elif target in on_stack:
                low[unit] = min(low[unit], index[target])
        if low[unit] == index[unit]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == unit:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for unit in sorted(set(edges) | {target for targets in edges.values() for target in targets}):
        if unit not in index:
            visit(unit)
    return found


def _closure(edges: Edges, start: str) -> set[str]:
    seen, pending = set(), [start]
    while pending:
        unit = pending.pop()
        for target in edges.get(unit, {}):
            if target not in seen:
                seen.add(target)
                pending.append(target)
    return seen


def test_package_imports_have_no_cycle() -> None:
    edges, _ = import_graph()
    cycles = _cycles(edges)
    detail = [
        f"{source} -> {target} ({', '.join(where[:3])})"
        for cycle in cycles
        for source in cycle
        for target, where in sorted(edges[source].items())
        if target in cycle
    ]
    assert cycles == [], "package import cycles:\n" + "\n".join(detail)


def test_every_unit_has_a_layer_and_imports_only_its_own_or_lower_layers() -> None:
    edges, _ = import_graph()
    unplaced = sorted((_units() | {"omnirt"}) - set(LAYER))
    assert unplaced == [], f"place {unplaced} in a layer of tests/test_architecture.py (its docstring too)"
    upward = [
        f"{source} (layer {LAYER[source]}) imports {target} (layer {LAYER[target]}): {', '.join(where[:3])}"
        for source, targets in sorted(edges.items())
        for target, where in sorted(targets.items())
        if LAYER[target] > LAYER[source]
    ]
    assert upward == [], "imports against the layering:\n" + "\n".join(upward)


def test_the_api_never_imports_torch_and_model_code_never_imports_flask() -> None:
    edges, external = import_graph()
    assert "torch" not in external["api"]
    flask_units = {unit for unit, names in external.items() if "flask" in names or "flask_sock" in names}
    assert "flask" not in external["models"]
    reached = _closure(edges, "models") & flask_units
    assert reached == set(), f"model code reaches Flask through {sorted(reached)}"


def test_the_graph_sees_module_level_and_function_level_imports(tmp_path: Path) -> None:
    """The checker itself: both kinds of import count, relative imports resolve, metadata binds nothing."""
    source = (
        "from omnirt import __version__, keys\n"
        "from . import jobs\n"
        "def f():\n"
        "    from omnirt.workers.engine import Engine\n"
        "    import torch\n"
    )
    tree = ast.parse(source)
    names = [name for node in ast.walk(tree) for name in _imported(node, "omnirt.api.x", False)]
    assert names == ["omnirt.keys", "omnirt.api", "omnirt.workers.engine", "torch"]
