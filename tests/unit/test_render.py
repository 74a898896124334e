"""Rendering the web-server files, the maintenance page, the systemd unit and the Windows files
from the answers (no server here: the e2e tier runs nginx -t / apache2 -t on every variant)."""

from __future__ import annotations

import configparser
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from omerowizard.catalogue import answers
from omerowizard.system import platforms
from omerowizard.model import render
from omerowizard.features.web_server import site as sitefiles
from omerowizard.model.host import Host
from omerowizard.plan.changes import files as serverfiles
from omerowizard.model.errors import AnswersError
from omerowizard.system.omero import OmeroTarget
from omerowizard.state.probe import State
from omerowizard.features import web_server

TASK_NS = {"t": "http://schemas.microsoft.com/windows/2004/02/mit/task"}


def make(web_server=None, **extra):
    data = {"omero": {"omerodir": "/srv/omero/OMERO.web", "venv": "/srv/omero/venv3"},
            "web_server": {"kind": "nginx", "server_name": "omero.example.org", **(web_server or {})}, **extra}
    return answers.validate(data)


def files(a, version=None, dist="debian"):
    return {Path(w.path).name: w for w in sitefiles.wanted_files(a, Host(distribution=dist), version, [])}


def test_templates_are_found_in_the_checkout_or_the_package():
    assert (render.templates_dir() / "nginx.conf.j2").is_file()


def test_nginx_server_block_has_the_semantics_of_omero_web_config_nginx():
    a = make({"port": 8080, "max_body_size": "100m"}, prefix="/omero", application_server={"port": 4090})
    text = files(a)["omero-web.conf"].content
    assert "upstream omeroweb_4090 {\n    server 127.0.0.1:4090 fail_timeout=0;" in text
    assert "listen 8080;" in text and "server_name omero.example.org;" in text
    assert "client_max_body_size 100m;" in text
    assert "location /omero/static/ {\n        alias /srv/omero/OMERO.web/var/static/;" in text
    # /omero/ (not /omero, which would also match /omeroxyz); /omero itself redirects to /omero/
    assert "location /omero/ {" in text and "location /omero {" not in text and "proxy_pass http://omeroweb_4090;" in text
    assert "location = /omero {\n        absolute_redirect off;\n        return 301 /omero/;" in text
    assert "listen [::]:8080;" in text  # IPv6 as well as IPv4
    for header in ("X-Forwarded-Proto $scheme", "X-Forwarded-For $proxy_add_x_forwarded_for", "Host $http_host"):
        assert f"proxy_set_header {header};" in text
    assert "error_page 502 503 504 =503 @omeroweb_4090_maintenance;" in text
    assert "root /srv/omero/OMERO.web/etc/maintenance;" in text
    assert "ssl" not in text


def test_nginx_https_listens_with_the_certificate_and_redirects_port_80():
    a = make({"https": {"certificate": "/etc/ssl/omero.pem", "key": "/etc/ssl/omero.key", "port": 8443}})
    text = files(a)["omero-web.conf"].content
    assert "listen 8443 ssl;" in text and "listen [::]:8443 ssl;" in text and "listen [::]:80;" in text
    assert "ssl_certificate /etc/ssl/omero.pem;" in text and "ssl_certificate_key /etc/ssl/omero.key;" in text
    assert "listen 80;" in text and "return 301 https://$host:8443$request_uri;" in text
    a443 = make({"https": {"certificate": "/etc/ssl/omero.pem", "key": "/etc/ssl/omero.key"}})
    assert "return 301 https://$host$request_uri;" in files(a443)["omero-web.conf"].content


