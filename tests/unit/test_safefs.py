"""Root never follows a link another user could have planted (safefs), tested with real links
in a directory owned by an unprivileged user (nobody), as OMERODIR belongs to the OMERO.web user."""

from __future__ import annotations

import os
import stat

import pytest

from omerowizard.system import safefs
from omerowizard.system.safefs import UnsafePath

NOBODY = 65534


@pytest.fixture
def user_dir(tmp_path):
    if os.geteuid() != 0:
        pytest.fail("these tests run as root (they prove what root does in another user's directory)", pytrace=False)
    d = tmp_path / "omerodir"
    d.mkdir()
    os.chown(d, NOBODY, NOBODY)
    return d


@pytest.fixture
def secret(tmp_path):
    vault = tmp_path / "vault"
    vault.mkdir(mode=0o700)
    f = vault / "secret"
    f.write_text("SECRET\n")
    f.chmod(0o600)
    return f


def untouched(f) -> bool:
    st = f.stat()
    return f.read_text() == "SECRET\n" and st.st_uid == 0 and stat.S_IMODE(st.st_mode) == 0o600


def test_a_write_replaces_a_planted_link_instead_of_writing_through_it(user_dir, secret):
    (user_dir / "page.html").symlink_to(secret)
    safefs.write_bytes(str(user_dir / "page.html"), b"<html>", 0o644, ids=(NOBODY, NOBODY))
    assert untouched(secret)
    assert not (user_dir / "page.html").is_symlink()
    assert (user_dir / "page.html").read_bytes() == b"<html>"
    assert (user_dir / "page.html").stat().st_uid == NOBODY
    assert [p.name for p in user_dir.iterdir()] == ["page.html"], "no temporary file is left"


def test_a_planted_link_at_the_old_predictable_temp_name_is_never_used(user_dir, secret):
    (user_dir / ".page.html.omerowizard-tmp").symlink_to(secret)
    safefs.write_bytes(str(user_dir / "page.html"), b"<html>", 0o644, ids=(NOBODY, NOBODY))
    assert untouched(secret)


def test_reading_through_a_planted_link_is_refused_naming_it(user_dir, secret):
    (user_dir / "config.xml").symlink_to(secret)
    with pytest.raises(UnsafePath, match=str(user_dir / "config.xml")):
        safefs.read_bytes(str(user_dir / "config.xml"))


def test_a_planted_link_as_a_directory_is_refused(user_dir, secret):
    (user_dir / "etc").symlink_to(secret.parent)
    with pytest.raises(UnsafePath, match="etc is a symbolic link"):
        safefs.write_bytes(str(user_dir / "etc" / "secret"), b"pwned", 0o644)
    assert untouched(secret)


def test_links_in_directories_only_root_can_write_are_followed(tmp_path):
    real = tmp_path / "real"
    real.mkdir()
    os.chmod(tmp_path, 0o755)
    (tmp_path / "alias").symlink_to(real)
    safefs.write_bytes(str(tmp_path / "alias" / "f"), b"x", 0o644)
    assert (real / "f").read_bytes() == b"x"


def test_a_fifo_where_a_pid_file_is_expected_does_not_block(user_dir):
    os.mkfifo(user_dir / "django.pid")
    with pytest.raises(UnsafePath, match="not a regular file"):
        safefs.read_bytes(str(user_dir / "django.pid"))


def test_chmod_through_a_link_is_refused(user_dir, secret):
    (user_dir / "config.xml").symlink_to(secret)
    with pytest.raises(UnsafePath):
        safefs.chmod_file(str(user_dir / "config.xml"), 0o644)
    assert untouched(secret)


def test_unlink_removes_the_link_not_its_target(user_dir, secret):
    (user_dir / "x").symlink_to(secret)
    assert safefs.unlink(str(user_dir / "x"))
    assert untouched(secret) and not (user_dir / "x").exists()


def test_a_directory_at_the_file_path_is_refused_and_leaves_no_temp(user_dir):
    (user_dir / "site.conf").mkdir()
    with pytest.raises(IsADirectoryError):
        safefs.write_bytes(str(user_dir / "site.conf"), b"x", 0o644)
    assert [p.name for p in user_dir.iterdir()] == ["site.conf"]


def test_new_directories_below_omerodir_belong_to_its_user(user_dir):
    safefs.write_bytes(str(user_dir / "etc" / "maintenance" / "m.html"), b"x", 0o644, ids=(NOBODY, NOBODY),
                       create_below=str(user_dir))
    assert (user_dir / "etc").stat().st_uid == NOBODY
    assert (user_dir / "etc" / "maintenance").stat().st_uid == NOBODY
