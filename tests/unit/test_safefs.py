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


# ----------------------------------------------------------------------------- reading another user's files
# (OMEROweb.log, a venv's METADATA): no link, no FIFO, no device, no hard link to someone else's file, no huge read

@pytest.mark.timeout(20)
def test_a_fifo_as_a_log_is_neither_waited_for_nor_read(user_dir):
    os.mkfifo(user_dir / "OMEROweb.log")
    for read in (lambda p: safefs.tail(p, 15), lambda p: safefs.read_since(p, 0), safefs.read_bytes):
        with pytest.raises(UnsafePath, match="not a regular file"):
            read(str(user_dir / "OMEROweb.log"))
    assert safefs.size(str(user_dir / "OMEROweb.log")) == 0


def test_a_linked_log_is_not_followed_by_tail_size_or_read_since(user_dir, secret):
    (user_dir / "OMEROweb.log").symlink_to(secret)
    with pytest.raises(UnsafePath, match="symbolic link"):
        safefs.tail(str(user_dir / "OMEROweb.log"))
    with pytest.raises(UnsafePath, match="symbolic link"):
        safefs.read_since(str(user_dir / "OMEROweb.log"), 0)
    assert safefs.size(str(user_dir / "OMEROweb.log")) == 0


def test_a_hard_link_to_a_root_file_in_another_users_directory_is_refused(user_dir, secret):
    os.link(secret, user_dir / "OMEROweb.log")
    with pytest.raises(UnsafePath, match="hard link"):
        safefs.tail(str(user_dir / "OMEROweb.log"))
    with pytest.raises(UnsafePath, match="hard link"):
        safefs.read_bytes(str(user_dir / "OMEROweb.log"))


def test_the_users_own_log_is_read(user_dir):
    log = user_dir / "OMEROweb.log"
    log.write_text("".join(f"line {i}\n" for i in range(100)))
    os.chown(log, NOBODY, NOBODY)
    assert safefs.tail(str(log), 3) == ["line 97", "line 98", "line 99"]
    offset = safefs.size(str(log))
    with open(log, "a") as fh:
        fh.write("new 1\nnew 2\n")
    assert safefs.read_since(str(log), offset) == b"new 1\nnew 2\n"
    log.write_text("rotated\n")  # shorter than the offset: a new file, read from its start
    assert safefs.read_since(str(log), offset) == b"rotated\n"
    assert safefs.tail(str(user_dir / "missing.log")) is None


def test_a_huge_log_is_never_read_whole(user_dir):
    log = user_dir / "OMEROweb.log"
    with open(log, "wb") as fh:  # 8 GiB, sparse: reading it whole would take minutes and all the memory
        fh.truncate(8 << 30)
        fh.seek(8 << 30)
        fh.write(b"first cut line\nthe end\n")
    assert safefs.tail(str(log), 5, limit=64 * 1024)[-1] == "the end"
    assert len(safefs.read_since(str(log), 0, limit=4096)) == 4096


def test_listing_a_directory_through_a_planted_link_is_refused(user_dir, secret):
    (user_dir / "lib").symlink_to(secret.parent)
    with pytest.raises(UnsafePath, match="lib is a symbolic link"):
        safefs.listdir(str(user_dir / "lib" / "."))
    with pytest.raises(UnsafePath, match="symbolic link"):
        safefs.listdir(str(user_dir / "lib"))
    assert safefs.listdir(str(user_dir / "nothing")) is None
