"""pip runs as the owner of the OMERO.web environment: root never runs code another user can change."""

from __future__ import annotations

import os
import pwd

import pytest

from omerowizard.system import processes, venv


def make(root):
    (root / "bin").mkdir(parents=True)
    (root / "bin" / "python").symlink_to("/usr/bin/python3")
    (root / "lib" / "python3.11" / "site-packages").mkdir(parents=True)
    (root / "pyvenv.cfg").write_text("home = /usr/bin\n")
    return root


def test_an_environment_of_another_user_is_run_as_that_user(tmp_path):
    if os.geteuid() != 0:
        pytest.fail("runs as root (the wizard's production case)", pytrace=False)
    env = make(tmp_path / "venv")
    nobody = pwd.getpwnam("nobody")
    for path in [env, *env.rglob("*")]:
        os.chown(path, nobody.pw_uid, nobody.pw_gid, follow_symlinks=False)
    assert venv.pip_user(env) == "nobody"
    argv, _ = processes.prepare([*venv.python_of(env), "install", "x"], as_owner=True)
    assert argv[1:3] == ["-u", "nobody"] and argv[-5:] == [str(env / "bin" / "python"), "-m", "pip", "install", "x"]
    # pip run as the user may build what it takes from the index (as that user)
    assert venv.pip_args(env, ["install", "x"]) == ["install", "x"]


def test_an_environment_of_the_wizards_own_user_runs_directly_and_builds_no_sdist(tmp_path):
    env = make(tmp_path / "venv")
    assert venv.pip_user(env) is None
    argv, _ = processes.prepare([*venv.python_of(env), "install", "x"], as_owner=True)
    assert argv == [str(env / "bin" / "python"), "-m", "pip", "install", "x"]
    if os.geteuid() == 0:
        assert venv.pip_args(env, ["install", "x"]) == ["install", "--only-binary", ":all:", "x"]


def test_find_links_are_wheels_only_whoever_runs_pip(tmp_path):
    env = make(tmp_path / "venv")
    assert venv.pip_args(env, ["install", "x"], find_links="https://example.org/wheels")[:5] == \
        ["install", "--find-links", "https://example.org/wheels", "--only-binary", ":all:"]


def test_roots_pip_refuses_a_wheel_or_directory_another_user_can_write(tmp_path):
    if os.geteuid() != 0:
        pytest.fail("runs as root (the wizard's production case)", pytrace=False)
    env = make(tmp_path / "venv")
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    (wheels / "x-1-py3-none-any.whl").write_text("")
    os.chown(wheels / "x-1-py3-none-any.whl", 65534, 65534)
    with pytest.raises(venv.InstallError, match=f"{wheels / 'x-1-py3-none-any.whl'} belongs to nobody"):
        venv.pip_args(env, ["install", "x"], find_links=str(wheels))
    with pytest.raises(venv.InstallError, match="belongs to nobody"):
        venv.pip_args(env, ["install", str(wheels / "x-1-py3-none-any.whl")])


def test_names_are_compared_pep503_normalised():
    assert venv.normalise("omero._Figure") == venv.normalise("omero-figure") == "omero-figure"
    assert venv.normalise("omero-_web") == "omero-web"
