"""The repository holds the product only: no working notes or helper instructions at its root."""

from __future__ import annotations

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# the project's own files at the repository root (folders are the product's: package, tests, docs...)
OWN = {"README.md", "LICENSE", "pyproject.toml", "mkdocs.yml", ".gitignore", "CHANGELOG.md", "CONTRIBUTING.md",
       "SECURITY.md"}


def test_the_repository_root_holds_only_the_projects_own_files():
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    at_root = {p for p in tracked if "/" not in p}
    assert at_root <= OWN, f"files at the repository root that are not the project's own: {sorted(at_root - OWN)}"
