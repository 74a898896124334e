"""Reconfiguring a live OMERO.web without dropping a request (issue 16), against the real parts: the
real OMERO.web (gunicorn), a private real nginx on a free loopback port in front of it, and a client
requesting the login page through that nginx every 50 ms while omerowizard applies a change."""

from __future__ import annotations

import contextlib
import subprocess
from pathlib import Path

import pytest

from bench.load import Load
from tests import parts
from tests.parts import nginx_wrapper

ORIGIN = "https://new.example.org"


class Nginx:
    """A private nginx serving the deployment's rendered server block (never the system nginx)."""

    def __init__(self, site: Path, workdir: Path):
        self.exe = parts.require("nginx")
        self.wrapper = nginx_wrapper(site, workdir)
        self.errors = workdir / "nginx-e.log"

    def run(self, *args: str) -> None:
        subprocess.run([self.exe, "-c", str(self.wrapper), "-e", str(self.errors), *args], check=True,
                       capture_output=True)

    @contextlib.contextmanager
    def serving(self, port: int):
        self.run()
        try:
            parts.wait_port(port)
            yield self
        finally:
            subprocess.run([self.exe, "-c", str(self.wrapper), "-e", str(self.errors), "-s", "stop"],
                           capture_output=True)


def deploy(deployment, port: int, extra: dict | None = None) -> dict:
    answers = {"web_server": {"port": port}, "sessions": {"clearsessions": "off"}, **(extra or {})}
    proc = deployment.cli("apply", str(deployment.answers_file(answers)))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert parts.http_get(deployment.login_url()).status == 200
    return answers


def site_of(deployment) -> Path:
    return Path(deployment.base_answers()["web_server"]["config_path"])


def apply_under_load(deployment, url: str, answers: dict, name: str):
    with Load(url, interval=0.05) as load:
        load.wait_for(10)  # some requests before the change
        proc = deployment.cli("apply", str(deployment.answers_file(answers, name=name)))
        load.wait_for(10)  # and after it
    return proc, load.summary(), load


def test_a_cors_change_is_applied_under_load_without_a_failed_request(deployment):
    port = parts.free_port()
    base = deploy(deployment, port)
    nginx = Nginx(site_of(deployment), deployment.workdir)
    with nginx.serving(port):
        url = f"http://127.0.0.1:{port}/webclient/login/"
        assert parts.http_get(url).status == 200
        changed = {**base, "cors": {"mode": "origins", "origins": [ORIGIN]}}
        proc, summary, _ = apply_under_load(deployment, url, changed, "cors.yml")
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert "reload OMERO.web gracefully" in proc.stdout and "omero web restart" not in proc.stdout
        # the reload checked the login page: the final message says so (it did not, issue 26)
        assert f"Checked: the login page {deployment.login_url()} answered 200 on the application server" \
            in proc.stdout, proc.stdout[-2000:]
        assert summary.made >= 20 and summary.failed == 0, summary
        api = parts.http_get(f"http://127.0.0.1:{port}/api/", headers={"Origin": ORIGIN})
        assert api.headers.get("access-control-allow-origin") == ORIGIN
        other = parts.http_get(f"http://127.0.0.1:{port}/api/", headers={"Origin": "https://other.example.org"})
        assert "access-control-allow-origin" not in other.headers


def test_a_session_store_change_is_applied_under_load_without_a_failed_request(deployment, redis_server):
    port = parts.free_port()
    base = deploy(deployment, port)
    nginx = Nginx(site_of(deployment), deployment.workdir)
    with nginx.serving(port):
        url = f"http://127.0.0.1:{port}/webclient/login/"
        changed = {**base, "sessions": {"backend": "redis", "location": redis_server.url}}
        proc, summary, _ = apply_under_load(deployment, url, changed, "redis.yml")
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert "reload OMERO.web gracefully" in proc.stdout
        assert summary.made >= 20 and summary.failed == 0, summary
        # in effect: the new workers look sessions up in Redis
        before = redis_lookups(redis_server)
        page = parts.http_get(f"http://127.0.0.1:{port}/webclient/", headers={"Cookie": f"sessionid={'x' * 32}"})
        assert page.status == 302  # to the login page: no such session
        assert redis_lookups(redis_server) > before


def test_a_port_change_behind_a_web_server_that_is_not_ours_restarts_and_says_why(deployment):
    """The site an administrator copied into their own nginx (omerowizard's file is not included by a running
    server): no switch is possible, so OMERO.web restarts, the review says why, and every failed request gets
    our maintenance page."""
    port = parts.free_port()
    base = deploy(deployment, port)
    copy = deployment.workdir / "admin" / "omero-web.conf"
    copy.parent.mkdir()
    copy.write_text(site_of(deployment).read_text())
    nginx = Nginx(copy, deployment.workdir)
    with nginx.serving(port):
        url = f"http://127.0.0.1:{port}/webclient/login/"
        new_app_port = parts.free_port()
        changed = {**base, "application_server": {"port": new_app_port}}
        with Load(url, interval=0.05) as load:
            load.wait_for(10)
            proc = deployment.cli("apply", str(deployment.answers_file(changed, name="port.yml")))
            copy.write_text(site_of(deployment).read_text())  # the administrator installs the new file
            nginx.run("-s", "reload")
            load.wait_for(5, until=lambda r: r.ok)
        summary = load.summary()
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert "omero web restart" in proc.stdout
        assert "omero.web.application_server.port changed: gunicorn's --bind port" in proc.stdout
        assert "a restart, not a switch without downtime: no running nginx includes" in proc.stdout
        assert summary.failed > 0, summary  # the restart is seen...
        assert summary.failed == summary.maintenance, summary  # ...and each failure got our page
        assert load.requests[-1].ok


def test_a_reload_whose_workers_do_not_boot_is_restored(deployment):
    port = parts.free_port()
    base = deploy(deployment, port)
    before = deployment.config_xml.read_bytes()
    # valid JSON, so extra_config accepts it, but settings.py unpacks each item as a (name, value) pair:
    # the new workers fail while importing the settings
    broken = {**base, "extra_config": {"omero.web.django_additional_settings": [["ONLY_A_NAME"]]}}
    proc = deployment.cli("apply", str(deployment.answers_file(broken, name="broken.yml")))
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "reload OMERO.web" in proc.stdout
    assert "Restored:" in proc.stderr
    assert "failed to boot" in proc.stderr or "exited while booting" in proc.stderr, proc.stderr
    assert deployment.config_xml.read_bytes() == before
    assert parts.http_get(deployment.login_url()).status == 200
    assert "omero.web.django_additional_settings" not in deployment.config()


def redis_lookups(redis) -> int:
    out = subprocess.run([parts.require("redis-cli"), "-p", str(redis.port), "info", "stats"], capture_output=True,
                         text=True, check=True).stdout
    stats = dict(line.split(":", 1) for line in out.splitlines() if ":" in line)
    return int(stats["keyspace_hits"]) + int(stats["keyspace_misses"])


pytestmark = pytest.mark.e2e
