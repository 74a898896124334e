"""The gunicorn master is signalled only after it is verified, and its pid file is read without links
(OMERODIR belongs to the OMERO.web user, who could plant a link or any number there)."""

from __future__ import annotations

import os
import subprocess

import pytest

from omerowizard.system import gunicorn
from omerowizard.system.processes import current_user


@pytest.fixture
def omerodir(tmp_path):
    d = tmp_path / "OMERO.web"
    (d / "var").mkdir(parents=True)
    return d


def test_the_pid_file_is_read(omerodir):
    (omerodir / "var" / "django.pid").write_text("12345\n")
    assert gunicorn.read_pidfile(omerodir) == 12345


@pytest.mark.parametrize("content", ["", "1", "abc", "-5"])
def test_a_pid_file_without_a_usable_pid_is_refused(omerodir, content):
    (omerodir / "var" / "django.pid").write_text(content)
    with pytest.raises(gunicorn.ReloadError, match="not the pid of a gunicorn master"):
        gunicorn.read_pidfile(omerodir)


def test_a_linked_pid_file_is_not_followed(omerodir, tmp_path):
    (tmp_path / "elsewhere").write_text(f"{os.getpid()}\n")
    (omerodir / "var" / "django.pid").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(gunicorn.ReloadError, match="without following links"):
        gunicorn.read_pidfile(omerodir)


def test_a_linked_var_directory_is_not_followed(tmp_path):
    d = tmp_path / "OMERO.web"
    d.mkdir()
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "django.pid").write_text(f"{os.getpid()}\n")
    (d / "var").symlink_to(tmp_path / "other")
    with pytest.raises(gunicorn.ReloadError, match="without following links"):
        gunicorn.read_pidfile(d)


def test_a_process_that_is_not_this_deployments_gunicorn_is_never_signalled(omerodir):
    me = current_user()
    other = subprocess.Popen(["sleep", "60"])
    same_dir = subprocess.Popen(["sleep", "60"], env={**os.environ, "OMERODIR": str(omerodir)})
    try:
        (omerodir / "var" / "django.pid").write_text(f"{other.pid}\n")
        with pytest.raises(gunicorn.ReloadError, match=f"does not run with OMERODIR={omerodir}"):
            gunicorn.find_master(omerodir, me)
        (omerodir / "var" / "django.pid").write_text(f"{same_dir.pid}\n")
        with pytest.raises(gunicorn.ReloadError, match="is not gunicorn writing"):
            gunicorn.find_master(omerodir, me)
        assert other.poll() is None and same_dir.poll() is None  # neither got a signal
    finally:
        other.kill()
        same_dir.kill()


def test_a_process_of_another_user_is_refused(omerodir):
    if os.geteuid() != 0:
        pytest.fail("runs as root (the wizard's production case)", pytrace=False)
    (omerodir / "var" / "django.pid").write_text(f"{os.getpid()}\n")
    with pytest.raises(gunicorn.ReloadError, match="belongs to uid 0, not to nobody"):
        gunicorn.find_master(omerodir, "nobody")


def test_a_dead_pid_is_reported(omerodir):
    p = subprocess.Popen(["true"])
    p.wait()
    (omerodir / "var" / "django.pid").write_text(f"{p.pid}\n")
    with pytest.raises(gunicorn.ReloadError, match="not running"):
        gunicorn.find_master(omerodir, current_user())


def test_workers_are_the_children_of_the_master():
    child = subprocess.Popen(["sleep", "60"])
    try:
        assert child.pid in gunicorn.workers(os.getpid())
    finally:
        child.kill()
        child.wait()
