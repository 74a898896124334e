"""The real nginx and the real Apache httpd (Debian's) check every variant of our files, and serve a
real OMERO.web deployed by `omerowizard apply`: the login page through the prefix, a static file from
the static URL, and our maintenance page while OMERO.web is stopped."""

from __future__ import annotations

import os
import ssl
import subprocess
import urllib.request
from pathlib import Path

import pytest

from omerowizard.catalogue import answers
from omerowizard.system import crontab as cron
from omerowizard.features.web_server import site as sitefiles
from omerowizard.model.host import Host
from tests import parts
from tests.parts import nginx_wrapper

MARK = 'id="omerowizard-maintenance"'


# ---------------------------------------------------------------------------- helpers
@pytest.fixture(scope="module")
def cert(tmp_path_factory) -> tuple[Path, Path]:
    d = tmp_path_factory.mktemp("cert")
    crt, key = d / "omero.pem", d / "omero.key"
    subprocess.run([parts.require("openssl"), "req", "-x509",
                    "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=omero.example.org",
                    "-keyout", str(key), "-out", str(crt)], check=True, capture_output=True)
    os.chmod(d, 0o755)
    os.chmod(key, 0o644)
    return crt, key


def apache_wrapper(site: Path, d: Path, https: bool) -> Path:
    mods = ["mpm_event", "authz_core", "mime", "proxy", "proxy_http", "headers", "alias"] + (["ssl"] if https else [])
    conf = d / "apache-wrapper.conf"
    conf.write_text("\n".join([
        'ServerRoot "/etc/apache2"', f"PidFile {d}/apache.pid", f"ErrorLog {d}/apache-error.log",
        "ServerName localhost", "User www-data", "Group www-data", "TypesConfig /etc/mime.types",
        *[f"LoadModule {m}_module /usr/lib/apache2/modules/mod_{m}.so" for m in mods],
        f"Include {site}", ""]))
    return conf


def render_site(tmp_path: Path, kind: str, prefix: str, https: tuple[Path, Path] | None, port: int,
                https_port: int, app_port: int = 4080) -> Path:
    ws = {"kind": kind, "server_name": "omero.example.org", "port": port,
          "config_path": str(tmp_path / f"{kind}.conf"), "max_body_size": "200m"}
    if https:
        ws["https"] = {"certificate": str(https[0]), "key": str(https[1]), "port": https_port}
    a = answers.validate({"omero": {"omerodir": str(tmp_path / "OMERO.web")}, "web_server": ws, "prefix": prefix,
                          "application_server": {"port": app_port}})
    site = sitefiles.wanted_files(a, Host(), None, [])[0]
    Path(site.path).write_text(site.content)
    return Path(site.path)


VARIANTS = [pytest.param(prefix, https, port, id=f"prefix{prefix}-{'https' if https else 'http'}-{port}")
            for prefix in ("/", "/omero") for https in (False, True) for port in (80, 8081)]


