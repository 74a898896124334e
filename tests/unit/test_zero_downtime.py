"""Zero downtime on one host (issue 25): what the plan chooses for each change of a running OMERO.web, the
answers it refuses, and the pieces of the blue/green switch that need no real server."""

from __future__ import annotations

import pytest

from omerowizard.catalogue import answers
from omerowizard.model.errors import AnswersError


def problems(text: str) -> list:
    with pytest.raises(AnswersError) as info:
        answers.load_text(text, "a.yml")
    return info.value.problems


def test_the_application_port_equal_to_the_web_server_port_is_refused_naming_both_keys():
    found = problems("web_server:\n  kind: nginx\n  port: 8080\napplication_server:\n  port: 8080\n")
    assert [p.key for p in found] == ["application_server.port"]
    p = found[0]
    assert "web_server.port" in p.message and "8080" in p.message
    assert p.line == 5


def test_the_application_port_equal_to_the_https_port_is_refused():
    found = problems("web_server:\n  kind: nginx\n  port: 8080\n  https:\n    certificate: /etc/c.pem\n"
                     "    key: /etc/k.pem\n    port: 8443\napplication_server:\n  port: 8443\n")
    assert [p.key for p in found] == ["application_server.port"]
    assert "web_server.https.port" in found[0].message


def test_the_same_ports_are_fine_when_no_web_server_runs_on_this_host():
    answers.load_text("web_server:\n  kind: none\napplication_server:\n  port: 8080\n", "a.yml")


# ---------------------------------------------------------------------------- what the plan chooses
import dataclasses  # noqa: E402
from pathlib import Path  # noqa: E402

from omerowizard.features.upgrade import Measured, beside_path  # noqa: E402
from omerowizard.features.web_server import site as site_files  # noqa: E402
from omerowizard.model.host import FileFact, Front, Host  # noqa: E402
from omerowizard.plan.planner import make_plan  # noqa: E402
from omerowizard.state.probe import State  # noqa: E402
from omerowizard.system import gunicorn  # noqa: E402
from omerowizard.system.deployments import Deployment  # noqa: E402
from omerowizard.system.omero import OmeroTarget  # noqa: E402
from omerowizard.system import webservers  # noqa: E402

ALL = {"django": "5.2", "omero-web": "5.33.2", "omero-py": "5.23.0"}
SITE = "/srv/omero/site.conf"
BASE = f"web_server: {{kind: {{kind}}, port: 8080, config_path: {SITE}}}\nsessions: {{clearsessions: 'off'}}\n"


NODES = "nodes: {members: [{host: 127.0.0.1, port: 4080}, {host: 10.0.0.2, port: 4080}]}\n"
REDIS = "sessions: {backend: redis, location: 'redis://10.0.0.9:6379/0', clearsessions: 'off'}"


def base(kind: str = "nginx", nodes: bool = False) -> str:
    text = BASE.replace("{kind}", kind)
    return text.replace("sessions: {clearsessions: 'off'}", REDIS) + NODES if nodes else text


def served_state(text: str, kind: str = "nginx", front: bool = True, **config) -> State:
    """A running deployment whose site (rendered from ``text``) a running web server includes (``front``)."""
    a = answers.load_text(text)
    site = next(w for w in site_files.wanted_files(a, Host()) if w.path == SITE)
    target = OmeroTarget("omero-web", Path("/nonexistent/venv"), Path("/nonexistent/omerodir"))
    server = Front("apache" if kind == "apache" else "nginx", SITE, 4242, "/srv/omero/nginx.conf", "root", False)
    cfg = {"omero.web.application_server.port": "4080", "omero.web.wsgi_workers": "5", **config}
    return State(target=target, installed=True, config=cfg, packages=dict(ALL), running_pid=1,
                 files={SITE: FileFact(content=site.content)}, record={SITE: {"sha256": "x"}},
                 front=server if front else None)


def test_a_change_of_workers_only_is_made_on_the_running_master():
    p = make_plan(answers.load_text(base() + "application_server: {workers: 3}\n"), served_state(base()))
    assert p.web.action == "scale" and p.web.workers == 3
    assert "change the number of gunicorn workers to 3 on the running master" in "\n".join(p.lines())
    steps = p.steps()
    assert steps[steps.index("change the number of workers") + 1] == "check the login page"


def test_workers_with_django_settings_replace_every_worker_by_the_new_number():
    p = make_plan(answers.load_text(base() + "application_server: {workers: 3}\ncors: {mode: all}\n"),
                  served_state(base()))
    assert p.web.action == "reload" and p.web.workers == 3


