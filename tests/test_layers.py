"""The package's import graph: each layer imports only from the layers below it, and no circles.

Layers, lowest first (shared/STYLE.md, "Our own house"): a module may import from its own layer
and the ones below. Every import counts, including those inside functions and under
``TYPE_CHECKING``: an arrow that points up is a design smell even when Python tolerates it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "course_lib"

LAYERS: tuple[tuple[str, ...], ...] = (
    ("__init__", "io", "runs", "models", "data", "analysis", "images"),
    ("train", "cache", "config"),
    ("samples", "steps", "experiments", "plots", "widgets", "report", "exercises"),
    ("chapters", "analyse"),
    ("__main__",),
)
LAYER_OF = {part: level for level, parts in enumerate(LAYERS) for part in parts}


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in PACKAGE.rglob("*.py")}


def _imports(path: Path, modules: dict[str, Path]) -> set[str]:
    """The ``course_lib`` modules that ``path`` imports (a name imported from a package that is
    itself a submodule counts as that submodule)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("course_lib")}
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("course_lib"):
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                found.add(sub if sub in modules else node.module)
    return found


def _layer(module: str) -> int:
    parts = module.split(".")
    top = parts[1] if len(parts) > 1 else "__init__"
    if top not in LAYER_OF:
        raise AssertionError(f"{module}: add its top-level part {top!r} to LAYERS in this test")
    return LAYER_OF[top]


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {
        name: {m for m in _imports(path, modules) if m != name} for name, path in modules.items()
    }


def test_no_import_points_to_a_higher_layer():
    upward = [
        f"{a} (layer {_layer(a)}) imports {b} (layer {_layer(b)})"
        for a, targets in _graph().items()
        for b in targets
        if _layer(b) > _layer(a)
    ]
    assert not upward, "\n".join(sorted(upward))


def _ancestors_are_packages(a: str, b: str) -> bool:
    # a package's __init__ that re-exports its submodules is not a circle with them
    return b.startswith(a + ".") or a.startswith(b + ".")


def test_no_import_cycles():
    graph = _graph()
    state: dict[str, int] = {}
    cycles: list[str] = []

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(graph.get(node, ())):
            if _ancestors_are_packages(node, nxt):
                continue
            if state.get(nxt) == 1:
                cycles.append(" → ".join(stack[stack.index(nxt) :] + [nxt]))
            elif nxt not in state:
                visit(nxt, stack + [nxt])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    assert not cycles, "\n".join(cycles)


@pytest.mark.parametrize("path", sorted(PACKAGE.rglob("*.py")), ids=lambda p: p.name)
def test_no_module_is_too_long(path):
    lines = len(path.read_text().splitlines())
    assert lines <= 420, f"{path.relative_to(PACKAGE.parent)} has {lines} lines; split it"
