"""Day two without the real parts: the advisories table, the logs' times and their merge, the redaction of a
support bundle, the report's JSON Schema and the exit statuses of `status` and `doctor` on a made-up deployment
(files in a temporary directory: a fake of the machine, never of the checks)."""

from __future__ import annotations

import datetime as _dt
import io
import json
import os
import subprocess
import sys
import tarfile
import threading
import time
from pathlib import Path

import jsonschema
import pytest
import yaml

from omerowizard import cli
from omerowizard.catalogue import answers as answers_mod
from omerowizard.model import health as h
from omerowizard.state import health
from omerowizard.state.health import advisories, bundle, logs
from omerowizard.system import certificates
from omerowizard.system.deployments import Deployment
from omerowizard.system.watch import Watcher
from omerowizard.ui import status as status_ui

SCHEMA = json.loads(health.schema_text())


# ---------------------------------------------------------------------------- advisories
def test_the_advisories_table_names_the_three_fixes_and_when_it_was_updated():
    table = advisories.load()
    assert {(a.id, a.fixed_in) for a in table.advisories} == {
        ("CVE-2024-35180", "5.26.0"), ("CVE-2025-54791", "5.29.2"), ("GHSA-j4gv-6x9v-v23g", "5.29.3")}
    assert _dt.date.fromisoformat(table.updated) <= _dt.date.today()


@pytest.mark.parametrize("version, missing", [
    ("5.25.1", ["CVE-2024-35180", "CVE-2025-54791", "GHSA-j4gv-6x9v-v23g"]),
    ("5.29.2", ["GHSA-j4gv-6x9v-v23g"]),
    ("5.29.3", []),
    ("5.33.2", []),
])
def test_an_installed_release_is_below_exactly_the_fixes_it_lacks(version, missing):
    assert [a.id for a in advisories.missing(version, advisories.load())] == missing


# ---------------------------------------------------------------------------- logs
OMERO_LOG = """\
2026-12-03 12:00:00,100  INFO [                omeroweb.webclient.views] (proc.00562) <module>():132 INIT '562'
2026-12-03 12:00:05,250 ERROR [                  django.request] (proc.00576) log_response():241 Internal Server Error: /webclient/login/
Traceback (most recent call last):
  File "x.py", line 1, in <module>
ImportError: cannot import name 'CompositePrimaryKey'
2026-12-03 12:00:09,000  INFO [                omeroweb.webclient.views] (proc.00578) <module>():132 INIT '578'
"""
NGINX_LOG = """\
2026/12/03 12:00:02 [error] 1234#1234: *1 connect() failed (111: Connection refused) while connecting to upstream
2026/12/03 12:00:07 [warn] 1234#1234: *3 an upstream response is buffered to a temporary file
"""
APACHE_LINE = "[Thu Dec 03 12:00:06.123456 2026] [proxy:error] [pid 99] (111)Connection refused: AH00957"


def test_each_log_format_gives_its_time_and_level():
    assert logs.parse_time(OMERO_LOG.splitlines()[1]) == (_dt.datetime(2026, 12, 3, 12, 0, 5, 250000), "ERROR")
    assert logs.parse_time(NGINX_LOG.splitlines()[0]) == (_dt.datetime(2026, 12, 3, 12, 0, 2), "error")
    assert logs.parse_time(APACHE_LINE) == (_dt.datetime(2026, 12, 3, 12, 0, 6, 123456), "error")
    assert logs.parse_time("  File \"x.py\", line 1") == (None, "")


def test_a_traceback_stays_with_its_entry_and_the_logs_merge_by_time():
    omero = logs.entries(OMERO_LOG, "OMEROweb.log")
    assert len(omero) == 3 and omero[1].text.endswith("ImportError: cannot import name 'CompositePrimaryKey'")
    merged = logs.merge(omero, logs.entries(NGINX_LOG + APACHE_LINE + "\n", "nginx"))
    assert [(e.source, e.when.second) for e in merged] == [
        ("OMEROweb.log", 0), ("nginx", 2), ("OMEROweb.log", 5), ("nginx", 6), ("nginx", 7), ("OMEROweb.log", 9)]


