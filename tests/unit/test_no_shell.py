"""No shell anywhere: every process is started from an argument list."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[2] / "omerowizard"
COLLECTION = Path(__file__).resolve().parents[2] / "ansible_collections"  # the Ansible module runs as root too
FORBIDDEN_CALLS = {("os", "system"), ("os", "popen"), ("subprocess", "getoutput"), ("subprocess", "getstatusoutput")}


def _calls(tree: ast.AST):
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            yield node


def test_no_shell_in_the_package():
    offenders = []
    for path in sorted([*PACKAGE.rglob("*.py"), *COLLECTION.rglob("*.py")]):
        tree = ast.parse(path.read_text(), str(path))
        for call in _calls(tree):
            f = call.func
            if isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name) and (f.value.id, f.attr) in FORBIDDEN_CALLS:
                offenders.append(f"{path.name}:{call.lineno}: {f.value.id}.{f.attr}")
            for kw in call.keywords:
                if kw.arg in {"shell", "use_unsafe_shell"} and not (isinstance(kw.value, ast.Constant) and kw.value.value is False):
                    offenders.append(f"{path.name}:{call.lineno}: shell=")
    assert offenders == []


def test_the_scan_would_catch_a_shell_call(tmp_path):
    bad = ast.parse("import subprocess, os\nsubprocess.run('id', shell=True)\nos.system('id')\n")
    found = [c for c in _calls(bad)
             if any(k.arg == "shell" for k in c.keywords)
             or (isinstance(c.func, ast.Attribute) and (getattr(c.func.value, "id", ""), c.func.attr) in FORBIDDEN_CALLS)]
    assert len(found) == 2
