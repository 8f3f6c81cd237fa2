"""The house's layers, read from the code's own imports (every import, at module level or
inside a function): each layer imports only its own and lower layers, no modules import
each other in a loop, nothing outside ``suite.cli`` imports the command line, and no
module takes another module's private name. docs/architecture.md draws the same layers.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("suite", "tasks", "baselines")

# Lowest first. A module's layer is that of the longest prefix of its dotted name listed here.
LAYERS = {
    "suite.core": 0, "suite.kernels": 0,  # contracts, configuration, the run; shared numerical kernels
    "suite.hamiltonian": 1, "baselines": 1, "tasks": 1,  # the registered entries
    "suite.analysis": 2,  # reading records: statistics, plots, reports, exporters
    "suite.tuning": 3,  # Optuna studies
    "suite.studies": 4,  # the experiments: paper tables, sanity, tuning tables, gradient study
    "suite.cli": 5,  # the command line and the launcher, on top
}
TOP = max(LAYERS.values())
FACADE = "suite"  # suite/__init__.py: the Python API, which imports the entries to register them


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules() -> dict[str, Path]:
    return {module_name(p): p for pkg in PACKAGES for p in sorted((ROOT / pkg).rglob("*.py"))}


def layer(name: str) -> int | None:
    best = max((prefix for prefix in LAYERS if name == prefix or name.startswith(prefix + ".")),
               key=len, default=None)
    return None if best is None else LAYERS[best]


def imports(path: Path, known: dict[str, Path]) -> list[tuple[str, list[str], int]]:
    """``(module imported, names taken from it, line)`` for every import of the project's own modules."""
    found = []
    here = module_name(path)
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(a.name, [], node.lineno) for a in node.names if a.name.split(".")[0] in PACKAGES]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = here.split(".")[: len(here.split(".")) - node.level + (path.name == "__init__.py")]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            if module.split(".")[0] not in PACKAGES:
                continue
            for alias in node.names:  # `from pkg import module` imports the module
                sub = f"{module}.{alias.name}"
                found.append((sub, [], node.lineno) if sub in known else (module, [alias.name], node.lineno))
    return found


def edges() -> dict[str, set[str]]:
    known = modules()
    graph: dict[str, set[str]] = {name: set() for name in known}
    for name, path in known.items():
        for target, _, _ in imports(path, known):
            if target in known and target != name:
                graph[name].add(target)
    return graph


def test_every_module_has_a_layer():
    unplaced = [m for m in modules() if m != FACADE and layer(m) is None]
    assert not unplaced, f"modules in no layer (add them to LAYERS): {unplaced}"


def test_layers_only_look_down():
    upward = []
    for source, targets in edges().items():
        if source == FACADE:
            continue
        for target in targets:
            if target == FACADE:  # the facade imports every entry: only the top may lean on it
                if layer(source) < TOP:
                    upward.append(f"{source} imports the facade `suite` (import the module it needs)")
            elif layer(target) > layer(source):
                upward.append(f"{source} (layer {layer(source)}) imports {target} (layer {layer(target)})")
    assert not upward, "imports running up the layers:\n" + "\n".join(sorted(upward))


def test_no_import_circles():
    graph = edges()
    index, low, stack, on_stack, circles, counter = {}, {}, [], set(), [], [0]

    def visit(v):  # Tarjan's strongly connected components
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
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
                circles.append(sorted(component))

    for v in graph:
        if v not in index and v != FACADE:
            visit(v)
    circles = [c for c in circles if FACADE not in c]
    assert not circles, f"modules importing each other in a loop: {circles}"


def test_nothing_below_the_command_line_imports_it():
    offenders = [f"{s} -> {t}" for s, ts in edges().items() for t in ts
                 if t.startswith("suite.cli") and not s.startswith("suite.cli")]
    assert not offenders, offenders


def test_no_private_name_crosses_a_module():
    known = modules()
    offenders = []
    for name, path in known.items():
        for target, names, line in imports(path, known):
            offenders += [f"{name}:{line} takes {target}.{n}" for n in names
                          if n.startswith("_") and not n.startswith("__") and target != name]
    assert not offenders, offenders


@pytest.mark.parametrize("broken", ["up", "circle"])
def test_the_checks_catch_what_they_name(broken, monkeypatch):
    """The rules above fail on an import that breaks them (a check that cannot fail is no check)."""
    real = edges()
    if broken == "up":
        real["suite.core.records"] = real["suite.core.records"] | {"suite.analysis.report"}
    else:
        real["suite.core.config"] = real["suite.core.config"] | {"suite.core.build"}
    monkeypatch.setitem(globals(), "edges", lambda: real)
    check = test_layers_only_look_down if broken == "up" else test_no_import_circles
    with pytest.raises(AssertionError):
        check()
