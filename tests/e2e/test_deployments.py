"""One host, many deployments: two OMERODIRs and two server blocks in one real nginx; each applies,
reruns and rolls back without touching the other's files. And a rollback an administrator can trust."""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import subprocess
import uuid

import pytest

from omerowizard.catalogue import answers as answers_mod
from tests import parts
from tests.e2e.conftest import E2E_ROOT, USER, VENV, Deployment
from tests.e2e.test_safety import digest
from tests.support.wait import until


@pytest.fixture
def host(omero_install, tmp_path):
    """Two deployments sharing one omerowizard state (one host) and one nginx."""
    made = []
    for name in ("a", "b"):
        omerodir = E2E_ROOT / "dirs" / f"{name}-{uuid.uuid4().hex[:8]}"
        omerodir.mkdir(parents=True)
        pw = pwd.getpwnam(USER)
        os.chown(omerodir, pw.pw_uid, pw.pw_gid)
        work = tmp_path / name
        work.mkdir()
        made.append(Deployment(omerodir=omerodir, app_port=parts.free_port(), home=tmp_path / "home", workdir=work))
    nginx_dir = tmp_path / "nginx"
    (nginx_dir / "sites").mkdir(parents=True)
    port = parts.free_port()
    conf = nginx_dir / "nginx.conf"
    conf.write_text(f"user www-data;\npid {nginx_dir}/nginx.pid;\nerror_log {nginx_dir}/error.log;\n"
                    f"events {{ worker_connections 64; }}\n"
                    f"http {{\n include /etc/nginx/mime.types;\n access_log {nginx_dir}/access.log;\n"
                    f" include {nginx_dir}/sites/*.conf;\n}}\n")
    nginx = parts.require("nginx")
    # the sites directory must be readable for nginx's workers
    os.chmod(tmp_path, 0o755)
    yield made, port, nginx_dir, conf
    subprocess.run([nginx, "-c", str(conf), "-s", "stop"], capture_output=True)
    for d in made:
        d.stop()
        shutil.rmtree(d.omerodir, ignore_errors=True)


def answers(d: Deployment, name: str, port: int, sites, prefix: str = "/omero", **extra) -> dict:
    return {"omero": {"user": USER, "venv": str(VENV), "omerodir": str(d.omerodir)},
            "application_server": {"port": d.app_port, "workers": 1}, "prefix": prefix,
            "sessions": {"clearsessions": "daily"},
            "web_server": {"kind": "nginx", "server_name": name, "port": port,
                           "config_path": str(sites / f"{name}.conf")}, **extra}


def login(port: int, name: str, prefix: str = "/omero", want: int = 200, timeout: float = 10) -> int:
    """The status of the login page through nginx, waiting (bounded) for a reload to take effect."""
    seen: list[int] = []

    def answers() -> bool:
        try:
            seen.append(parts.http_get(f"http://127.0.0.1:{port}{prefix}/webclient/login/", headers={"Host": name}).status)
        except OSError:
            seen.append(0)
        return seen[-1] == want

    with contextlib.suppress(AssertionError):  # the caller asserts the status, and says which it wanted
        until(answers, timeout, f"status {want}")
    return seen[-1]


def reload_nginx(conf) -> None:
    nginx = parts.require("nginx")
    pid = conf.parent / "nginx.pid"
    argv = [nginx, "-c", str(conf)] + (["-s", "reload"] if pid.exists() else [])
    subprocess.run(argv, check=True, capture_output=True)


def files_of(d: Deployment, name: str, sites) -> dict:
    return {"site": digest(sites / f"{name}.conf"), "page": digest(d.omerodir / "etc" / "maintenance" / "maintenance.html"),
            "config": digest(d.config_xml)}


def test_two_deployments_apply_rerun_and_roll_back_independently(host):
    (a, b), port, nginx_dir, conf = host
    sites = nginx_dir / "sites"
    fa = a.answers_file(answers(a, "a.example.org", port, sites), merge=False)
    fb = b.answers_file(answers(b, "b.example.org", port, sites), merge=False)

    def both_answer():
        reload_nginx(conf)
        assert login(port, "a.example.org") == 200
        assert login(port, "b.example.org") == 200

    assert a.cli("apply", str(fa)).returncode == 0
    reload_nginx(conf)
    assert login(port, "a.example.org") == 200
    files_a = files_of(a, "a.example.org", sites)
    proc = b.cli("apply", str(fb))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    both_answer()
    assert files_of(a, "a.example.org", sites) == files_a, "B's run touched A's files"
    files_b = files_of(b, "b.example.org", sites)
    cron = subprocess.run(["crontab", "-l", "-u", USER], capture_output=True, text=True).stdout
    assert f"OMERODIR={a.omerodir} " in cron and f"OMERODIR={b.omerodir} " in cron

    rerun = a.cli("apply", str(a.answers_file(answers(a, "a.example.org", port, sites, prefix="/omero",
                                                          sessions={"cookie_age": 7200}), name="a2.yml", merge=False)))
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    both_answer()
    assert files_of(b, "b.example.org", sites) == files_b, "A's rerun touched B's files"

    back = b.cli("rollback", "--omerodir", str(b.omerodir))
    assert back.returncode == 0, back.stdout + back.stderr
    reload_nginx(conf)
    assert login(port, "a.example.org") == 200
    assert not (sites / "b.example.org.conf").exists()
    assert files_of(a, "a.example.org", sites)["site"] == files_a["site"]

    # answers of each deployment are its own
    ans_a = answers_mod.load_text(a.cli("answers", "--omerodir", str(a.omerodir)).stdout)  # its strings are !unsafe
    assert ans_a.web_server.server_name == "a.example.org"
    assert ans_a.sessions.cookie_age == 7200
    several = a.cli("answers")
    assert several.returncode == 2 and "several deployments" in several.stderr


