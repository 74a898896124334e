"""Zero downtime for every change on one host (issue 25), against the real parts: the real OMERO.web (gunicorn),
a private real nginx (or Apache httpd) on free loopback ports serving omerowizard's site, and a client requesting
the login page through it every 50 ms while omerowizard changes the number of workers (on the running master),
the application port or the timeout (blue/green: a new master beside the running one, the web server switched to
it). Also: the preflight of a port change, and a run killed at random moments of a switch."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import time
from pathlib import Path

import pytest

from bench.load import Load
from omerowizard.system import gunicorn
from omerowizard.system.distributions import packages as installed
from tests import parts
from tests.e2e.conftest import USER
from tests.e2e.test_reload import Nginx, site_of
from tests.e2e.test_upgrade import OLD, UPGRADE_VENV, newest  # noqa: F401 (the fixture)
from tests.e2e.test_safety import read_until, spawn
from tests.e2e.test_webservers import apache_wrapper

pytestmark = pytest.mark.e2e


def masters(d) -> list[gunicorn.Running]:
    return gunicorn.masters(d.omerodir, USER)


@pytest.fixture
def served(deployment):
    """A running deployment behind a private nginx that includes its site: (deployment, base answers, nginx,
    the public login URL)."""
    d = deployment
    port = parts.free_port()
    base = {"web_server": {"port": port}, "sessions": {"clearsessions": "off"},
            "application_server": {"workers": 2}}
    proc = d.cli("apply", str(d.answers_file(base, name="base.yml")))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    nginx = Nginx(site_of(d), d.workdir)
    with nginx.serving(port):
        url = f"http://127.0.0.1:{port}/webclient/login/"
        assert parts.http_get(url).status == 200
        yield d, base, nginx, url
    for m in masters(d):  # a failed test must not leave a master behind
        os.kill(m.pid, signal.SIGTERM)


def under_load(d, url: str, answers: dict, name: str):
    with Load(url, interval=0.05) as load:
        load.wait_for(10)
        proc = d.cli("apply", str(d.answers_file(answers, name=name)))
        load.wait_for(10)
    return proc, load.summary()


def one_master(d) -> gunicorn.Running:
    found = masters(d)
    assert len(found) == 1, found
    assert gunicorn.read_pidfile(d.omerodir) == found[0].pid  # `omero web status/stop` read this
    status = d.omero("web", "status")
    assert f"(PID {found[0].pid})" in status.stdout, status.stdout
    return found[0]


def test_a_workers_change_is_applied_to_the_running_master(served):
    d, base, _, url = served
    before = one_master(d)
    changed = {**base, "application_server": {"workers": 4}}
    proc, summary = under_load(d, url, changed, "workers.yml")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "change the number of gunicorn workers to 4" in proc.stdout and "omero web restart" not in proc.stdout
    assert summary.made >= 20 and summary.failed == 0, summary
    after = one_master(d)
    assert after.pid == before.pid and len(gunicorn.workers(after.pid)) == 4
    assert d.config()["omero.web.wsgi_workers"] == "4"


def test_a_port_change_switches_to_a_new_master_without_a_failed_request(served):
    d, base, _, url = served
    blue = one_master(d)
    new_port = parts.free_port()
    changed = {**base, "application_server": {"workers": 2, "port": new_port}}
    proc, summary = under_load(d, url, changed, "port.yml")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "switch OMERO.web without downtime" in proc.stdout and "omero web restart" not in proc.stdout
    assert summary.made >= 20 and summary.failed == 0, summary
    green = one_master(d)
    assert green.pid != blue.pid and green.port == new_port
    assert f"127.0.0.1:{new_port}" in site_of(d).read_text()
    assert d.cli("apply", "--dry-run", str(d.answers_file(changed, name="port.yml"))).stdout.startswith(
        "Nothing to change")


def test_a_timeout_change_moves_aside_and_back_to_the_same_port(served):
    d, base, _, url = served
    blue = one_master(d)
    changed = {**base, "application_server": {"workers": 2, "timeout": 90}}
    proc, summary = under_load(d, url, changed, "timeout.yml")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "spare port" in proc.stdout, proc.stdout
    assert summary.made >= 20 and summary.failed == 0, summary
    final = one_master(d)
    assert final.pid != blue.pid and final.port == d.app_port
    assert gunicorn.option(final.cmdline, "--timeout") == "90"


def test_a_port_change_to_a_taken_port_stops_at_preflight_with_nothing_changed(served, tmp_path):
    d, base, _, url = served
    blue = one_master(d)
    taken = parts.free_port()
    squatter = subprocess.Popen(["python3", "-m", "http.server", str(taken), "--bind", "127.0.0.1"],
                                cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        parts.wait_port(taken)
        config, site = d.config_xml.read_bytes(), site_of(d).read_bytes()
        proc = d.cli("apply", str(d.answers_file({**base, "application_server": {"workers": 2, "port": taken}},
                                                 name="taken.yml")))
        assert proc.returncode == 1, proc.stdout + proc.stderr
        assert "preflight failed; nothing was changed" in proc.stderr
        assert f"application_server.port {taken}" in proc.stderr and "already in use" in proc.stderr
        assert d.config_xml.read_bytes() == config and site_of(d).read_bytes() == site
        assert one_master(d).pid == blue.pid
    finally:
        squatter.terminate()
        squatter.wait(10)


def test_the_web_servers_own_port_is_a_bad_answer(served):
    d, base, _, _ = served
    port = base["web_server"]["port"]
    proc = d.cli("apply", str(d.answers_file({**base, "application_server": {"workers": 2, "port": port}},
                                             name="same.yml")))
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "application_server.port" in proc.stderr and "web_server.port" in proc.stderr


def test_a_run_killed_during_a_switch_leaves_one_omero_web_serving_and_the_next_run_repairs(served):
    """As the kill storm of apply (test_hardening), at random moments of blue/green switches: right after the
    kill the site answers through the web server; the next run leaves exactly one master, the one config.xml
    and the site say."""
    d, base, _, url = served
    rng = random.Random(20261203)
    ports = [d.app_port, parts.free_port()]
    kills = 0
    for i in range(4):
        answers = {**base, "application_server": {"workers": 2, "port": ports[(i + 1) % 2]}}
        proc = spawn(d, "apply", str(d.answers_file(answers, name=f"kill-{i}.yml")))
        read_until(proc, "switch OMERO.web (blue/green)", timeout=120)
        time.sleep(rng.uniform(0, 6))
        if proc.poll() is None:
            proc.kill()
            kills += 1
        proc.communicate(timeout=60)
        assert parts.http_get(url).status == 200, f"round {i}: nothing serves right after the kill"
        again = d.cli("apply", str(d.answers_file(answers, name=f"again-{i}.yml")))
        assert again.returncode == 0, f"round {i}:\n{again.stdout}{again.stderr}"
        final = one_master(d)
        assert final.port == ports[(i + 1) % 2], f"round {i}: {final}"
        assert parts.http_get(url).status == 200
    assert kills >= 2, kills


def test_a_port_change_behind_apache_switches_without_a_failed_request(deployment):
    d = deployment
    port = parts.free_port()
    site = d.workdir / "apache" / "omero-web.conf"
    base = {"web_server": {"kind": "apache", "port": port, "config_path": str(site)},
            "sessions": {"clearsessions": "off"}, "application_server": {"workers": 2}}
    proc = d.cli("apply", str(d.answers_file(base, name="base.yml")))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    apache = parts.require("apache2")
    wrapper = apache_wrapper(site, d.workdir, False)
    start = subprocess.run([apache, "-f", str(wrapper), "-k", "start"], capture_output=True, text=True)
    assert start.returncode == 0, start.stderr
    try:
        parts.wait_port(port)
        url = f"http://127.0.0.1:{port}/webclient/login/"
        assert parts.http_get(url).status == 200
        new_port = parts.free_port()
        changed = {**base, "application_server": {"workers": 2, "port": new_port}}
        proc, summary = under_load(d, url, changed, "port.yml")
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert "switch OMERO.web without downtime" in proc.stdout
        assert summary.made >= 20 and summary.failed == 0, summary
        assert one_master(d).port == new_port
    finally:
        subprocess.run([apache, "-f", str(wrapper), "-k", "stop"], capture_output=True)
        for m in masters(d):
            os.kill(m.pid, signal.SIGTERM)


def rollback_under_load(d, url: str):
    with Load(url, interval=0.05) as load:
        load.wait_for(10)
        proc = d.cli("rollback", timeout=900)
        load.wait_for(10)
    return proc, load.summary()


def test_the_rollback_of_a_reload_class_change_reloads_and_keeps_serving(served):
    d, base, _, url = served
    blue = one_master(d)
    changed = {**base, "cors": {"mode": "origins", "origins": ["https://a.example.org"]}}
    proc, summary = under_load(d, url, changed, "cors.yml")
    assert proc.returncode == 0 and summary.failed == 0, proc.stdout + proc.stderr + str(summary)
    back, summary = rollback_under_load(d, url)
    assert back.returncode == 0, back.stdout + back.stderr
    assert "OMERO.web: reloaded gracefully" in back.stdout and "answers 200" in back.stdout, back.stdout
    assert summary.made >= 20 and summary.failed == 0, summary
    assert one_master(d).pid == blue.pid  # reloaded, never restarted
    assert "omero.web.cors_origin_whitelist" not in d.config()


def test_the_rollback_of_a_port_change_switches_back(served):
    d, base, _, url = served
    changed = {**base, "application_server": {"workers": 2, "port": parts.free_port()}}
    proc, summary = under_load(d, url, changed, "port.yml")
    assert proc.returncode == 0 and summary.failed == 0, proc.stdout + proc.stderr + str(summary)
    back, summary = rollback_under_load(d, url)
    assert back.returncode == 0, back.stdout + back.stderr
    assert "switched back without downtime" in back.stdout, back.stdout
    assert summary.made >= 20 and summary.failed == 0, summary
    assert one_master(d).port == d.app_port
    assert f"127.0.0.1:{d.app_port}" in site_of(d).read_text()


def test_an_upgrade_runs_beside_and_its_rollback_switches_back_without_a_reinstall(deployment, newest):
    """omero-web OLD -> the newest in a new environment beside the running one, under load through a private
    nginx; then `omerowizard rollback` switches back to the kept environment (pip is not run)."""
    d = deployment
    port = parts.free_port()
    base = {"omero": {"venv": str(UPGRADE_VENV)}, "web_server": {"port": port},
            "sessions": {"clearsessions": "off"}, "application_server": {"workers": 2}}
    first = d.cli("apply", str(d.answers_file(base, name="old.yml")))
    assert first.returncode == 0, first.stdout + first.stderr
    nginx = Nginx(site_of(d), d.workdir)
    try:
        with nginx.serving(port):
            url = f"http://127.0.0.1:{port}/webclient/login/"
            wanted = {**base, "omero": {**base["omero"], "web_version": newest}}
            up, summary = under_load(d, url, wanted, "new.yml")
            assert up.returncode == 0, up.stdout + up.stderr
            beside = Path(f"{UPGRADE_VENV}-omero-web-{newest}")
            assert f"upgrade OMERO.web in a new environment" in up.stdout and str(beside) in up.stdout
            assert summary.made >= 20 and summary.failed == 0, summary
            assert installed(UPGRADE_VENV)["omero-web"] == OLD  # the running one was never touched
            assert installed(beside)["omero-web"] == newest
            green = one_master(d)
            assert green.cmdline[1] == f"{beside}/bin/gunicorn", green.cmdline
            assert d.cli("apply", "--dry-run", str(d.answers_file(wanted, name="new.yml"))).stdout.startswith(
                "Nothing to change")

            back, summary = rollback_under_load(d, url)
            assert back.returncode == 0, back.stdout + back.stderr
            assert "switched back without downtime" in back.stdout and "pip" not in back.stdout, back.stdout
            assert summary.made >= 20 and summary.failed == 0, summary
            blue = one_master(d)
            assert blue.cmdline[1] == f"{UPGRADE_VENV}/bin/gunicorn", blue.cmdline
    finally:
        for m in masters(d):
            os.kill(m.pid, signal.SIGTERM)
