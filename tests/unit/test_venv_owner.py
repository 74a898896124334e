"""pip runs as the owner of the OMERO.web environment: root never runs code another user can change."""

from __future__ import annotations

import os
import pwd

import pytest

from omerowizard.system import venv


def test_an_environment_of_another_user_is_run_as_that_user(tmp_path):
    if os.geteuid() != 0:
        pytest.fail("runs as root (the wizard's production case)", pytrace=False)
    (tmp_path / "bin").mkdir()
    nobody = pwd.getpwnam("nobody")
    os.chown(tmp_path / "bin", nobody.pw_uid, nobody.pw_gid)
    assert venv.owner(tmp_path) == "nobody"
    argv = venv._pip_argv(tmp_path, ["install", "x"])
    assert argv[1:3] == ["-u", "nobody"] and argv[-5:] == [str(tmp_path / "bin" / "python"), "-m", "pip", "install", "x"]


def test_an_environment_of_the_wizards_own_user_runs_directly(tmp_path):
    (tmp_path / "bin").mkdir()
    assert venv.owner(tmp_path) is None
    assert venv._pip_argv(tmp_path, ["install", "x"]) == [str(tmp_path / "bin" / "python"), "-m", "pip", "install", "x"]
