"""The features built on feature modules, against the real OMERO.web: the OMERO.server list (on the login
page, unreachable servers a warning), public access (the password never shown), checked extra settings."""

from __future__ import annotations

import socket

from tests import parts

LIGHT = {"application_server": {"workers": 1}, "sessions": {"clearsessions": "off"}}
PASSWORD = "Pw-e2e-7Qx!r"


def test_a_typo_in_extra_config_exits_2_with_did_you_mean(deployment):
    d = deployment
    f = d.answers_file({"extra_config": {"omero.web.server_lsit": "x"}})
    proc = d.cli("apply", "--dry-run", str(f))
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "did you mean omero.web.server_list" in proc.stderr
    assert not d.config_xml.exists()


def test_a_key_a_feature_owns_exits_2_naming_its_question(deployment):
    d = deployment
    f = d.answers_file({"extra_config": {"omero.web.public.enabled": "maybe"}})
    proc = d.cli("apply", "--dry-run", str(f))
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "extra_config.omero.web.public.enabled: is set by the answer public.enabled" in proc.stderr


def test_two_servers_one_unreachable_deploy_and_the_login_page_lists_both(deployment):
    d = deployment
    with socket.socket() as listener, socket.socket() as closed:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        closed.bind(("127.0.0.1", 0))  # bound, not listening: connections are refused
        up, down = listener.getsockname()[1], closed.getsockname()[1]
        servers = [{"host": "127.0.0.1", "port": up, "name": "Listening"},
                   {"host": "127.0.0.1", "port": down, "name": "Closed"}]
        f = d.answers_file({**LIGHT, "servers": servers})
        dry = d.cli("apply", "--dry-run", str(f))
        assert dry.returncode == 0, dry.stdout + dry.stderr
        assert f"warning: OMERO.server: Closed at 127.0.0.1:{down} cannot be reached" in dry.stdout
        assert "Listening at" not in dry.stdout
        first = d.cli("apply", str(f))
        assert first.returncode == 0, first.stdout + first.stderr
        page = parts.http_get(d.login_url())
        assert page.status == 200
        assert "Listening" in page.body and "Closed" in page.body
        again = d.cli("apply", str(f))
        assert again.returncode == 0 and "Nothing to change" in again.stdout, again.stdout
        # removing one server changes only the server list
        f = d.answers_file({**LIGHT, "servers": servers[:1]}, name="one.yml")
        dry = d.cli("apply", "--dry-run", str(f))
        config_lines = [ln for ln in dry.stdout.splitlines() if ln.startswith("  set ") or ln.startswith("  unset ")]
        assert len(config_lines) == 1 and "omero.web.server_list" in config_lines[0], dry.stdout
        assert d.cli("apply", str(f)).returncode == 0
        assert "Closed" not in parts.http_get(d.login_url()).body


def test_public_access_on_then_off_never_shows_the_password(deployment):
    d = deployment
    on = d.answers_file({**LIGHT, "start": False, "servers": [{"host": "127.0.0.1", "name": "Main"}],
                         "public": {"enabled": True, "user": "public", "password": PASSWORD,
                                    "url_filter": "webgateway", "server": "Main"}})
    first = d.cli("apply", str(on))
    assert first.returncode == 0, first.stdout + first.stderr
    cfg = d.config()
    assert cfg["omero.web.public.enabled"] == "true" and cfg["omero.web.public.password"] == PASSWORD
    assert cfg["omero.web.public.url_filter"] == "^/webgateway"
    assert "omero.web.public.server_id" not in cfg  # 1 (the first server) is OMERO's default
    off = d.answers_file({**LIGHT, "start": False, "servers": [{"host": "127.0.0.1", "name": "Main"}]}, name="off.yml")
    second = d.cli("apply", str(off))
    assert second.returncode == 0, second.stdout + second.stderr
    assert not any(k.startswith("omero.web.public.") for k in d.config())
    log = d.state.command_log.read_text()
    for text in (first.stdout, first.stderr, second.stdout, second.stderr, log):
        assert PASSWORD not in text
    assert "omero.web.public.password" in log  # fed, masked