def test_a_port_change_behind_our_web_server_is_a_switch_and_the_site_keeps_the_running_upstream_until_then():
    p = make_plan(answers.load_text(base() + "application_server: {port: 4090}\n"), served_state(base()))
    assert p.web.action == "switch" and p.web.route.site == SITE and p.web.route.upstream == "127.0.0.1:4080"
    text = "\n".join(p.lines())
    assert "switch OMERO.web without downtime" in text and "a new master because" in text
    assert "omero web restart" not in text
    site = next(f for f in p.files if f.path == SITE)  # the upstream moves only when the new master answers
    assert site_files.upstream_in(site.new, "nginx") == "127.0.0.1:4080"
    assert p.door is not None and p.door.port == 8080  # checked through that server


def test_a_timeout_change_writes_the_site_with_the_running_upstream():
    p = make_plan(answers.load_text(base() + "application_server: {timeout: 90}\n"), served_state(base()))
    assert p.web.action == "switch"
    site = next(f for f in p.files if f.path == SITE)
    assert "proxy_read_timeout 90s" in site.new and site_files.upstream_in(site.new, "nginx") == "127.0.0.1:4080"


def test_apache_is_switched_as_well():
    p = make_plan(answers.load_text(base("apache") + "application_server: {port: 4090}\n"),
                  served_state(base("apache"), kind="apache"))
    assert p.web.action == "switch" and p.web.route.kind == "apache"


@pytest.mark.parametrize("text, front, why", [
    (base(), False, f"no running nginx includes {SITE}"),
    ("web_server: {kind: none}\nsessions: {clearsessions: 'off'}\n", False, "web_server.kind none"),
    (base(nodes=True), True, "several nodes share the upstream"),
])
def test_where_the_web_server_is_not_ours_it_restarts_and_the_review_says_why(text, front, why):
    s = served_state(base(), front=front)
    p = make_plan(answers.load_text(text + "application_server: {port: 4090}\n"), s)
    assert p.web.action == "restart"
    shown = "\n".join(p.lines())
    assert "a restart, not a switch without downtime" in shown and why in shown, shown
    assert any(why in n for n in p.notes)


def test_an_upgrade_behind_our_web_server_installs_beside_and_switches():
    s = served_state(base())
    s = dataclasses.replace(s, packages={**ALL, "omero-web": "5.29.2", "django": "4.2.16"},
                            upgrade=Measured("5.33.2", ("omero-web==5.33.2",), {"omero-web": "5.33.2"}))
    p = make_plan(answers.load_text(base() + "omero: {venv: /opt/omero/web/venv3, web_version: '5.33.2'}\n"), s)
    assert p.upgrade.beside == "/opt/omero/web/venv3-omero-web-5.33.2"
    assert p.web.action == "switch" and p.web.venv == p.upgrade.beside and p.web.collectstatic
    assert p.steps()[0] == "upgrade OMERO.web in a new environment"
    assert "rollback switches back, without a reinstall" in "\n".join(p.lines())


def test_an_upgrade_without_a_web_server_of_ours_is_installed_in_place_and_restarts():
    s = served_state(base(), front=False)
    s = dataclasses.replace(s, packages={**ALL, "omero-web": "5.29.2"},
                            upgrade=Measured("5.33.2", ("omero-web==5.33.2",), {"omero-web": "5.33.2"}))
    p = make_plan(answers.load_text(base() + "omero: {web_version: '5.33.2'}\n"), s)
    assert p.upgrade.beside is None and p.web.action == "restart" and p.web.not_switched


def test_the_new_environment_is_named_after_the_first_one():
    assert beside_path("/opt/omero/web/venv3", "5.33.2") == "/opt/omero/web/venv3-omero-web-5.33.2"
    assert beside_path("/opt/omero/web/venv3-omero-web-5.33.2", "5.34.0") == "/opt/omero/web/venv3-omero-web-5.34.0"


# ---------------------------------------------------------------------------- the pieces of a switch
@pytest.mark.parametrize("kind", ["nginx", "apache"])
def test_the_upstream_of_a_rendered_site_is_found_and_replaced_and_nothing_else(kind):
    a = answers.load_text(base(kind) + "prefix: /omero\n")
    text = next(w for w in site_files.wanted_files(a, Host()) if w.path == SITE).content
    assert site_files.upstream_in(text, kind) == "127.0.0.1:4080"
    moved = site_files.with_upstream(text, kind, "127.0.0.1:5123")
    assert site_files.upstream_in(moved, kind) == "127.0.0.1:5123"
    assert moved.replace("5123", "4080") == text
    back = answers.load_text(base(kind) + "prefix: /omero\napplication_server: {port: 5123}\n")
    rendered = next(w for w in site_files.wanted_files(back, Host()) if w.path == SITE).content
    assert moved.replace("omeroweb_4080", "omeroweb_5123") == rendered  # the switch ends where a render would