# ---------------------------------------------------------------------------- every variant passes the real check
@pytest.mark.parametrize("prefix, https, port", VARIANTS)
def test_every_nginx_variant_passes_nginx_t(tmp_path, cert, prefix, https, port):
    nginx = parts.require("nginx")
    site = render_site(tmp_path, "nginx", prefix, cert if https else None, port, 8443 if port != 80 else 443)
    proc = subprocess.run([nginx, "-t", "-c", str(nginx_wrapper(site, tmp_path)), "-e", str(tmp_path / "e.log")],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr + site.read_text()
    assert "test is successful" in proc.stderr


@pytest.mark.parametrize("prefix, https, port", VARIANTS)
def test_every_apache_variant_passes_apache2_t(tmp_path, cert, prefix, https, port):
    apache = parts.require("apache2")
    site = render_site(tmp_path, "apache", prefix, cert if https else None, port, 8443 if port != 80 else 443)
    proc = subprocess.run([apache, "-t", "-f", str(apache_wrapper(site, tmp_path, https))],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr + site.read_text()
    assert "Syntax OK" in proc.stderr


# ---------------------------------------------------------------------------- serving a real OMERO.web
@pytest.fixture
def cleanup_cron(deployment):
    yield
    cron.set_job("omero-web", str(deployment.omerodir), None)


def get(url: str, **kw) -> parts.Response:
    if url.startswith("https://"):
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        req = urllib.request.Request(url)
        try:
            with urllib.request.urlopen(req, context=ctx, timeout=10) as r:
                return parts.Response(r.status, dict(r.headers), r.read().decode("utf-8", "replace"))
        except urllib.error.HTTPError as e:
            return parts.Response(e.code, dict(e.headers), e.read().decode("utf-8", "replace"))
    return parts.http_get(url, **kw)


def a_static_file(omerodir: Path) -> tuple[str, bytes]:
    f = next((omerodir / "var" / "static").rglob("*.css"))
    return str(f.relative_to(omerodir / "var" / "static")), f.read_bytes()


def deploy(deployment, web_server: dict, prefix: str) -> None:
    path = deployment.answers_file({"web_server": web_server, "prefix": prefix,
                                    "application_server": {"workers": 1}})
    first = deployment.cli("apply", str(path))
    assert first.returncode == 0, first.stdout + first.stderr
    assert "write web-server files" in first.stdout and "-t" in first.stdout, first.stdout
    again = deployment.cli("apply", str(path))
    assert again.returncode == 0, again.stdout + again.stderr
    assert "Nothing to change" in again.stdout, again.stdout


def test_nginx_serves_omero_web_over_https_below_a_prefix(deployment, cert, cleanup_cron):
    nginx = parts.require("nginx")
    http_port, https_port = parts.free_port(), parts.free_port()
    site = deployment.workdir / "site" / "omero-web.conf"
    deploy(deployment, {"kind": "nginx", "port": http_port, "config_path": str(site),
                        "https": {"certificate": str(cert[0]), "key": str(cert[1]), "port": https_port}}, "/omero")
    wrapper = nginx_wrapper(site, deployment.workdir)
    subprocess.run([nginx, "-c", str(wrapper), "-e", str(deployment.workdir / "e.log")], check=True)
    try:
        parts.wait_port(https_port)
        login = get(f"https://127.0.0.1:{https_port}/omero/webclient/login/")
        assert login.status == 200 and "OMERO" in login.body
        redirect = get(f"http://127.0.0.1:{http_port}/omero/webclient/login/")
        assert redirect.status == 301
        assert redirect.headers["location"] == f"https://127.0.0.1:{https_port}/omero/webclient/login/"
        rel, data = a_static_file(deployment.omerodir)
        static = get(f"https://127.0.0.1:{https_port}/omero/static/{rel}")
        assert static.status == 200 and static.body.encode() == data
        deployment.omero("web", "stop")
        down = get(f"https://127.0.0.1:{https_port}/omero/webclient/login/")
        assert down.status == 503 and MARK in down.body
    finally:
        subprocess.run([nginx, "-c", str(wrapper), "-e", str(deployment.workdir / "e.log"), "-s", "stop"])


def test_apache_serves_omero_web_below_a_prefix(deployment, cleanup_cron):
    apache = parts.require("apache2")
    port = parts.free_port()
    site = deployment.workdir / "site" / "apache.conf"
    deploy(deployment, {"kind": "apache", "port": port, "config_path": str(site)}, "/omero")
    wrapper = apache_wrapper(site, deployment.workdir, False)
    start = subprocess.run([apache, "-f", str(wrapper), "-k", "start"], capture_output=True, text=True)
    assert start.returncode == 0, start.stderr
    try:
        parts.wait_port(port)
        login = get(f"http://127.0.0.1:{port}/omero/webclient/login/")
        assert login.status == 200 and "OMERO" in login.body
        rel, data = a_static_file(deployment.omerodir)
        static = get(f"http://127.0.0.1:{port}/omero/static/{rel}")
        assert static.status == 200 and static.body.encode() == data
        assert static.headers.get("content-type", "").startswith("text/css")
        deployment.omero("web", "stop")
        down = get(f"http://127.0.0.1:{port}/omero/webclient/login/")
        assert down.status == 503 and MARK in down.body
    finally:
        subprocess.run([apache, "-f", str(wrapper), "-k", "stop"], capture_output=True)


def test_apache_serves_omero_web_over_https_at_the_root(deployment, cert, cleanup_cron):
    apache = parts.require("apache2")
    http_port, https_port = parts.free_port(), parts.free_port()
    site = deployment.workdir / "site" / "apache.conf"
    deploy(deployment, {"kind": "apache", "port": http_port, "config_path": str(site),
                        "https": {"certificate": str(cert[0]), "key": str(cert[1]), "port": https_port}}, "/")
    wrapper = apache_wrapper(site, deployment.workdir, True)
    start = subprocess.run([apache, "-f", str(wrapper), "-k", "start"], capture_output=True, text=True)
    assert start.returncode == 0, start.stderr
    try:
        parts.wait_port(https_port)
        login = get(f"https://127.0.0.1:{https_port}/webclient/login/")
        assert login.status == 200 and "OMERO" in login.body
        redirect = get(f"http://127.0.0.1:{http_port}/webclient/login/")
        assert redirect.status == 301
        assert redirect.headers["location"] == f"https://omero.example.org:{https_port}/webclient/login/"
        rel, data = a_static_file(deployment.omerodir)
        assert get(f"https://127.0.0.1:{https_port}/static/{rel}").body.encode() == data
        deployment.omero("web", "stop")
        down = get(f"https://127.0.0.1:{https_port}/webclient/login/")
        assert down.status == 503 and MARK in down.body
    finally:
        subprocess.run([apache, "-f", str(wrapper), "-k", "stop"], capture_output=True)


def test_nginx_development_runs_as_the_omero_user_at_the_root(deployment, cleanup_cron):
    nginx = parts.require("nginx")
    port = parts.free_port()
    deploy(deployment, {"kind": "nginx-development", "port": port, "config_path": None}, "/")
    conf = deployment.omerodir / "etc" / "nginx-development.conf"
    errlog = deployment.omerodir / "var" / "log" / "nginx_error.log"
    run = ["runuser", "-u", "omero-web", "--", nginx, "-c", str(conf), "-e", str(errlog)]
    subprocess.run(run, check=True)
    try:
        parts.wait_port(port)
        pid = int((deployment.omerodir / "var" / "nginx" / "nginx.pid").read_text())
        owner = subprocess.run(["ps", "-o", "user=", "-p", str(pid)], capture_output=True, text=True).stdout.strip()
        assert owner == "omero-web"
        login = get(f"http://127.0.0.1:{port}/webclient/login/")
        assert login.status == 200 and "OMERO" in login.body
        rel, data = a_static_file(deployment.omerodir)
        assert get(f"http://127.0.0.1:{port}/static/{rel}").body.encode() == data
        deployment.omero("web", "stop")
        down = get(f"http://127.0.0.1:{port}/webclient/login/")
        assert down.status == 503 and MARK in down.body
    finally:
        subprocess.run([*run, "-s", "stop"])


# ---------------------------------------------------------------------------- refusals and restores
@pytest.mark.parametrize("bad", ["example.org; include /etc/shadow", "a}"])
def test_a_server_name_that_could_end_a_directive_exits_2_and_writes_nothing(deployment, bad):
    site = deployment.workdir / "site" / "omero-web.conf"
    path = deployment.answers_file({"web_server": {"server_name": bad, "config_path": str(site)}})
    proc = deployment.cli("apply", str(path))
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "web_server.server_name" in proc.stderr and "nothing was changed" in proc.stderr
    assert not site.exists() and not deployment.config_xml.exists()


def test_a_file_nginx_refuses_is_restored_to_the_previous_one(tmp_path, monkeypatch):
    """Real nginx -t refuses the file of a real plan (a member of nodes.members whose name does not resolve:
    "host not found in upstream"); the file of the previous run stays as it was."""
    from omerowizard.model.errors import ApplyError
    from omerowizard.plan.changes import files as serverfiles
    from omerowizard.plan.planner import make_plan
    from tests.support.demo import FakeMachine

    parts.require("nginx")
    monkeypatch.setenv("OMEROWIZARD_HOME", str(tmp_path / "home"))
    site = tmp_path / "omero-web.conf"
    before = {"omero": {"omerodir": str(tmp_path / "OMERO.web"), "venv": str(tmp_path / "venv")},
              "web_server": {"config_path": str(site), "server_name": "omero.example.org"},
              "sessions": {"backend": "redis", "location": "redis://redis.example.org:6379/0"}}
    machine = FakeMachine().deploy(answers.validate(before))  # the previous run, with one node: its file is on disk
    site.write_text(machine.files[str(site)])
    good = site.read_text()
    a = answers.validate({**before, "nodes": {"members": [{"host": "127.0.0.1", "port": 4080},
                                                          {"host": "web2.invalid", "port": 4080}]}})
    plan = make_plan(a, machine.state(a))
    assert [f.path for f in plan.files] == [str(site)] and "web2.invalid:4080" in plan.files[0].new
    said: list[str] = []
    with pytest.raises(ApplyError) as err:
        serverfiles.apply_files(plan, said.append)
    assert "nginx -t" in str(err.value) and "host not found in upstream" in str(err.value), err.value
    assert site.read_text() == good
    assert "restored the previous files" in said


# ---------------------------------------------------------------------------- Debian's own layout
@pytest.mark.parametrize("kind, available, enabled, check", [
    ("nginx", "/etc/nginx/sites-available", "/etc/nginx/sites-enabled", "nginx -t: ok"),
    ("apache", "/etc/apache2/sites-available", "/etc/apache2/sites-enabled", "apache2ctl -t: ok"),
])
def test_default_debian_layout_links_the_site_and_checks_the_whole_server(deployment, cleanup_cron, kind, available,
                                                                          enabled, check):
    parts.require("nginx" if kind == "nginx" else "apache2")
    site, link = Path(available, "omero-web.conf"), Path(enabled, "omero-web.conf")
    with parts.stock_system_web(deployment.workdir / "etc-before"):  # one test at a time, across checkouts
        path = deployment.answers_file({"web_server": {"kind": kind, "port": parts.free_port(),
                                                       "config_path": None}, "start": False})
        proc = deployment.cli("apply", str(path))
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert f"-t with {site}: ok" in proc.stdout and check in proc.stdout, proc.stdout
        assert os.readlink(link) == str(site)
        assert f"/{deployment.omerodir.name}/var/static/" in site.read_text()