def test_inotify_wakes_the_follower_when_a_log_grows(tmp_path):
    log = tmp_path / "OMEROweb.log"
    log.write_text("")
    with Watcher([str(tmp_path)]) as w:
        assert w.fd is not None, "inotify is available on Linux"
        assert w.wait(0.05) is False
        threading.Timer(0.2, lambda: log.write_text("2026-12-03 12:00:00,000 ERROR x\n")).start()
        t0 = time.monotonic()
        assert w.wait(10) is True
        assert time.monotonic() - t0 < 5


def test_follow_prints_what_both_logs_append_merged_by_time(tmp_path, capsys):
    a, b = tmp_path / "OMEROweb.log", tmp_path / "nginx_error.log"
    a.write_text("2026-12-03 11:00:00,000  INFO old line, not printed\n")
    b.write_text("")
    sources = [logs.Source("OMEROweb.log", str(a)), logs.Source("nginx", str(b))]

    def append():
        with open(b, "a") as fh:
            fh.write("2026/12/03 12:00:02 [error] 1#1: upstream refused\n")
        with open(a, "a") as fh:
            fh.write("2026-12-03 12:00:01,000 ERROR first\n2026-12-03 12:00:03,000 ERROR third\n")
    threading.Timer(0.3, append).start()
    status_ui.follow(sources, stop=2.5)
    out = capsys.readouterr().out.splitlines()
    assert out == ["OMEROweb.log: 2026-12-03 12:00:01,000 ERROR first",
                   "nginx: 2026/12/03 12:00:02 [error] 1#1: upstream refused",
                   "OMEROweb.log: 2026-12-03 12:00:03,000 ERROR third"]


# ---------------------------------------------------------------------------- the support bundle's redaction
CONFIG_XML = b"""<?xml version="1.0" encoding="UTF-8"?>
<icegrid><properties id="__ACTIVE__"><property name="omero.config.profile" value="default"/></properties>
<properties id="default">
<property name="omero.web.secret_key" value="django-secret-abcdefgh"/>
<property name="omero.web.caches" value='{"default": {"BACKEND": "django_redis.cache.RedisCache", "LOCATION": "redis://:redis-pass-1234@127.0.0.1:6379/0", "OPTIONS": {"PASSWORD": "opt-pass-5678"}}}'/>
<property name="omero.web.ldap.bind_password" value="ldap-pass-9012"/>
<property name="omero.web.public.api_token" value="token-3456"/>
<property name="omero.web.prefix" value="/omero"/>
</properties></icegrid>
"""


def test_config_xml_is_redacted_by_omero_webs_rule_ours_and_every_known_secret():
    config = {"omero.web.secret_key": "django-secret-abcdefgh", "omero.web.ldap.bind_password": "ldap-pass-9012",
              "omero.web.public.api_token": "token-3456", "omero.web.caches": json.dumps(
                  {"default": {"LOCATION": "redis://:redis-pass-1234@127.0.0.1:6379/0",
                               "OPTIONS": {"PASSWORD": "opt-pass-5678"}}})}
    known = bundle.known_secrets(None, config)
    assert {"django-secret-abcdefgh", "ldap-pass-9012", "token-3456", "redis-pass-1234", "opt-pass-5678"} <= known
    out = bundle.redact_config_xml(CONFIG_XML, known).decode()
    for secret in ("django-secret-abcdefgh", "redis-pass-1234", "opt-pass-5678", "ldap-pass-9012", "token-3456"):
        assert secret not in out
    assert 'value="/omero"' in out and "127.0.0.1:6379/0" in out
    assert bundle.mask("the password was ldap-pass-9012 in a log", known) == "the password was **** in a log"


