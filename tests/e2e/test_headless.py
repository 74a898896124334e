"""`omerowizard apply` against a real OMERO.web: sessions backends, CORS, bad files, idempotence."""

from __future__ import annotations

import hashlib
import json
import re
import socket

import pytest

from omerowizard.catalogue import answers as answers_mod
from tests import parts

LIGHT = {"application_server": {"workers": 1}}


def sha(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def apply_ok(d, answers: dict, *extra: str):
    f = d.answers_file({**LIGHT, **answers})
    proc = d.cli("apply", str(f), *extra)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc


def test_file_sessions_deploy_under_a_prefix(deployment):
    d = deployment
    proc = apply_ok(d, {"prefix": "/omero", "sessions": {"backend": "file", "cookie_age": 3600,
                                                          "expire_at_browser_close": False}})
    assert "omero.web.prefix: (unset) -> /omero" in proc.stdout
    assert "Starting OMERO.web" in proc.stdout  # omero web start's own output, streamed
    assert "answers 200" in proc.stdout
    # the server block went to the test's own directory, outside nginx's configuration: the final message says
    # what was checked (the application server) and what was not (the public URL), and claims no URL
    site = d.workdir / "nginx" / "omero-web.conf"
    assert f"Checked: the login page {d.login_url('/omero')} answered 200 on the application server." in proc.stdout
    assert (f"Not checked: the public URL through the web server: {site} is outside nginx's configuration: "
            "include it and reload nginx, then request http://omero.example.org/omero/.") in proc.stdout
    assert "answers at" not in proc.stdout
    cfg = d.config()
    assert cfg["omero.web.prefix"] == "/omero" and cfg["omero.web.static_url"] == "/omero/static/"
    assert cfg["omero.web.session_cookie_age"] == "3600"
    assert cfg["omero.web.session_expire_at_browser_close"] == "false"
    assert "omero.web.session_engine" not in cfg and "omero.web.caches" not in cfg  # OMERO defaults stay unset
    assert parts.http_get(d.login_url("/omero")).status == 200
    assert parts.http_get(d.login_url("")).status != 200  # only under the prefix


def test_redis_sessions(deployment, redis_server):
    d = deployment
    apply_ok(d, {"sessions": {"backend": "redis", "location": redis_server.url}})
    cfg = d.config()
    assert cfg["omero.web.session_engine"] == "django.contrib.sessions.backends.cache"
    assert json.loads(cfg["omero.web.caches"]) == {"default": {"BACKEND": "django_redis.cache.RedisCache",
                                                               "LOCATION": redis_server.url}}
    assert parts.http_get(d.login_url()).status == 200
    # back to file sessions: the cache settings are unset again
    apply_ok(d, {"sessions": {"backend": "file"}})
    cfg = d.config()
    assert "omero.web.caches" not in cfg and "omero.web.session_engine" not in cfg


def test_memcached_sessions(deployment, memcached_server):
    d = deployment
    proc = apply_ok(d, {"sessions": {"backend": "memcached", "location": memcached_server.location}})
    assert "DEPRECATED" in proc.stdout and "PyMemcacheCache" in proc.stdout
    caches = json.loads(d.config()["omero.web.caches"])
    assert caches["default"]["BACKEND"] == "django.core.cache.backends.memcached.PyMemcacheCache"
    assert caches["default"]["LOCATION"] == memcached_server.location
    assert parts.http_get(d.login_url()).status == 200


def test_cors_origins_then_all_then_off(deployment):
    d = deployment
    apply_ok(d, {"cors": {"mode": "origins", "origins": ["https://hostname.example.com", "http://viewer.example.org:8080"]}})
    api = f"http://127.0.0.1:{d.app_port}/api/"
    r = parts.http_get(api, {"Origin": "https://hostname.example.com"})
    assert r.headers.get("access-control-allow-origin") == "https://hostname.example.com"
    r = parts.http_get(api, {"Origin": "https://evil.example.net"})
    assert "access-control-allow-origin" not in r.headers

    apply_ok(d, {"cors": {"mode": "all"}})
    r = parts.http_get(api, {"Origin": "https://anyone.example.net"})
    assert r.headers.get("access-control-allow-origin") in {"https://anyone.example.net", "*"}

    apply_ok(d, {"cors": {"mode": "off"}})
    cfg = d.config()
    assert not {"omero.web.apps", "omero.web.middleware", "omero.web.cors_origin_whitelist",
                "omero.web.cors_origin_allow_all"} & set(cfg), cfg
    r = parts.http_get(api, {"Origin": "https://hostname.example.com"})
    assert r.status == 200 and "access-control-allow-origin" not in r.headers


BAD_FILES = [
    ("web_server:\n  kind: ngnix\n", "web_server.kind", 2),
    ("application_server:\n  port: 70000\n", "application_server.port", 2),
    ("prefix: 'omero'\n", "prefix", 1),
    ("cors:\n  mode: origins\n  origins:\n    - hostname.example.com\n", "cors.origins[0]", 4),
    ("sessions:\n  backend: redis\n  location: 'redis://h:6379/0 extra'\n", "sessions.location", 3),
    ("web_server:\n  server_name: 'example.org; include /etc/shadow'\n", "web_server.server_name", 2),
    ("web_server:\n  server_name: 'a}'\n", "web_server.server_name", 2),
    ("sesions:\n  backend: redis\n", "sesions", 1),
    ("start: maybe\n", "start", 1),
    ("sessions:\n  cookie_age: -5\n", "sessions.cookie_age", 2),
    ("extra_config:\n  omero.web.prefix: /x\n", "extra_config.omero.web.prefix", 2),
    ("web_server:\n  max_body_size: '10 T; deny all'\n", "web_server.max_body_size", 2),
]


def test_bad_answers_exit_2_name_key_and_line_and_change_nothing(deployment):
    d = deployment
    d.omero("config", "set", "omero.web.session_cookie_age", "1234")
    before = sha(d.config_xml)
    for text, key, line in BAD_FILES:
        path = d.workdir / "bad.yml"
        base = f"omero:\n  venv: /opt/omerowizard-e2e/venv3\n  omerodir: {d.omerodir}\n"
        path.write_text(base + text)
        proc = d.cli("apply", str(path))
        assert proc.returncode == 2, (text, proc.stdout, proc.stderr)
        assert f"{path}:{line + 3}: {key}:" in proc.stderr, (text, proc.stderr)
        assert "nothing was changed" in proc.stderr
        assert sha(d.config_xml) == before
    assert not (d.omerodir / "var" / "django.pid").exists()


def test_applying_the_same_file_twice_the_second_run_writes_nothing(deployment):
    d = deployment
    f = d.answers_file({**LIGHT, "prefix": "/omero", "cors": {"mode": "origins", "origins": ["https://a.example.org"]}})
    first = d.cli("apply", str(f))
    assert first.returncode == 0, first.stderr
    pid = (d.omerodir / "var" / "django.pid").read_text()
    before, mtime = sha(d.config_xml), d.config_xml.stat().st_mtime_ns
    log = d.state.command_log
    log_before = log.read_text()
    second = d.cli("apply", str(f))
    assert second.returncode == 0
    assert "Nothing to change" in second.stdout
    assert sha(d.config_xml) == before and d.config_xml.stat().st_mtime_ns == mtime
    assert (d.omerodir / "var" / "django.pid").read_text() == pid  # no restart
    new_calls = [l for l in log.read_text()[len(log_before):].splitlines() if l.startswith("--- ") and " $ " in l]
    assert new_calls == []  # the probe reads config.xml itself: no omero process at all


def test_answers_command_prints_a_file_apply_accepts(deployment, redis_server):
    d = deployment
    apply_ok(d, {"prefix": "/omero", "sessions": {"backend": "redis", "location": redis_server.url}, "start": False})
    proc = d.cli("answers")
    assert proc.returncode == 0, proc.stderr
    printed = answers_mod.load_text(proc.stdout)  # every string tagged !unsafe (for Ansible), read back as it is
    assert printed.sessions.backend == "redis" and printed.prefix == "/omero"
    assert "prefix: !unsafe '/omero'" in proc.stdout
    out = d.workdir / "current.yml"
    out.write_text(proc.stdout)
    dry = d.cli("apply", str(out), "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "OMERO config:" not in dry.stdout  # describes the deployment: no config change planned
    assert d.state.answers.stat().st_mode & 0o777 == 0o600


def test_dry_run_changes_nothing(deployment):
    d = deployment
    f = d.answers_file({"prefix": "/omero"})
    proc = d.cli("apply", str(f), "--dry-run")
    assert proc.returncode == 0 and "Dry run: nothing was changed." in proc.stdout
    assert "omero.web.prefix: (unset) -> /omero" in proc.stdout
    assert not d.config_xml.exists() or "omero.web.prefix" not in d.config()


def test_turning_cors_off_unsets_every_key_in_one_omero_process(deployment):
    d = deployment
    apply_ok(d, {"cors": {"mode": "origins", "origins": ["https://a.example.org"]}, "start": False})
    log = d.state.command_log
    before = log.read_text()
    apply_ok(d, {"cors": {"mode": "off"}, "start": False})
    calls = [line for line in log.read_text()[len(before):].splitlines()
             if line.startswith("--- ") and " $ " in line and " start $ " not in line]  # each command once: its end
    assert len(calls) == 1 and calls[0].split(" $ ")[1].split()[-1] == "load", calls
    assert not {"omero.web.apps", "omero.web.middleware", "omero.web.cors_origin_whitelist"} & set(d.config())


# ---------------------------------------------------------------------------- truthful exits and logs (issue 12)
def test_dry_run_exits_1_when_preflight_would_refuse_and_0_when_the_apply_would_proceed(deployment):
    d = deployment
    f = d.answers_file({"prefix": "/omero"})
    with socket.socket() as taken:  # another program holds the application port: preflight refuses
        taken.bind(("127.0.0.1", d.app_port))
        taken.listen()
        refused = d.cli("apply", str(f), "--dry-run")
        assert refused.returncode == 1, refused.stdout + refused.stderr
        assert f"preflight would fail: port: port {d.app_port}" in refused.stdout
        assert "The apply would stop at preflight." in refused.stdout
        real = d.cli("apply", str(f))  # and the apply itself does stop there
        assert real.returncode == 1 and "preflight failed; nothing was changed" in real.stderr
    ok = d.cli("apply", str(f), "--dry-run")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "preflight would fail" not in ok.stdout and "Dry run: nothing was changed." in ok.stdout
    assert not d.config_xml.exists()


def test_a_privileged_application_port_exits_2_naming_the_reason(deployment):
    d = deployment
    f = d.answers_file({"application_server": {"port": 22}})
    proc = d.cli("apply", str(f))
    assert proc.returncode == 2, proc.stdout + proc.stderr
    line = next(n for n, text in enumerate(f.read_text().splitlines(), 1) if "port: 22" in text)
    assert f"{f}:{line}: application_server.port: 22 is a privileged port (below 1024)" in proc.stderr
    assert "'omero-web', never as root" in proc.stderr and "1024 to 65535" in proc.stderr
    assert "nothing was changed" in proc.stderr and not d.config_xml.exists()


def test_the_command_log_records_the_run_each_command_at_its_start_what_was_fed_and_every_change(deployment):
    d = deployment
    site = d.workdir / "nginx" / "omero-web.conf"
    f = d.answers_file({**LIGHT, "prefix": "/omero", "sessions": {"clearsessions": "daily"}})
    proc = d.cli("apply", str(f))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    log = (d.state.command_log).read_text()
    runs = re.findall(r"^=== \S+ apply started: pid (\d+), user root, OMERODIR (\S+), answers from (.+)$", log, re.M)
    assert runs == [(runs[0][0], str(d.omerodir), f"the answers file {f}")]
    # every command twice: when it starts (before anything it prints) and when it ends, with its status
    # (the properties go on its standard input: no temporary file)
    load = re.search(r"^--- \S+ start \$ \S*runuser -u omero-web -- /usr/bin/env .*omero config load -q$", log, re.M)
    assert load, log
    fed = log.index("fed to omero config load -q (standard input):\n")
    assert fed < load.start() and "    omero.web.prefix=/omero\n" in log[fed:load.start()]
    ended = re.search(r"^--- \S+ \$ .*omero config load -q\n(?:.*\n)*?--- exit 0 after", log, re.M)
    assert ended and ended.start() > load.start()
    assert f"change: wrote {site} (mode 644)" in log
    assert "change: crontab of omero-web: clearsessions line set to " in log
    web = re.search(r"^--- \S+ start \$ .*omero web start\n", log, re.M)
    assert web and log.index("Starting OMERO.web", web.end()) > web.end()  # logged at its start, before its output
