"""What the front-door check can request after a plan, and why not when it cannot (the final message
quotes the reason). The plan is the real one; only the machine's state (files, pid files) is given."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from omerowizard.catalogue import answers
from omerowizard.plan import frontdoor
from omerowizard.plan.plan import STEP as FRONT_DOOR_STEP
from omerowizard.plan.changes import files as serverfiles
from omerowizard.system.omero import OmeroTarget
from omerowizard.plan.planner import make_plan
from omerowizard.model.host import FileFact
from omerowizard.state.probe import State


@pytest.fixture(autouse=True)
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("OMEROWIZARD_HOME", str(tmp_path / "home"))


def plan_of(text: str, running: bool = True, files=None):
    a = answers.load_text(text)
    state = State(target=OmeroTarget("omero-web", Path("/nonexistent/venv"), Path("/nonexistent/omerodir")),
                  installed=True, packages={"django": "5.2", "omero-web": "5.33.2"}, running_pid=1 if running else None,
                  files=files or {})
    return make_plan(a, state)


def test_a_file_outside_the_servers_configuration_is_not_requested_and_the_reason_names_it(tmp_path):
    site = tmp_path / "omero-web.conf"
    p = plan_of(f"web_server: {{kind: nginx, server_name: omero.example.org, config_path: {site}}}\nprefix: /omero\n")
    door, why = p.door, p.door_why
    assert door is None
    assert why == (f"{site} is outside nginx's configuration: include it and reload nginx, then request "
                   "http://omero.example.org/omero/")
    assert FRONT_DOOR_STEP not in p.steps()


def test_a_staged_file_is_not_requested(tmp_path, monkeypatch):
    site = "/etc/nginx/sites-available/omero-web.conf"
    p = plan_of(f"web_server: {{kind: nginx, server_name: omero.example.org, config_path: {site}}}\n",
                files={site: FileFact(writable=False)})  # machine state: a run that may not write there
    assert next(f for f in p.files if f.path == site).staged
    door, why = p.door, p.door_why
    assert door is None and why.startswith(f"{site} is staged for an administrator to install")


def test_nothing_is_requested_when_omero_web_does_not_run_after_the_apply(tmp_path):
    p = plan_of(f"web_server: {{config_path: {tmp_path}/x.conf}}\nstart: false\n", running=False)
    assert (p.door, p.door_why) == (None, "OMERO.web is not running (start: false), so nothing was requested")


def test_the_door_is_the_https_port_with_the_server_name_and_the_static_file_below_the_static_url():
    a = answers.load_text("web_server: {server_name: omero.example.org, https: {certificate: /c.pem, key: /k.pem, "
                          "port: 8443}}\nprefix: /omero\n")
    p = make_plan(a, State(target=OmeroTarget("omero-web", Path("/x"), Path("/x")), installed=True, running_pid=1))
    d = frontdoor._door_of(p, "nginx", 80)
    assert (d.scheme, d.port, d.server_name) == ("https", 8443, "omero.example.org")
    assert d.login_path == "/omero/webclient/login/"
    assert d.static_path == "/omero/static/webgateway/css/ome.body.css"
    assert d.public_url == "https://omero.example.org:8443/omero/"


def test_a_run_that_did_not_touch_omero_web_still_checks_its_login_page_when_the_door_cannot_be(tmp_path):
    """An HTTPS apply wrote only the nginx file (outside nginx's configuration here): there was no "Checked:"
    line at all. The login page of the running OMERO.web is requested on the application server (issue 26)."""
    import http.server
    import threading

    from omerowizard.run.apply import Applier

    class Login(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200 if self.path == "/webclient/login/" else 404)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Login)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        port = server.server_address[1]
        site = tmp_path / "omero-web.conf"
        a = answers.load_text(f"web_server: {{kind: nginx, server_name: omero.example.org, config_path: {site}, "
                              f"https: {{certificate: /c.pem, key: /k.pem}}}}\napplication_server: {{port: {port}}}\n")
        state = plan_of("{}\n").state
        configured = dataclasses.replace(state, config=dict(make_plan(a, state).sets))  # OMERO.web's side done
        p = make_plan(a, configured)
        assert p.web is None and p.files, "a run that writes the web-server files only"
        events = []
        applier = Applier(p, None, events.append)
        assert applier.check_front_door() is None
        message = applier.final_message(None)
        assert f"Checked: the login page http://127.0.0.1:{port}/webclient/login/ answered 200" in message, message
        assert "Not checked: the public URL through the web server" in message
    finally:
        server.shutdown()