def test_a_file_another_deployment_wrote_is_refused_naming_it(host):
    (a, b), port, nginx_dir, conf = host
    sites = nginx_dir / "sites"
    assert a.cli("apply", str(a.answers_file(answers(a, "a.example.org", port, sites, start=False),
                                             merge=False))).returncode == 0
    clash = answers(b, "b.example.org", port, sites, start=False)
    clash["web_server"]["config_path"] = str(sites / "a.example.org.conf")
    proc = b.cli("apply", str(b.answers_file(clash, merge=False)))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert f"was written by the deployment in {a.omerodir}" in proc.stderr


def test_a_hand_written_file_is_replaced_only_when_asked(deployment):
    d = deployment
    site = d.workdir / "site" / "omero.conf"
    site.parent.mkdir()
    site.write_text("# written by hand\n")
    ans = {"application_server": {"workers": 1}, "start": False, "sessions": {"clearsessions": "off"},
           "web_server": {"kind": "nginx", "config_path": str(site), "port": 8080}}
    proc = d.cli("apply", str(d.answers_file(ans)))
    assert proc.returncode == 1 and "omerowizard did not write it" in proc.stderr
    assert site.read_text() == "# written by hand\n"
    dry = d.cli("apply", str(d.answers_file({**ans, "web_server": {**ans["web_server"], "replace_existing": True}})),
                "--dry-run")
    assert "no run of this deployment wrote it, omerowizard did not write it (kept in the backup)" in dry.stdout
    proc = d.cli("apply", str(d.answers_file({**ans, "web_server": {**ans["web_server"], "replace_existing": True}})))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    back = d.cli("rollback")
    assert back.returncode == 0 and site.read_text() == "# written by hand\n"


def test_a_directory_where_the_site_file_goes_is_refused(deployment):
    d = deployment
    (d.workdir / "site.conf").mkdir()
    ans = {"start": False, "web_server": {"kind": "nginx", "config_path": str(d.workdir / "site.conf")}}
    proc = d.cli("apply", str(d.answers_file(ans)))
    assert proc.returncode == 1 and "is a directory" in proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr


def test_rollback_list_to_dry_run_and_rollback_of_a_rollback(deployment):
    d = deployment
    light = {"application_server": {"workers": 1}, "start": False, "sessions": {"clearsessions": "off"},
             "web_server": {"kind": "nginx", "config_path": str(d.workdir / "s.conf")}}
    for n, prefix in enumerate(["/one", "/two", "/three"]):
        proc = d.cli("apply", str(d.answers_file({**light, "prefix": prefix}, name=f"{n}.yml")))
        assert proc.returncode == 0, proc.stdout + proc.stderr
    listing = d.cli("rollback", "--list").stdout
    ids = [line.split()[0] for line in listing.splitlines() if not line.startswith(" ")]
    assert len(ids) == 3, listing
    assert "prefix: /two -> /three" in listing
    before = digest(d.config_xml)
    dry = d.cli("rollback", "--dry-run")
    assert dry.returncode == 0 and "omero.web.prefix: /three -> /two" in dry.stdout, dry.stdout
    assert "Dry run: nothing was changed." in dry.stdout and digest(d.config_xml) == before

    back = d.cli("rollback")
    assert back.returncode == 0, back.stdout + back.stderr
    assert d.config()["omero.web.prefix"] == "/two"
    assert answers_mod.load_text(d.cli("answers").stdout).prefix == "/two"
    again = d.cli("rollback")
    # a second identical rollback has nothing to do: it says so and succeeds (it exited 1, issue 26)
    assert again.returncode == 0 and "already restored" in again.stdout and "nothing to do" in again.stdout, \
        again.stdout + again.stderr
    undo = [line.split()[0] for line in d.cli("rollback", "--list").stdout.splitlines()
            if "rollback" in line and not line.startswith(" ")][0]
    redo = d.cli("rollback", "--to", undo)
    assert redo.returncode == 0, redo.stdout + redo.stderr
    assert d.config()["omero.web.prefix"] == "/three"
    assert answers_mod.load_text(d.cli("answers").stdout).prefix == "/three"
    first = d.cli("rollback", "--to", ids[-1])
    assert first.returncode == 0, first.stdout + first.stderr
    assert not d.config_xml.exists(), "back to before the first apply: there was no config.xml"
