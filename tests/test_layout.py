"""The package layout holds: no import cycles, and each wing imports only the wings below it.

The graph is read from the source (every ``import`` statement, also those inside functions),
so a lazy import cannot hide a cycle.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import ahazero
import rewards

#: What each wing may import besides itself (see the wings' ``__init__`` docstrings).
#: ``None`` is the top: commands that may use everything.
ALLOWED: dict[str, set[str] | None] = {
    "rewards": set(),
    "ahazero.cache": set(),
    "ahazero.tasks": {"ahazero.cache", "rewards"},
    "ahazero.config": {"ahazero.tasks", "ahazero.cache", "rewards"},
    "ahazero.observe": {"ahazero.config", "ahazero.tasks", "ahazero.cache", "rewards"},
    "ahazero.models": {"ahazero.config", "ahazero.tasks", "ahazero.cache"},
    "ahazero.rollout": {"ahazero.models", "ahazero.config", "ahazero.tasks", "ahazero.cache"},
    "ahazero.training": {"ahazero.rollout", "ahazero.models", "ahazero.observe", "ahazero.config",
                         "ahazero.tasks", "ahazero.cache", "rewards"},
    "ahazero.experiments": {"ahazero.training", "ahazero.rollout", "ahazero.models", "ahazero.observe",
                            "ahazero.config", "ahazero.tasks", "ahazero.cache", "rewards"},
    # stages chain the commands (train, sample, sft, eval): everything below, and evaluate for each stage
    "ahazero.stages": {"ahazero.training", "ahazero.rollout", "ahazero.models", "ahazero.observe", "ahazero.config",
                       "ahazero.tasks", "ahazero.cache", "rewards", "ahazero.evaluate"},
    "ahazero.evaluate": None,
    "ahazero": None,
}


def _modules() -> dict[str, Path]:
    found = {}
    for package in (ahazero, rewards):
        root = Path(package.__file__).parent
        for path in root.rglob("*.py"):
            parts = list(path.relative_to(root.parent).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            found[".".join(parts)] = path
    return found


MODULES = _modules()


def _resolve(name: str) -> str | None:
    """The project module an imported name lives in (``a.b.c`` -> ``a.b`` when c is an attribute)."""
    while name and name not in MODULES:
        name = name.rpartition(".")[0]
    return name or None


def _imports(module: str) -> set[str]:
    tree = ast.parse(MODULES[module].read_text(), filename=str(MODULES[module]))
    package = module if MODULES[module].name == "__init__.py" else module.rpartition(".")[0]
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            names = [f"{base}.{alias.name}" for alias in node.names] + [base]
        else:
            continue
        for name in names:
            target = _resolve(name)
            if target and target != module:
                out.add(target)
    return out


GRAPH = {module: _imports(module) for module in MODULES}


def _wing(module: str) -> str:
    best = max((w for w in ALLOWED if module == w or module.startswith(w + ".")), key=len)
    return best


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

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
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    for v in graph:
        if v not in index:
            visit(v)
    return out


def test_the_graph_is_read_from_the_source():
    # a module known to import another lazily, inside a function
    assert "ahazero.training.assemble" in GRAPH["ahazero.cli"]
    assert "rewards.sandbox" in GRAPH["rewards.accuracy"]


def test_no_import_cycles():
    assert _cycles(GRAPH) == []


def test_cycle_finder_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


@pytest.mark.parametrize("module", sorted(MODULES))
def test_wings_import_only_downwards(module):
    wing = _wing(module)
    allowed = ALLOWED[wing]
    if allowed is None:
        return
    bad = sorted(
        target for target in GRAPH[module]
        if target != "ahazero" and _wing(target) != wing and _wing(target) not in allowed
    )
    assert bad == [], f"{module} (wing {wing}) imports {bad}; it may import {sorted(allowed) or 'nothing'}"


@pytest.mark.parametrize("wing", [w for w in ALLOWED if w.startswith("ahazero.") and MODULES[w].name == "__init__.py"])
def test_every_wing_says_what_it_does_and_may_import(wing):
    doc = ast.get_docstring(ast.parse(MODULES[wing].read_text())) or ""
    assert len(doc.splitlines()) >= 2, f"{wing}/__init__.py needs a docstring"
    assert "import" in doc.lower(), f"{wing}/__init__.py should say what the wing may import"


def test_no_module_is_over_500_lines():
    long = {m: n for m, p in MODULES.items() if (n := len(p.read_text().splitlines())) > 500}
    assert long == {}
