"""The front door (issue 12): Debian's own nginx and Apache (their /etc configuration, port 80 on
127.0.0.1 and [::1]), stopped before each test and restored exactly afterwards. apply starts the
server when it does not run, makes OMERO.web the default site of its port (disabling Debian's stock
site, which rollback brings back), and proves the public URL through the server itself.

These tests are the only ones on this machine that use the system nginx and Apache."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests import parts
from tests.e2e.conftest import USER
from tests.support.wait import until

PIDFILES = {"nginx": "/run/nginx.pid", "apache2": "/run/apache2/apache2.pid"}
LIGHT = {"application_server": {"workers": 1}, "sessions": {"clearsessions": "off"}}


def _pid(kind: str) -> int | None:
    try:
        pid = int(Path(PIDFILES[kind]).read_text().strip())
        os.kill(pid, 0)
        return pid
    except (OSError, ValueError):
        return None


def stop_system(kind: str) -> None:
    pid = _pid(kind)
    if pid is None:
        return
    argv = [parts.require("nginx"), "-s", "stop"] if kind == "nginx" else [parts.require("apache2ctl"), "stop"]
    subprocess.run(argv, capture_output=True)
    until(lambda: not Path(f"/proc/{pid}").exists(), 20, f"the stop of the system {kind} (pid {pid})")


@pytest.fixture
def system_web(tmp_path):
    """The system nginx and Apache stopped with Debian's stock sites, and /etc/nginx, /etc/apache2 put back as
    they were afterwards (one test at a time on this machine, across checkouts)."""
    parts.require("nginx")
    parts.require("apache2")
    with parts.stock_system_web(tmp_path / "etc-before"):
        for kind in PIDFILES:
            stop_system(kind)
        try:
            yield
        finally:
            for kind in PIDFILES:
                stop_system(kind)


def get(url: str, host: str | None = None) -> parts.Response:
    return parts.http_get(url, headers={"Host": host} if host else None)


def answers(d, kind: str, **extra) -> Path:
    ws = {"kind": kind, "port": 80, "config_path": None, **extra.pop("web_server", {})}
    return d.answers_file({**LIGHT, "web_server": ws, "prefix": "/omero", **extra})


def stock_page(r: parts.Response) -> bool:
    """Debian's stock default site: /var/www/html (nginx's welcome page, or Apache's "It works" page, which nginx's
    stock site also serves when both packages are installed)."""
    return r.status == 200 and ("Welcome to nginx" in r.body or "It works" in r.body) and "OMERO" not in r.body


def served_by_omero(r: parts.Response) -> bool:
    return r.status == 200 and "OMERO" in r.body and "login" in r.body.lower()


@pytest.mark.parametrize("kind, binary, stock, stock_target", [
    ("nginx", "nginx", "/etc/nginx/sites-enabled/default", "/etc/nginx/sites-available/default"),
    ("apache", "apache2", "/etc/apache2/sites-enabled/000-default.conf", "../sites-available/000-default.conf"),
])
def test_a_stopped_system_server_is_started_omero_web_becomes_the_default_site_and_rollback_brings_the_stock_site_back(
        deployment, system_web, kind, binary, stock, stock_target):
    d = deployment
    assert os.readlink(stock) == stock_target and _pid(binary) is None
    f = answers(d, kind)

    dry = d.cli("apply", str(f), "--dry-run")
    assert dry.returncode == 0, dry.stdout + dry.stderr
    assert "Web server:" in dry.stdout and ("  start nginx: " if kind == "nginx" else "  start Apache httpd: ") in dry.stdout
    assert f"disable {stock}: remove its link to {stock_target}, the file stays" in dry.stdout

    proc = d.cli("apply", str(f))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    via = "nginx" if kind == "nginx" else "Apache httpd"
    assert f"ok check through the web server: http://omero.example.org/omero/: the login page and a static file " \
           f"answer 200 through {via}" in proc.stdout, proc.stdout
    assert "Done. OMERO.web answers at http://omero.example.org/omero/\n" in proc.stdout
    assert f"through {via}, the login page http://omero.example.org/omero/webclient/login/ and the static file " \
           "http://omero.example.org/omero/static/webgateway/css/ome.body.css answered 200" in proc.stdout
    assert _pid(binary) is not None, "apply started the server"
    assert not os.path.lexists(stock) and Path(stock).parent.parent.joinpath(
        "sites-available", Path(stock).name).exists(), "only the link is removed"

    # the default site of port 80: by IP address, by any name, over IPv4 and IPv6
    for url, host in (("http://127.0.0.1/omero/webclient/login/", None),
                      ("http://[::1]/omero/webclient/login/", None),
                      ("http://127.0.0.1/omero/webclient/login/", "vm.example.net")):
        r = get(url, host)
        assert served_by_omero(r), (url, host, r.status, r.body[:300])
    # the prefix is a directory: /omero redirects to /omero/, and /omeroxyz is not OMERO.web's
    r = get("http://127.0.0.1/omero")
    assert r.status == 301 and r.headers["location"].endswith("/omero/"), (r.status, r.headers)
    r = get("http://127.0.0.1/omeroxyz/webclient/login/")
    assert r.status == 404 and ("nginx" if kind == "nginx" else "Apache") in r.body, r.body[:300]

    again = d.cli("apply", str(f))
    assert again.returncode == 0 and "Nothing to change" in again.stdout, again.stdout + again.stderr

    back = d.cli("rollback")
    assert back.returncode == 0, back.stdout + back.stderr
    assert os.readlink(stock) == stock_target, "rollback put the stock site's link back"
    # (rollback restores the files; the server serves them after its next reload)
    reload = [binary, "-s", "reload"] if kind == "nginx" else ["apache2ctl", "graceful"]
    subprocess.run(reload, check=True, capture_output=True)
    until(lambda: stock_page(get("http://127.0.0.1/")), 20, "the stock page served again after the reload")


def test_with_default_site_false_the_stock_site_stays_and_omero_web_answers_to_its_name(deployment, system_web):
    d = deployment
    f = answers(d, "nginx", web_server={"default_site": False})
    proc = d.cli("apply", str(f))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "disable /etc/nginx/sites-enabled/default" not in proc.stdout
    assert ("note: web_server.default_site is false: requests to port 80 by IP address or another name reach "
            "/etc/nginx/sites-enabled/default, not OMERO.web; browsers must use omero.example.org.") in proc.stdout
    assert "Done. OMERO.web answers at http://omero.example.org/omero/" in proc.stdout
    assert served_by_omero(get("http://127.0.0.1/omero/webclient/login/", "omero.example.org"))
    assert stock_page(get("http://127.0.0.1/"))  # by IP address: the stock site


def test_https_front_door_is_checked_with_the_server_name_over_tls(deployment, system_web, tmp_path):
    d = deployment
    crt, key = tmp_path / "omero.pem", tmp_path / "omero.key"
    subprocess.run([parts.require("openssl"), "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", "/CN=omero.example.org", "-keyout", str(key), "-out", str(crt)],
                   check=True, capture_output=True)
    f = answers(d, "nginx", web_server={"https": {"certificate": str(crt), "key": str(key)}})
    proc = d.cli("apply", str(f))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "Done. OMERO.web answers at https://omero.example.org/omero/\n" in proc.stdout
    assert "https://omero.example.org/omero/webclient/login/ through nginx (127.0.0.1:443, Host omero.example.org): " \
           "200 OK" in proc.stdout
    redirect = get("http://[::1]/omero/webclient/login/")
    assert redirect.status == 301 and redirect.headers["location"].startswith("https://")


def test_a_site_that_shadows_omero_web_fails_the_front_door_and_everything_is_restored(deployment, system_web):
    """Another site claims the same name and is read first: gunicorn answers, but browsers would not reach it."""
    d = deployment
    shadow = Path("/etc/nginx/sites-enabled/00-shadow")
    shadow.write_text("server {\n    listen 80;\n    server_name omero.example.org;\n    return 404;\n}\n")
    f = answers(d, "nginx")
    proc = d.cli("apply", str(f))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "FAILED check through the web server: OMERO.web does not answer through nginx:" in proc.stdout
    assert "the login page http://omero.example.org/omero/webclient/login/ through nginx " \
           "(127.0.0.1:80, Host omero.example.org): 404 Not Found" in proc.stdout
    assert "(it was not running before this run): done" in proc.stdout
    assert _pid("nginx") is None, "the server this run started is stopped again"
    assert os.readlink("/etc/nginx/sites-enabled/default") == "/etc/nginx/sites-available/default"
    assert not os.path.lexists("/etc/nginx/sites-enabled/omero-web.conf")
    assert not Path("/etc/nginx/sites-available/omero-web.conf").exists()
    assert "answers at" not in proc.stdout + proc.stderr


def test_start_false_checks_nothing_and_says_so(deployment, system_web):
    d = deployment
    f = answers(d, "nginx", start=False)
    proc = d.cli("apply", str(f))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "note: nginx is not running and start is false" in proc.stdout
    assert "start nginx" not in proc.stdout and _pid("nginx") is None
    assert "\nDone.\nNot checked: the public URL through the web server: OMERO.web is not running (start: false), " \
           "so nothing was requested.\nLogs: " in proc.stdout, proc.stdout
    assert "Checked:" not in proc.stdout