def test_apache_excludes_static_and_maintenance_before_proxying_the_prefix():
    a = make({"kind": "apache", "port": 8081, "max_body_size": "1k"}, prefix="/omero")
    w = files(a)["omero-web.conf"]
    text = w.content
    assert "Listen 8081" in text and "<VirtualHost *:8081>" in text
    assert text.index("ProxyPass /omero/static/ !") < text.index("ProxyPass /omero/ http://127.0.0.1:4080/omero/")
    assert text.index("ProxyPass /omerowizard-maintenance/ !") < text.index("ProxyPass /omero/ http://")
    assert "ProxyPass /omero http" not in text and "RedirectMatch 301 ^/omero$ /omero/" in text
    assert "Alias /omero/static/ /srv/omero/OMERO.web/var/static/" in text
    assert "ErrorDocument 503 /omerowizard-maintenance/maintenance.html" in text
    assert 'RequestHeader set X-Forwarded-Proto "http"' in text and "ProxyPreserveHost On" in text
    assert "LimitRequestBody 1024" in text
    assert set(w.modules) >= {"proxy", "proxy_http", "headers"}


def test_apache_on_port_80_leaves_listen_to_ports_conf():
    text = files(make({"kind": "apache"}))["omero-web.conf"].content
    assert not [line for line in text.splitlines() if line.startswith("Listen")]
    assert "<VirtualHost *:80>" in text


def test_nginx_development_is_a_whole_config_a_normal_user_runs():
    a = make({"kind": "nginx-development", "port": 8080})
    w = files(a)["nginx-development.conf"]
    assert w.path == "/srv/omero/OMERO.web/etc/nginx-development.conf"
    for line in ("pid /srv/omero/OMERO.web/var/nginx/nginx.pid;", "client_body_temp_path /srv/omero/OMERO.web/var/nginx",
                 "events {", "http {", "listen 8080;"):
        assert line in w.content
    assert "/var/log/nginx/" not in w.content and "/var/lib/nginx" not in w.content


def test_maintenance_page_is_ours_and_names_the_site():
    page = files(make())["maintenance.html"]
    assert page.path == "/srv/omero/OMERO.web/etc/maintenance/maintenance.html"
    assert 'id="omerowizard-maintenance"' in page.content and "omero.example.org" in page.content


def test_development_server_gets_no_front_end_file():
    assert sitefiles.wanted_files(make({"kind": "development"}), Host(), None, []) == []


@pytest.mark.parametrize("dist, path, link", [
    ("debian", "/etc/nginx/sites-available/omero-web.conf", "/etc/nginx/sites-enabled/omero-web.conf"),
    ("rhel", "/etc/nginx/conf.d/omero-web.conf", None),
])
def test_nginx_file_goes_where_the_distribution_keeps_sites(dist, path, link):
    place = web_server.web_server_file(make(), dist)
    assert (place.path, place.link, place.system) == (path, link, True)


def test_apache_paths_per_distribution_and_config_path_override():
    a = make({"kind": "apache"})
    assert web_server.web_server_file(a, "debian").path == "/etc/apache2/sites-available/omero-web.conf"
    assert web_server.web_server_file(a, "rhel").path == "/etc/httpd/conf.d/omero-web.conf"
    custom = web_server.web_server_file(make({"kind": "apache", "config_path": "/tmp/x/omero.conf"}), "debian")
    assert (custom.path, custom.link, custom.system) == ("/tmp/x/omero.conf", None, False)


def test_distribution_is_read_from_os_release(tmp_path):
    f = tmp_path / "os-release"
    f.write_text('ID="rocky"\nID_LIKE="rhel centos fedora"\n')
    assert platforms.distribution(str(f)) == "rhel"
    f.write_text("ID=ubuntu\nID_LIKE=debian\n")
    assert platforms.distribution(str(f)) == "debian"


def windows(version=None, **ws):
    data = {"platform": "windows", "web_server": {"server_name": "omero.example.org", "port": 8080, **ws},
            "application_server": {"host": "10.0.0.5", "port": 4080}, "prefix": "/omero"}
    if version:
        data["web_server"]["omero_web_version"] = version
    return answers.validate(data)


