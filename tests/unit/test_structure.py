"""The package's structure stays what docs/development.md draws: layers as folders, each importing only the
layers below it, no import hidden inside a function, no circle of imports."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "omerowizard"

# bottom to top: a module may import its own layer and those before it (features: model and system only)
LAYERS = ("model", "system", "features", "catalogue", "state", "plan", "run", "install", "ui", "cli")
MAY_IMPORT = {
    "model": {"model"},
    "system": {"model", "system"},
    "features": {"model", "system", "features"},
    "install": {"model", "system", "install"},
}


def modules() -> dict[str, Path]:
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE.parent).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def layer(module: str) -> str:
    parts = module.split(".")
    if len(parts) == 1:
        return "model"  # the package itself: its version
    return parts[1] if parts[1] in LAYERS else "cli"  # cli, __main__


def imported(path: Path, known: set[str]) -> set[str]:
    """The package's modules that ``path`` imports at module level (``from omerowizard.x import y``: the module
    omerowizard.x.y when it is one, else omerowizard.x)."""
    out = set()
    for node in ast.parse(path.read_text()).body:
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.startswith("omerowizard")}
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("omerowizard"):
            for a in node.names:
                full = f"{node.module}.{a.name}"
                out.add(full if full in known else node.module)
    return {m for m in out if m in known and m != "omerowizard"}


def graph() -> dict[str, set[str]]:
    mods = modules()
    known = set(mods)
    return {m: imported(p, known) for m, p in mods.items()}


def test_no_import_sits_inside_a_function():
    inner = []
    for mod, path in modules().items():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                inner += [f"{path.relative_to(PACKAGE.parent)}:{x.lineno}" for x in ast.walk(node)
                          if isinstance(x, (ast.Import, ast.ImportFrom))]
    assert not inner, f"imports inside functions (each hides an arrow, often one that runs back up): {inner}"


def test_each_layer_imports_only_the_layers_below_it():
    wrong = []
    for mod, deps in graph().items():
        mine = layer(mod)
        allowed = MAY_IMPORT.get(mine, set(LAYERS[:LAYERS.index(mine) + 1]))
        wrong += [f"{mod} -> {d}" for d in sorted(deps) if layer(d) not in allowed]
    assert not wrong, "imports against the layers (" + " < ".join(LAYERS) + "):\n" + "\n".join(wrong)


def test_there_is_no_circle_of_imports():
    g = graph()
    state: dict[str, int] = {}
    stack: list[str] = []
    circles = []

    def visit(m: str) -> None:
        state[m] = 1
        stack.append(m)
        for d in sorted(g[m]):
            if state.get(d) == 1:
                circles.append(stack[stack.index(d):] + [d])
            elif d not in state:
                visit(d)
        stack.pop()
        state[m] = 2

    for m in sorted(g):
        if m not in state:
            visit(m)
    assert not circles, "circles of imports:\n" + "\n".join(" -> ".join(c) for c in circles)


def test_the_core_never_imports_a_front_end():
    front = {"ui", "cli"}
    wrong = [f"{m} -> {d}" for m, deps in graph().items() if layer(m) not in front for d in deps if layer(d) in front]
    assert not wrong, wrong
