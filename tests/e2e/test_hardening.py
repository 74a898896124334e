"""Root is never steered by the OMERO.web user: links planted in OMERODIR, killed runs, full disks,
restores that keep what others changed. Against the real omerowizard CLI, OMERO.web and crontab."""

from __future__ import annotations

import os
import random
import signal
import stat
import subprocess
import time
from pathlib import Path

import pytest

from tests import parts
from tests.e2e.conftest import USER
from tests.e2e.test_safety import crontab, digest, good, others_removed, read_until, snapshot, spawn


@pytest.fixture
def secret(tmp_path):
    vault = Path("/root") / f"omerowizard-secret-{os.getpid()}-{tmp_path.name}"
    vault.write_text("ROOT ONLY\n")
    vault.chmod(0o600)
    yield vault
    vault.unlink(missing_ok=True)


def untouched(f: Path) -> bool:
    st = f.stat()
    return f.read_text() == "ROOT ONLY\n" and st.st_uid == 0 and stat.S_IMODE(st.st_mode) == 0o600


def as_user(*argv: str) -> None:
    subprocess.run(["runuser", "-u", USER, "--", *argv], check=True)


def plant(link: Path, target: Path) -> None:
    """The OMERO.web user plants a link in its own OMERODIR."""
    as_user("mkdir", "-p", str(link.parent))
    as_user("ln", "-sfn", str(target), str(link))


# ----------------------------------------------------------------------------- planted links
def test_link_at_the_maintenance_temp_name_does_not_hand_a_root_file_over(deployment, secret):
    d = deployment
    plant(d.omerodir / "etc" / "maintenance" / ".maintenance.html.omerowizard-tmp", secret)
    proc = d.cli("apply", str(d.answers_file(good(d, start=False))))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert untouched(secret)
    page = d.omerodir / "etc" / "maintenance" / "maintenance.html"
    assert page.is_file() and not page.is_symlink() and page.stat().st_uid != 0


def test_link_as_the_maintenance_page_is_refused_naming_it(deployment, secret):
    d = deployment
    link = d.omerodir / "etc" / "maintenance" / "maintenance.html"
    plant(link, secret)
    before = snapshot(d)
    proc = d.cli("apply", str(d.answers_file(good(d, start=False))))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert f"{link} is a symbolic link" in proc.stdout + proc.stderr
    assert untouched(secret) and link.is_symlink()
    assert snapshot(d) == before


def test_link_as_a_directory_of_omerodir_is_refused(deployment, secret):
    d = deployment
    as_user("ln", "-s", str(secret.parent), str(d.omerodir / "etc"))
    proc = d.cli("apply", str(d.answers_file(good(d, start=False))))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert f"{d.omerodir / 'etc'} is a symbolic link" in proc.stdout + proc.stderr
    assert untouched(secret)


def test_link_as_config_xml_is_refused_naming_it(deployment, secret):
    d = deployment
    plant(d.config_xml, secret)
    proc = d.cli("apply", str(d.answers_file(good(d, start=False))))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert f"{d.config_xml} is a symbolic link" in proc.stderr
    assert untouched(secret)


def test_link_at_the_restore_temp_name_during_rollback(deployment, secret):
    d = deployment
    assert d.cli("apply", str(d.answers_file(good(d, prefix="/one", start=False)))).returncode == 0
    assert d.cli("apply", str(d.answers_file(good(d, prefix="/two", start=False), name="two.yml"))).returncode == 0
    plant(d.omerodir / "etc" / "grid" / ".config.xml.omerowizard-restore", secret)
    proc = d.cli("rollback")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert untouched(secret)
    assert d.config()["omero.web.prefix"] == "/one"
    assert d.config_xml.stat().st_uid != 0, "config.xml still belongs to the OMERO.web user"


def test_links_at_the_old_lock_and_pid_paths_are_never_touched(deployment, secret, tmp_path):
    d = deployment
    other = tmp_path / "other-secret"
    other.write_text("ROOT ONLY\n")
    other.chmod(0o600)
    plant(d.omerodir / ".omerowizard.system.lock", secret)
    plant(d.omerodir / "var" / "omerowizard-development.pid", other)
    answers = {"web_server": {"kind": "development"}, "sessions": {"clearsessions": "off"}}
    proc = d.cli("apply", str(d.answers_file(answers)))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert untouched(secret) and untouched(other)


def test_config_xml_is_not_readable_by_other_users(deployment, redis_server):
    d = deployment
    proc = d.cli("apply", str(d.answers_file(good(d, start=False, sessions={"backend": "redis",
                                                                             "location": redis_server.url}))))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    st = d.config_xml.stat()
    assert stat.S_IMODE(st.st_mode) == 0o640 and st.st_uid != 0


