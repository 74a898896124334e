"""OMEROweb.log belongs to the OMERO.web user: root shows its last lines without following a link or waiting for a
FIFO there, and a FIFO there stops a run before anything changes (every OMERO.web process would block on it)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from omerowizard.plan.changes import web as apply
from omerowizard.run import preflight
from omerowizard.system.omero import OmeroTarget

NOBODY = 65534


@pytest.fixture
def target(tmp_path):
    if os.geteuid() != 0:
        pytest.fail("these tests run as root (they prove what root reads in another user's directory)", pytrace=False)
    omerodir = tmp_path / "OMERO.web"
    (omerodir / "var" / "log").mkdir(parents=True)
    for p in (omerodir, omerodir / "var", omerodir / "var" / "log"):
        os.chown(p, NOBODY, NOBODY)
    return OmeroTarget("nobody", Path("/nonexistent/venv"), omerodir)


@pytest.fixture
def secret(tmp_path):
    vault = tmp_path / "vault"
    vault.mkdir(mode=0o700)
    f = vault / "secret"
    f.write_text("ROOT-ONLY\n")
    f.chmod(0o600)
    return f


def test_the_tail_of_a_linked_log_is_not_read(target, secret):
    target.web_log.symlink_to(secret)
    shown = apply.tail(target.web_log)
    assert "ROOT-ONLY" not in shown
    assert shown == f"(not read: {target.web_log} is a symbolic link in a directory that nobody can write: " \
                    "refusing to read it)"
    assert preflight.check_web_log(target).ok, "OMERO.web follows its own link; root only never reads through it"


@pytest.mark.timeout(20)
def test_a_fifo_log_is_not_waited_for_and_fails_preflight(target):
    os.mkfifo(target.web_log)
    assert apply.tail(target.web_log) == f"(not read: {target.web_log} is not a regular file)"
    check = preflight.check_web_log(target)
    assert not check.ok
    assert check.message.startswith(f"{target.web_log} is not a regular file (a FIFO")
    assert "remove it as nobody" in check.message


def test_the_users_own_log_is_shown_masked_and_a_missing_one_said(target):
    assert apply.tail(target.web_log) == "(no log)"
    assert preflight.check_web_log(target).ok
    target.web_log.write_text("".join(f"line {i}\n" for i in range(30)) + "redis://:pw@127.0.0.1:6379/0\n")
    os.chown(target.web_log, NOBODY, NOBODY)
    assert apply.tail(target.web_log, 2) == "line 29\nredis://:****@127.0.0.1:6379/0"