def test_iis_web_config_for_omero_web_5_3_proxies_to_the_unix_host():
    notes: list[str] = []
    out = {Path(w.path.replace("\\", "/")).name: w for w in sitefiles.wanted_files(windows(), Host(), None, notes)}
    w = out["web.config"]
    assert w.path == r"C:\inetpub\omero-web\web.config"
    root = ET.fromstring(w.content.encode())
    rules = root.findall("./system.webServer/rewrite/rules/rule")
    by_name = {r.get("name"): r for r in rules}
    static = by_name["OMERO.web static files"]
    assert static.find("match").get("url") == r"^omero/static/"
    assert static.find("action").get("type") == "None"
    proxy = by_name["OMERO.web application server"]
    assert proxy.find("match").get("url") == "^omero(/.*)?$"
    assert proxy.find("action").get("type") == "Rewrite"
    assert proxy.find("action").get("url") == "http://10.0.0.5:4080/{R:0}"
    assert proxy.find("serverVariables/set").get("name") == "HTTP_X_FORWARDED_PROTO"
    errors = {e.get("statusCode"): e.get("path") for e in root.findall("./system.webServer/httpErrors/error")}
    assert errors == {"502": "maintenance.html", "503": "maintenance.html"}
    assert root.find(".//requestLimits").get("maxAllowedContentLength") == "4294967295"
    assert out["maintenance.html"].path == r"C:\inetpub\omero-web\maintenance.html"
    assert any("Application Request Routing" in n and "10.0.0.5:4080" in n for n in notes)
    assert any("appcmd set config -section:system.webServer/proxy /enabled:true" in c for c in w.commands)


def test_iis_https_adds_a_redirect_rule():
    a = windows(https={"certificate": r"C:\certs\omero.pem", "key": r"C:\certs\omero.key", "port": 8443})
    w = sitefiles.wanted_files(a, Host(), None, [])[0]
    root = ET.fromstring(w.content.encode())
    rule = root.find("./system.webServer/rewrite/rules/rule[@name='OMERO.web HTTPS redirect']")
    assert rule.find("action").get("url") == "https://{HTTP_HOST}:8443/{R:1}"
    assert root.find(".//serverVariables/set").get("value") == "https"


def test_iis_for_omero_web_5_2_uses_isapi_wsgi_and_a_scheduled_task():
    a = windows("5.2.8")
    out = {Path(w.path.replace("\\", "/")).name: w for w in sitefiles.wanted_files(a, Host(), None, [])}
    bat = out["omero-web-iis.bat"]
    assert bat.path == r"C:\omero_dist\omero-web-iis.bat"
    assert "call bin\\omero web iis\r\n" in bat.content
    assert "call bin\\omero config set omero.web.session_engine\r\n" in bat.content
    assert "call bin\\omero config set omero.web.caches\r\n" in bat.content
    assert "omero.web.prefix /omero" in bat.content
    task = out["omero-web-clearsessions.xml"]
    assert task.encoding == "utf-16"
    root = ET.fromstring(serverfiles.encode(task.content, task.encoding))
    exe = root.find("t:Actions/t:Exec", TASK_NS)
    assert exe.find("t:Command", TASK_NS).text == "cmd.exe"
    assert exe.find("t:Arguments", TASK_NS).text == r"/c bin\omero web clearsessions"
    assert exe.find("t:WorkingDirectory", TASK_NS).text == r"C:\omero_dist"
    trigger = root.find("t:Triggers/t:CalendarTrigger", TASK_NS)
    assert trigger.find("t:StartBoundary", TASK_NS).text.endswith("T03:00:00")
    assert trigger.find("t:ScheduleByDay/t:DaysInterval", TASK_NS).text == "1"
    assert task.commands == (r'schtasks /Create /XML "C:\omero_dist\omero-web-clearsessions.xml" '
                             r'/TN "OMERO.web clearsessions" /F',)


def test_detected_version_chooses_the_iis_path_when_none_is_given():
    names = [Path(w.path.replace("\\", "/")).name for w in sitefiles.wanted_files(windows(), Host(), "5.1.4", [])]
    assert "omero-web-iis.bat" in names