# ----------------------------------------------------------------------------- restores keep others' lines
def test_rollback_keeps_a_crontab_line_added_after_the_apply(deployment):
    d = deployment
    proc = d.cli("apply", str(d.answers_file(good(d, start=False, sessions={"clearsessions": "daily"}))))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert str(d.omerodir) in crontab()
    mine = "17 4 * * * /usr/bin/true # added by the administrator after the apply\n"
    subprocess.run(["crontab", "-u", USER, "-"], input=crontab() + mine, text=True, check=True)
    proc = d.cli("rollback")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    after = crontab()
    subprocess.run(["crontab", "-u", USER, "-"], input=after.replace(mine, ""), text=True, check=True)
    assert mine in after, after
    assert f"OMERODIR={d.omerodir} " not in after


# ----------------------------------------------------------------------------- kill storm
def stray_temps(tmp: Path) -> list[str]:
    return sorted(p.name for p in tmp.glob("omerowizard-*"))


def state_of(d, site: Path) -> dict:
    from omerowizard.system.omero import parse_config_xml

    return {"config": parse_config_xml(d.config_xml), "site": digest(site),
            "cron": [line for line in crontab().splitlines() if f"OMERODIR={d.omerodir}" in line]}


def test_kill_storm_always_ends_equal_to_one_clean_apply(deployment, monkeypatch):
    d = deployment
    tmp = d.workdir / "tmp"  # the runs' own temporary directory: nothing of theirs may stay in it
    tmp.mkdir()
    monkeypatch.setenv("TMPDIR", str(tmp))
    site = d.workdir / "site" / "omero.conf"
    a = d.answers_file(good(d, start=False, prefix="/omero", sessions={"clearsessions": "daily", "cookie_age": 3600},
                            cors={"mode": "origins", "origins": ["https://a.example.org"]}), name="a.yml")
    b = d.answers_file(good(d, start=False, prefix="/other", sessions={"clearsessions": "off", "cookie_age": 7200},
                            extra_config={"omero.web.login_logo": "/static/x.png"}), name="b.yml")
    first = d.cli("apply", str(a))
    assert first.returncode == 0, first.stdout + first.stderr
    clean = state_of(d, site)
    rng = random.Random(20261122)
    kills = rounds = 0
    while kills < 16 and rounds < 40:
        i, rounds = rounds, rounds + 1
        if i % 2:  # switch: from B's deployment, kill a run of A
            assert d.cli("apply", str(b)).returncode == 0
        proc = spawn(d, "apply", str(b if i % 2 == 0 else a))
        read_until(proc, "Files:", timeout=60)  # the plan is printed: the run is about to change things
        time.sleep(rng.uniform(0, 2.5))
        if proc.poll() is None:
            proc.kill()
            kills += 1
        proc.communicate(timeout=120)
        again = d.cli("apply", str(a))
        assert again.returncode == 0, f"round {i}:\n{again.stdout}{again.stderr}"
        assert state_of(d, site) == clean, f"round {i}:\n{again.stdout}"
    assert kills >= 15, f"{kills} kills in {rounds} rounds"
    assert d.cli("apply", str(a), "--dry-run").stdout.startswith("Nothing to change")
    assert stray_temps(tmp) == []


# ----------------------------------------------------------------------------- full disk
@pytest.fixture
def small_disk(tmp_path):
    mnt = tmp_path / "disk"
    mnt.mkdir()
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mnt)], capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.fail(f"missing part: a tmpfs cannot be mounted here to fill a disk: {proc.stderr}", pytrace=False)
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], check=False)


def fill(mnt: Path) -> None:
    fd = os.open(mnt / "filler", os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        while True:
            os.write(fd, b"\0" * 4096)
    except OSError:
        pass
    finally:
        os.close(fd)


def test_full_disk_restore_does_what_it_can_and_the_next_run_repairs_the_rest(deployment, small_disk, tmp_path):
    d = deployment
    site = small_disk / "omero.conf"
    web = {"kind": "nginx", "config_path": str(site), "port": 8080}
    a = d.answers_file({**good(d, web_server=web), "sessions": {"clearsessions": "daily"}}, name="a.yml")
    assert d.cli("apply", str(a)).returncode == 0
    before = snapshot(d, site)
    redis = parts.Redis(tmp_path / "redis").start()
    try:
        b = d.answers_file({**good(d, web_server={**web, "port": 8081}),
                            "sessions": {"backend": "redis", "location": redis.url}}, name="b.yml")
        proc = spawn(d, "apply", str(b))
        read_until(proc, "ok write web-server files")  # the site file on the small disk is the new one
        fill(small_disk)
        redis.stop()
        out = proc.communicate(timeout=240)[0]
    finally:
        redis.stop()
    assert proc.returncode == 1, out
    assert f"NOT restored: {site}" in out, out
    assert digest(d.config_xml) == before["config"], "config.xml was restored all the same"
    assert others_removed(crontab(), d) == before["crontab"], "the crontab was restored all the same"
    assert not [p for p in small_disk.iterdir() if ".omerowizard-" in p.name], "no temporary file is left"
    (small_disk / "filler").unlink()
    again = d.cli("apply", str(a))
    assert again.returncode == 0, again.stdout + again.stderr
    assert "restored:" in again.stdout and str(site) in again.stdout
    assert snapshot(d, site) == before