def test_a_balanced_site_has_no_single_upstream_to_switch():
    a = answers.load_text(base(nodes=True))
    text = next(w for w in site_files.wanted_files(a, Host()) if w.path == SITE).content
    assert site_files.upstream_in(text, "nginx") is None
    with pytest.raises(ValueError):
        site_files.with_upstream(text, "nginx", "127.0.0.1:1")


def test_gunicorn_is_started_as_omero_web_start_builds_it():
    settings = {"host": "127.0.0.1", "port": 4080, "workers": 5, "worker_class": "sync", "threads": 1,
                "connections": 1000, "timeout": 60, "max_requests": 0, "wsgi_args": "--log-level debug"}
    argv = gunicorn.start_argv(settings, Path("/v"), Path("/o"), 4081)
    assert argv == ["/v/bin/gunicorn", "-D", "-p", "/o/var/django-4081.pid", "--bind", "127.0.0.1:4081", "--workers",
                    "5", "--threads", "1", "--timeout", "60", "--max-requests", "0", "--log-level", "debug",
                    "omeroweb.wsgi:application"]
    gevent = gunicorn.start_argv({**settings, "worker_class": "gevent"}, Path("/v"), Path("/o"), 4081)
    assert gevent[8:12] == ["--worker-connections", "1000", "--worker-class", "gevent"]
    with pytest.raises(gunicorn.ReloadError):
        gunicorn.start_argv({**settings, "worker_class": "eventlet"}, Path("/v"), Path("/o"), 4081)


def test_a_master_is_the_same_whatever_its_pid_file_interpreter_and_number_of_workers():
    by_omero = ["/v/bin/python", "/v/bin/gunicorn", "-D", "-p", "/o/var/django.pid", "--bind", "127.0.0.1:4080",
                "--workers", "5", "--timeout", "60", "omeroweb.wsgi:application"]
    ours = ["/v/bin/python3", "/v/bin/gunicorn", "-D", "-p", "/o/var/django-4080.pid", "--bind", "127.0.0.1:4080",
            "--workers", "2", "--timeout", "60", "omeroweb.wsgi:application"]
    assert gunicorn.same_as(by_omero, "/omero/") == gunicorn.same_as(ours, "/omero")
    assert gunicorn.same_as(by_omero, None) != gunicorn.same_as(ours, "/omero")
    assert gunicorn.same_as(by_omero, None) != gunicorn.same_as([*ours[:9], "--timeout", "90", ours[-1]], None)


@pytest.mark.parametrize("path, ours", [("/o/var/django.pid", True), ("/o/var/django-4081.pid", True),
                                        ("/o/var/other.pid", False), ("/elsewhere/var/django.pid", False),
                                        ("/o/var/sub/django.pid", False)])
def test_only_this_deployments_pid_files_make_a_master_ours(path, ours):
    assert (gunicorn.pidfile_of(["gunicorn", "-p", path], Path("/o")) is not None) == ours


def test_the_environment_an_upgrade_put_beside_is_followed_by_every_name_it_replaced():
    dep = Deployment("/nonexistent/omerodir-envs")
    assert dep.active_venv("/opt/v") == "/opt/v"
    dep.activate("/opt/v-omero-web-2", replaces="/opt/v")
    assert dep.active_venv("/opt/v") == "/opt/v-omero-web-2"
    dep.activate("/opt/v-omero-web-3", replaces="/opt/v-omero-web-2")
    assert dep.active_venv("/opt/v") == dep.active_venv("/opt/v-omero-web-2") == "/opt/v-omero-web-3"
    assert dep.active_venv("/opt/other") == "/opt/other"


def test_a_web_server_includes_a_site_through_globs_and_relative_paths(tmp_path):
    conf = tmp_path / "nginx.conf"
    (tmp_path / "sites").mkdir()
    site = tmp_path / "elsewhere" / "omero.conf"
    site.parent.mkdir()
    site.write_text("server {}\n")
    (tmp_path / "sites" / "omero.conf").symlink_to(site)
    (tmp_path / "sites" / "other.conf").write_text("include /nonexistent/*.conf;\n")
    conf.write_text("events {}\nhttp {\n    include sites/*.conf;\n}\n")
    found = webservers._includes(str(conf), webservers._NGINX_INCLUDE, str(tmp_path))
    assert str(site) in found and str(tmp_path / "sites" / "omero.conf") in found
    conf.write_text("events {}\nhttp {\n    # include sites/*.conf;\n}\n")
    assert str(site) not in webservers._includes(str(conf), webservers._NGINX_INCLUDE, str(tmp_path))