# ---------------------------------------------------------------------------- a made-up deployment
def fake_deployment(tmp_path: Path, version: str = "5.29.2") -> tuple[str, Path]:
    """An OMERODIR whose environment says omero-web ``version`` (files only), with saved answers and a config.xml
    that differs from them in one key; OMERO.web does not run."""
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    (venv / "bin" / "omero").write_text("#!/bin/sh\n")
    site = venv / "lib" / "python3.11" / "site-packages"
    for name, ver in (("omero_web", version), ("Django", "4.2.30"), ("omero_py", "5.19.0")):
        info = site / f"{name}-{ver}.dist-info"
        info.mkdir(parents=True)
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name.replace('_', '-')}\nVersion: {ver}\n")
    omerodir = tmp_path / "OMERO.web"
    (omerodir / "etc" / "grid").mkdir(parents=True)
    (omerodir / "var" / "log").mkdir(parents=True)
    (omerodir / "etc" / "grid" / "config.xml").write_text(
        '<icegrid><properties id="__ACTIVE__"><property name="omero.config.profile" value="default"/></properties>'
        '<properties id="default"><property name="omero.web.application_server.port" value="4099"/>'
        '<property name="omero.web.application_server" value="development"/>'
        '<property name="omero.web.session_cookie_age" value="999"/></properties></icegrid>')
    a = answers_mod.validate({"omero": {"user": "nobody", "venv": str(venv), "omerodir": str(omerodir)},
                              "application_server": {"port": 4099},
                              "web_server": {"kind": "development"},
                              "sessions": {"clearsessions": "off"}}, "<test>")
    dep = Deployment(str(omerodir))
    dep.remember("nobody", str(venv))
    dep.answers.write_text(a.to_yaml())
    return dep.omerodir, venv


def run_cli(*args: str) -> tuple[int, str, str]:
    proc = subprocess.run([sys.executable, "-m", "omerowizard", *args], capture_output=True, text=True, timeout=120,
                          env={**os.environ})
    return proc.returncode, proc.stdout, proc.stderr


def test_status_of_a_degraded_deployment_exits_1_naming_each_reason_with_its_fix(tmp_path):
    omerodir, _ = fake_deployment(tmp_path)
    code, out, err = run_cli("status", "--omerodir", omerodir)
    assert code == 1, out + err
    assert f"OMERO.web in {omerodir}: degraded" in out
    assert "PROBLEM  gunicorn: Django's development server is not running" in out
    assert "PROBLEM  drift.config: config.xml differs from the saved answers in omero.web.session_cookie_age" in out
    assert "omero.web.session_cookie_age is 999; the saved answers want (unset: OMERO's default)" in out
    assert f"run: omerowizard apply {Deployment(omerodir).answers}" in out
    assert out.count("fix: ") == out.count("PROBLEM ")


def test_status_and_doctor_json_follow_the_documented_schema(tmp_path):
    omerodir, _ = fake_deployment(tmp_path)
    for command in ("status", "doctor"):
        code, out, err = run_cli(command, "--omerodir", omerodir, "--json")
        doc = json.loads(out)
        jsonschema.validate(doc, SCHEMA)
        assert code == doc["exit_status"] == 1 and doc["verdict"] == "degraded" and doc["command"] == command
        [dep] = doc["deployments"]
        assert dep["versions"]["omero-web"] == "5.29.2" and dep["answers_file"]
        checks = {f["check"]: f for f in dep["findings"]}
        assert ("security" in checks) is (command == "doctor")
        if command == "doctor":
            assert checks["security"]["status"] == "problem"
            assert checks["security"]["data"]["advisories"] == ["GHSA-j4gv-6x9v-v23g"]
            assert "set omero.web_version to 5.29.3 or newer" in checks["security"]["fix"]
    code, out, _ = run_cli("status", "--schema")
    assert code == 0 and json.loads(out) == SCHEMA


def test_the_schema_refuses_a_problem_without_its_fix():
    doc = health.Report("status", [health.DeploymentHealth("/d", "u", "/v", None, {}, [
        h.Finding("gunicorn", "problem", "not running")])]).as_dict()
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(doc, SCHEMA)


def test_usage_errors_exit_2(tmp_path):
    omerodir, _ = fake_deployment(tmp_path)
    code, _, err = run_cli("status", "--omerodir", omerodir, "--all")
    assert code == 2 and "--omerodir and --all" in err
    code, _, err = run_cli("doctor", "--bogus")
    assert code == 2
    code, _, err = run_cli("logs", "--omerodir", omerodir, "--lines", "-3")
    assert code == 2 and "--lines" in err


