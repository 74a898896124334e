"""Every test is hermetic: omerowizard's own files (state, answers, logs) go below the test's
temporary directory, never the real user's (the e2e Deployment uses the same folder)."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _omerowizard_home(tmp_path, monkeypatch):
    monkeypatch.setenv("OMEROWIZARD_HOME", str(tmp_path / "home"))
    return tmp_path / "home"
