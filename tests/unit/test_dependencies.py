"""The runtime dependencies in pyproject.toml are exactly the distributions the package imports: none
missing (a wheel that imports what it does not declare breaks when a dependency stops pulling it in)
and none extra (a tool only the tests use belongs in the test extras)."""

from __future__ import annotations

import ast
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "omerowizard"


def pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def imported_modules() -> dict[str, list[str]]:
    """Every top-level module that a module of the package imports (code only: the scripts the package
    hands to another interpreter as strings are not its imports), with where each is imported."""
    found: dict[str, list[str]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "lazy"
                  and node.args and isinstance(node.args[0], ast.Constant)):  # model/lazy.py: imported when used
                names = [node.args[0].value]
            else:
                continue
            for name in names:
                found.setdefault(name.split(".")[0], []).append(f"{path.relative_to(ROOT)}:{node.lineno}")
    return found


def third_party() -> dict[str, list[str]]:
    return {m: where for m, where in imported_modules().items()
            if m not in sys.stdlib_module_names and m != "omerowizard"}


def test_the_runtime_dependencies_are_what_the_package_imports():
    distributions = packages_distributions()
    unmapped = {m: where for m, where in third_party().items() if m not in distributions}
    assert not unmapped, f"imported, but no installed distribution provides them: {unmapped}"
    imported = {canonicalize_name(d): m for m, where in third_party().items() for d in distributions[m]}
    declared = {canonicalize_name(Requirement(r).name) for r in pyproject()["project"]["dependencies"]}
    missing = {d: third_party()[m] for d, m in imported.items() if d not in declared}
    assert not missing, f"imported by the package but not in [project] dependencies: {missing}"
    unused = declared - set(imported)
    assert not unused, f"in [project] dependencies but the package never imports them (test extras?): {unused}"


def test_the_test_extras_hold_the_tools_only_the_tests_use():
    test = {canonicalize_name(Requirement(r).name) for r in pyproject()["project"]["optional-dependencies"]["test"]}
    assert "pexpect" in test  # tests/e2e/test_plain_pty.py and test_omero_install.py drive a terminal with it
    assert "pexpect" not in third_party()