def test_a_healthy_report_exits_0_and_a_warning_does_not_degrade_it():
    rep = health.Report("status", [health.DeploymentHealth("/d", "u", "/v", "/a.yml", {}, [
        h.ok("gunicorn", "runs"), h.warning("certificate", "20 days left", "renew it soon")])])
    assert rep.exit_status == 0 and rep.verdict == "healthy"
    assert rep.deployments[0].headline() == "healthy (1 warning)"
    jsonschema.validate(rep.as_dict(), SCHEMA)


def test_the_support_bundle_is_0600_and_holds_no_secret_of_the_deployment(tmp_path):
    omerodir, venv = fake_deployment(tmp_path)
    config = Path(omerodir) / "etc" / "grid" / "config.xml"
    config.write_bytes(CONFIG_XML)
    log = Path(omerodir) / "var" / "log" / "OMEROweb.log"
    log.write_text("2026-12-03 12:00:00,000 ERROR cannot reach redis://:redis-pass-1234@127.0.0.1:6379/0\n")
    out = tmp_path / "bundle.tar.gz"
    code, stdout, err = run_cli("support-bundle", "--omerodir", omerodir, "-o", str(out))
    assert code == 0, stdout + err
    assert (out.stat().st_mode & 0o777) == 0o600
    with tarfile.open(out) as tar:
        names = tar.getnames()
        blob = b"".join(tar.extractfile(m).read() for m in tar.getmembers() if m.isfile())
    for secret in (b"django-secret-abcdefgh", b"redis-pass-1234", b"opt-pass-5678", b"ldap-pass-9012", b"token-3456"):
        assert secret not in blob, secret
    for member in ("status.json", "doctor.json", "config.xml", "pip-freeze.txt", "logs/OMEROweb.log.tail",
                   "commands.log", "versions.txt", "answers.txt"):
        assert any(n.endswith("/" + member) for n in names), (member, names)
    assert b"omero-web==5.29.2" in blob and b"Django==4.2.30" in blob


def test_a_certificate_says_its_issuer_and_days_left(tmp_path):
    crt, key = tmp_path / "c.pem", tmp_path / "c.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "10", "-subj",
                    "/CN=omero.example.org/O=Test CA", "-keyout", str(key), "-out", str(crt)], check=True,
                   capture_output=True)
    cert, why = certificates.read(str(crt))
    assert why is None and "omero.example.org" in cert.issuer and 9 < cert.days_left() <= 10
    cert, why = certificates.read(str(key))
    assert cert is None and "not a PEM certificate" in why


def test_every_day_two_command_is_registered():
    for name in ("status", "doctor", "logs", "support-bundle"):
        assert name in cli.COMMANDS and callable(cli.command(name))


def test_the_logs_of_a_deployment_are_named_in_the_final_message_of_a_run():
    a = answers_mod.validate({"omero": {"omerodir": "/srv/OMERO.web"}, "web_server": {"kind": "nginx-development",
                                                                                       "port": 8080}}, "<test>")
    assert logs.where(a) == ("Logs: OMEROweb.log /srv/OMERO.web/var/log/OMEROweb.log; nginx "
                             "/srv/OMERO.web/var/log/nginx_error.log (`omerowizard logs --omerodir /srv/OMERO.web` "
                             "merges them by time).")


def test_tarball_members_are_private_files(tmp_path):
    data = status_ui.tarball([("a.txt", b"x")], "top")
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        [m] = tar.getmembers()
    assert m.name == "top/a.txt" and m.mode == 0o600


def test_saved_answers_are_what_status_checks_against(tmp_path):
    omerodir, venv = fake_deployment(tmp_path)
    a, has_saved = health.answers_of(omerodir)
    assert has_saved and a.omero.venv == str(venv) and a.application_server.port == 4099
    assert yaml.safe_load(Deployment(omerodir).answers.read_text())["web_server"]["kind"] == "development"