@pytest.mark.parametrize("schedule, hourly, start", [("hourly", True, "T00:00:00"), ("30 2 * * *", False, "T02:30:00"),
                                                     ("15 * * * *", True, "T00:15:00")])
def test_task_scheduler_triggers(schedule, hourly, start):
    a = answers.validate({"platform": "windows", "web_server": {"omero_web_version": "5.2"},
                          "sessions": {"clearsessions": schedule}})
    task = sitefiles.clearsessions_task(a, r"C:\omero_dist")
    root = ET.fromstring(serverfiles.encode(task.content, "utf-16"))
    trig = root.find("t:Triggers/t:TimeTrigger" if hourly else "t:Triggers/t:CalendarTrigger", TASK_NS)
    assert trig.find("t:StartBoundary", TASK_NS).text.endswith(start)
    if hourly:
        assert trig.find("t:Repetition/t:Interval", TASK_NS).text == "PT1H"


def _state() -> State:
    return State(target=OmeroTarget("omero-web", Path("/nonexistent"), Path("/nonexistent")), installed=True)


def test_a_cron_schedule_task_scheduler_cannot_express_is_refused_at_validation():
    # at validation, before anything is planned or backed up (issue 11)
    with pytest.raises(AnswersError) as err:
        answers.validate({"platform": "windows", "web_server": {"omero_web_version": "5.2"},
                          "sessions": {"clearsessions": "*/5 * * * *"}})
    assert err.value.exit_code == 2 and "sessions.clearsessions" in str(err.value)


def test_systemd_unit_runs_omero_web_as_its_user():
    unit = sitefiles.systemd_unit(make({"systemd": True}), "debian")
    assert unit.path == "/etc/systemd/system/omero-web.service"
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str
    parser.read_string(unit.content)
    svc = parser["Service"]
    assert svc["User"] == "omero-web" and svc["Type"] == "forking"
    assert svc["ExecStart"] == "/srv/omero/venv3/bin/omero web start"
    assert svc["PIDFile"] == "/srv/omero/OMERO.web/var/django.pid"
    assert 'OMERODIR=/srv/omero/OMERO.web' in svc["Environment"]
    assert parser["Install"]["WantedBy"] == "multi-user.target"


@pytest.mark.parametrize("bad", ["example.org; include /etc/shadow", "a}", "a{", "omero.example.org\nlisten 1",
                                 "host name"])
def test_a_server_name_that_could_end_a_directive_is_refused(bad):
    with pytest.raises(AnswersError) as err:
        answers.validate({"web_server": {"server_name": bad}})
    assert err.value.exit_code == 2 and "web_server.server_name" in str(err.value)


@pytest.mark.parametrize("key, bad", [("web_server.config_path", "/etc/nginx/x;y.conf"),
                                      ("web_server.https.certificate", "/etc/ssl/a b.pem"),
                                      ("prefix", "/omero;"), ("static_url", "/static/{/"),
                                      ("web_server.max_body_size", "10m;")])
def test_paths_and_sizes_that_could_break_a_file_are_refused(key, bad):
    top, *rest = key.split(".")
    node: dict = {}
    cur = node
    for part in rest[:-1]:
        cur = cur.setdefault(part, {})
    data = {top: bad} if not rest else {top: node}
    if rest:
        cur[rest[-1]] = bad
    if key == "web_server.https.certificate":
        data["web_server"]["https"]["key"] = "/etc/ssl/a.key"
    with pytest.raises(AnswersError) as err:
        answers.validate(data)
    assert key in str(err.value)


def test_nginx_default_site_marks_every_listen_default_server():
    a = make({"https": {"certificate": "/etc/ssl/omero.pem", "key": "/etc/ssl/omero.key", "port": 8443}})
    text = sitefiles.wanted_files(a, Host(), None, [], default_server=True)[0].content
    for listen in ("listen 80 default_server;", "listen [::]:80 default_server;", "listen 8443 ssl default_server;",
                   "listen [::]:8443 ssl default_server;"):
        assert listen in text
    assert "default_server" not in files(a)["omero-web.conf"].content
