"""Upgrading OMERO.web for real (issue 16): a deployment on an older omero-web from the registry, in
a virtual environment of its own (never the shared venv3), is upgraded to the newest release by
`omerowizard apply` with `omero.web_version`, then `omerowizard rollback` reinstalls the older one;
each ends with the login page answering."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from omerowizard.system.distributions import packages as installed  # read from site-packages: no interpreter runs
from tests import parts
from tests.e2e.conftest import E2E_ROOT, USER, WHEEL_CACHE

OLD = "5.29.2"  # before 5.30 and 5.31, whose notes ask for the session store to be cleared; Django 4.2
UPGRADE_VENV = E2E_ROOT / "venv-upgrade"


@pytest.fixture(scope="module")
def newest(omero_install) -> str:
    """An environment with omero-web OLD (zeroc-ice from the cached wheel); returns the newest release
    (the one install-omero put into the shared venv3)."""
    proc = subprocess.run([sys.executable, "-m", "omerowizard", "install-omero", "--user", USER,
                           "--venv", str(UPGRADE_VENV), "--omerodir", str(E2E_ROOT / "OMERO.web-upgrade"),
                           "--omero-web-version", OLD],
                          env={**os.environ, "OMEROWIZARD_WHEEL_CACHE": WHEEL_CACHE},
                          capture_output=True, text=True, timeout=1800)
    if proc.returncode != 0:
        pytest.fail(f"missing part: omero-web {OLD} could not be installed:\n{proc.stdout[-3000:]}\n"
                    f"{proc.stderr[-3000:]}", pytrace=False)
    assert installed(UPGRADE_VENV)["omero-web"] == OLD
    return installed(omero_install)["omero-web"]


def test_upgrade_to_the_newest_release_then_rollback(deployment, newest):
    assert newest != OLD
    port = parts.free_port()
    base = {"omero": {"venv": str(UPGRADE_VENV)}, "web_server": {"port": port},
            "sessions": {"clearsessions": "off"}}
    first = deployment.cli("apply", str(deployment.answers_file(base, name="old.yml")))
    assert first.returncode == 0, first.stdout + first.stderr
    assert parts.http_get(deployment.login_url()).status == 200

    wanted = {**base, "omero": {**base["omero"], "web_version": newest}}
    dry = deployment.cli("apply", "--dry-run", str(deployment.answers_file(wanted, name="new.yml")))
    assert dry.returncode == 0, dry.stdout + dry.stderr
    assert installed(UPGRADE_VENV)["omero-web"] == OLD  # pip's dry run wrote nothing
    for line in (f"upgrade omero-web {OLD} -> {newest}", f"omero-web: {OLD} -> {newest}", "django: 4.2.",
                 "5.30 removed Pickle sessions", "5.31 requires Django 5.2", "the session store is cleared",
                 "never a mere reload"):
        assert line in dry.stdout, (line, dry.stdout)

    up = deployment.cli("apply", str(deployment.answers_file(wanted, name="new.yml")), timeout=1200)
    assert up.returncode == 0, up.stdout + up.stderr
    assert "==> clear the session store" in up.stdout and "==> omero web restart" in up.stdout
    after = installed(UPGRADE_VENV)
    assert after["omero-web"] == newest and after["django"].startswith("5.2"), after
    assert parts.http_get(deployment.login_url()).status == 200

    back = deployment.cli("rollback", "--user", USER, "--venv", str(UPGRADE_VENV),
                          "--omerodir", str(deployment.omerodir), timeout=1200)
    assert back.returncode == 0, back.stdout + back.stderr
    before = installed(UPGRADE_VENV)
    assert before["omero-web"] == OLD and before["django"].startswith("4.2"), before
    assert f"omero-web=={OLD}" in back.stdout
    assert parts.http_get(deployment.login_url()).status == 200


def test_a_release_pip_cannot_install_is_a_bad_answer(deployment, newest):
    wanted = {"omero": {"venv": str(UPGRADE_VENV), "web_version": "5.0.99"}}
    proc = deployment.cli("apply", str(deployment.answers_file(wanted, name="bad.yml")))
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "omero.web_version: '5.0.99' cannot be installed" in proc.stderr
    assert not deployment.config_xml.exists()  # nothing changed
