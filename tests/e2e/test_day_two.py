"""Day two, proven by breaking the real thing (issue 23): for every check, a deployment is broken the way it breaks
for administrators, `omerowizard doctor` (or `status`) names it with its fix, it is repaired (usually by
`omerowizard apply` of the saved answers, else by the command the fix names) and the finding clears.

Few deployments, many breaks each, to keep the time small:
1. the shared venv3 behind a standalone nginx (run by omero-web on a free port), Redis sessions with a password, an
   OMERO.server stand-in listening: Redis stopped, the OMERO.server gone, a worker killed while its master hangs,
   `omero config set` by hand, the nginx site edited by hand, the gunicorn master killed (a stale pid file); then
   `logs` (-f) and the support bundle;
2. the system nginx on port 80 (saved and restored exactly, as test_frontdoor does): the stock default site enabled
   again, another site claiming our name;
3. an environment of its own on omero-web 5.29.2 (below a security fix) with a web app, built here, whose URLs do
   not import under that release's Django: one upgrade repairs both.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
import tarfile
import threading
import time
import zipfile
from pathlib import Path

import jsonschema
import pytest

from omerowizard.state import health
from omerowizard.system import crontab as cron
from omerowizard.system.distributions import packages as installed
from tests import parts
from tests.e2e.conftest import E2E_ROOT, USER, VENV, WHEEL_CACHE
from tests.e2e.test_frontdoor import system_web  # noqa: F401 (a fixture)

SCHEMA = json.loads(health.schema_text())
REDIS_PASSWORD = "e2e-redis-Secret-4242"
SECRET_KEY = "e2e-django-secret-key-8cf1b2d7-5a0e49c3-71fd-4bb2-a9d1-0c3e"


def doctor(d, *args: str, command: str = "doctor") -> tuple[int, dict]:
    proc = d.cli(command, "--omerodir", str(d.omerodir), "--json", *args, timeout=300)
    assert proc.stdout.strip(), f"{command} --json printed no document (exit {proc.returncode}): {proc.stderr}"
    doc = json.loads(proc.stdout)
    jsonschema.validate(doc, SCHEMA)
    assert proc.returncode == doc["exit_status"], proc.stderr
    return proc.returncode, doc


def findings(doc: dict) -> dict[str, dict]:
    [dep] = doc["deployments"]
    return {f["check"]: f for f in dep["findings"]}


def problems(doc: dict) -> dict[str, dict]:
    return {k: f for k, f in findings(doc).items() if f["status"] == "problem"}


def wait_for(cond, timeout: float = 60, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting for {what}")
        time.sleep(0.2)


class Listener:
    """Something listening where server_list says the OMERO.server is (doctor checks the TCP port, as OMERO.web's
    Ice client first does). Each connection is accepted and closed: one never accepted would fill the backlog,
    and later checks would time out."""

    def __init__(self, port: int):
        self.port = port
        self.sock: socket.socket | None = None
        self.thread: threading.Thread | None = None

    def start(self) -> None:
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", self.port))
        self.sock.listen(64)
        self.thread = threading.Thread(target=self._serve, args=(self.sock,), daemon=True)
        self.thread.start()

    @staticmethod
    def _serve(sock: socket.socket) -> None:
        while True:
            try:
                conn, _ = sock.accept()
            except OSError:  # closed by stop()
                return
            conn.close()

    def stop(self) -> None:
        if self.sock:
            try:
                self.sock.shutdown(socket.SHUT_RDWR)  # wakes the accept() of the thread (close alone does not)
            except OSError:
                pass
            self.sock.close()
            self.sock = None
        if self.thread:
            self.thread.join(5)


class StandaloneNginx:
    """The deployment's own nginx-development file, run by the OMERO.web user as its final message says."""

    def __init__(self, d):
        self.conf = d.omerodir / "etc" / "nginx-development.conf"
        self.log = d.omerodir / "var" / "log" / "nginx_error.log"
        self.pidfile = d.omerodir / "var" / "nginx" / "nginx.pid"

    def argv(self, *extra: str) -> list[str]:
        return ["runuser", "-u", USER, "--", parts.require("nginx"), "-c", str(self.conf), "-e", str(self.log), *extra]

    def start(self) -> None:
        subprocess.run(self.argv(), check=True, capture_output=True)

    def stop(self) -> None:
        if self.pidfile.exists():
            subprocess.run(self.argv("-s", "stop"), capture_output=True)


def master_pid(d) -> int:
    return int((d.omerodir / "var" / "django.pid").read_text().strip())


def children(pid: int) -> list[int]:
    out = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                stat = Path(f"/proc/{name}/stat").read_text()
            except OSError:
                continue
            if stat[stat.rfind(")") + 2:].split()[1] == str(pid):
                out.append(int(name))
    return out


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.fixture
def site(deployment, tmp_path):
    """Deployment 1: applied and healthy, its nginx, Redis and OMERO.server stand-in running."""
    d = deployment
    redis = parts.Redis(tmp_path / "redis", password=REDIS_PASSWORD).start()
    server = Listener(parts.free_port())
    server.start()
    web_port = parts.free_port()
    d.rig = {"redis": redis, "server": server, "nginx": StandaloneNginx(d)}
    d.answers = d.answers_file({
        "web_server": {"kind": "nginx-development", "port": web_port, "config_path": None},
        "application_server": {"workers": 2, "timeout": 10},
        "sessions": {"backend": "redis", "location": redis.url},
        "servers": [{"host": "127.0.0.1", "port": server.port, "name": "stand-in"}],
        "nodes": {"secret_key": SECRET_KEY},
    })
    proc = d.cli("apply", str(d.answers))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"Logs: OMEROweb.log {d.omerodir}/var/log/OMEROweb.log; nginx {d.omerodir}/var/log/nginx_error.log " \
           f"(`omerowizard logs --omerodir {d.omerodir}` merges them by time)." in proc.stdout
    d.rig["nginx"].start()
    yield d
    d.rig["nginx"].stop()
    server.stop()
    redis.stop()


def test_a_deployment_broken_six_ways_is_diagnosed_and_repaired(site):
    d = site
    code, doc = doctor(d)
    assert code == 0 and doc["verdict"] == "healthy", problems(doc)
    seen = findings(doc)
    assert seen["front-door"]["status"] == "ok" and seen["session-store"]["status"] == "ok"
    assert seen["workers"]["data"]["running"] == 2 and seen["omero-servers"]["status"] == "ok"
    assert seen["security"]["status"] == "ok"

    # --- Redis stopped: nobody can log in; starting it again clears it
    redis = d.rig["redis"]
    redis.stop()
    wait_for(lambda: not _listening(redis.port), 20, "Redis to stop")
    code, doc = doctor(d)
    found = problems(doc)
    assert code == 1 and "session-store" in found, found
    assert "cannot connect" in found["session-store"]["summary"] and REDIS_PASSWORD not in json.dumps(doc)
    assert "start Redis" in found["session-store"]["fix"]
    print("while Redis was down:", sorted(found))
    redis.start()
    assert "session-store" not in problems(doctor(d, command="status")[1])

    # --- the OMERO.server of server_list gone: doctor names host and port; back, it clears
    server = d.rig["server"]
    server.stop()
    code, doc = doctor(d)
    found = problems(doc)
    assert code == 1 and f"127.0.0.1:{server.port}" in found["omero-servers"]["summary"], found
    assert "start the OMERO.server there" in found["omero-servers"]["fix"]
    server.start()
    assert "omero-servers" not in problems(doctor(d)[1])

    # --- a worker killed while its master hangs (SIGSTOP): one worker short; the fix's command repairs it
    master = master_pid(d)
    victim = children(master)[0]
    os.kill(master, signal.SIGSTOP)
    try:
        os.kill(victim, signal.SIGKILL)
        wait_for(lambda: not alive(victim) or Path(f"/proc/{victim}/stat").read_text().split()[2] == "Z", 10)
        code, doc = doctor(d, command="status")
        found = problems(doc)
        assert code == 1 and found["workers"]["data"]["running"] == 1, found
        assert "1 of 2 workers serve" in found["workers"]["summary"]
        assert f"is stopped (state T)" in found["gunicorn"]["summary"]
        assert found["gunicorn"]["command"] == f"kill -CONT {master}"
    finally:
        os.kill(master, signal.SIGCONT)
    wait_for(lambda: doctor(d, command="status")[0] == 0, 60, "the master to replace its worker")

    # --- `omero config set` by hand and the nginx site edited by hand: status names both; one apply repairs both
    d.omero("config", "set", "omero.web.session_cookie_age", "999")
    conf = d.rig["nginx"].conf
    conf.write_text(conf.read_text() + "# edited by hand\n")
    code, doc = doctor(d, command="status")
    found = problems(doc)
    assert code == 1 and found["drift.config"]["data"]["keys"] == ["omero.web.session_cookie_age"], found
    assert any("omero.web.session_cookie_age is 999" in line for line in found["drift.config"]["details"])
    assert found["drift.files"]["data"]["edited"] == [str(conf)]
    assert found["drift.config"]["command"] == f"omerowizard apply {d.state.answers}"
    human = d.cli("status", "--omerodir", str(d.omerodir))
    assert human.returncode == 1 and "PROBLEM  drift.config: config.xml differs from the saved answers in " \
                                     "omero.web.session_cookie_age" in human.stdout
    repair = d.cli(*found["drift.config"]["command"].split()[1:])
    assert repair.returncode == 0, repair.stdout + repair.stderr
    code, doc = doctor(d, command="status")
    assert code == 0, problems(doc)

    # --- the static files gone (a cleanup of var/): pages come without styles; OMERO.web's next start collects them
    static = d.omerodir / "var" / "static" / "webgateway" / "css" / "ome.body.css"
    static.unlink()
    code, doc = doctor(d, command="status")
    found = problems(doc)
    assert code == 1 and set(found) == {"static-files"}, found
    assert "static files are not served by the standalone nginx" in found["static-files"]["summary"]
    assert "404" in found["static-files"]["summary"] and "omero web restart" in found["static-files"]["fix"]

    # --- the gunicorn master killed: a stale pid file (and orphans until they notice); apply starts it again
    master = master_pid(d)
    workers = children(master)
    os.kill(master, signal.SIGKILL)
    wait_for(lambda: not alive(master), 10, "the master to die")
    code, doc = doctor(d, command="status")
    found = problems(doc)
    assert code == 1 and found["gunicorn"]["data"]["stale"] is True, found
    assert f"names pid {master}, which is not running" in found["gunicorn"]["summary"]
    wait_for(lambda: not any(alive(w) for w in workers), 30, "the orphaned workers to exit")
    code, doc = doctor(d, command="status")
    found = problems(doc)
    assert "apply the saved answers" in found["gunicorn"]["fix"] and found["gunicorn"]["command"].startswith(
        "omerowizard apply ")
    assert "front-door" in found  # the standalone nginx shows the maintenance page
    repair = d.cli(*found["gunicorn"]["command"].split()[1:])
    assert repair.returncode == 0, repair.stdout + repair.stderr
    code, doc = doctor(d)
    assert code == 0, problems(doc)  # every check clear; errors logged before this start no longer count
    assert static.exists() and findings(doc)["front-door"]["status"] == "ok"
    assert findings(doc)["log-errors"]["status"] == "ok"

    # --- logs: OMEROweb.log and the nginx error log (which logged the refused upstream) merged by time; -f follows
    logs = d.cli("logs", "--omerodir", str(d.omerodir), "-n", "400")
    assert logs.returncode == 0, logs.stderr
    lines = logs.stdout.splitlines()
    assert lines[0] == f"# OMEROweb.log: {d.omerodir}/var/log/OMEROweb.log; nginx: {d.omerodir}/var/log/nginx_error.log"
    assert any(line.startswith("OMEROweb.log: ") for line in lines) and any(line.startswith("nginx: ") for line in lines)
    follow = subprocess.Popen([sys.executable, "-m", "omerowizard", "logs", "-f", "-n", "0", "--omerodir",
                               str(d.omerodir)], env=d.env(), stdout=subprocess.PIPE, text=True)
    try:
        assert follow.stdout.readline().startswith("# OMEROweb.log: ")
        marker = f"2030-01-01 00:00:00,000 ERROR [e2e] marker {os.getpid()}"
        got: list[str] = []
        reader = threading.Thread(target=lambda: got.append(follow.stdout.readline()), daemon=True)
        reader.start()
        with open(d.omerodir / "var" / "log" / "OMEROweb.log", "a") as fh:
            fh.write(marker + "\n")
        reader.join(20)
        assert got == [f"OMEROweb.log: {marker}\n"]
    finally:
        follow.terminate()
        follow.wait(10)

    # --- the support bundle: 0600, and none of the deployment's secrets in it
    out = d.workdir / "support.tar.gz"
    bundle = d.cli("support-bundle", "--omerodir", str(d.omerodir), "-o", str(out))
    assert bundle.returncode == 0, bundle.stdout + bundle.stderr
    assert (out.stat().st_mode & 0o777) == 0o600
    with tarfile.open(out) as tar:
        names = [m.name.split("/", 1)[1] for m in tar.getmembers()]
        blob = b"".join(tar.extractfile(m).read() for m in tar.getmembers() if m.isfile())
    assert REDIS_PASSWORD.encode() in d.config_xml.read_bytes() and SECRET_KEY.encode() in d.config_xml.read_bytes()
    for secret in (REDIS_PASSWORD, SECRET_KEY):
        assert secret.encode() not in blob, secret
    assert {"status.json", "doctor.json", "config.xml", "pip-freeze.txt", "commands.log", "versions.txt",
            "logs/OMEROweb.log.tail", "logs/nginx.tail", f"files{conf}"} <= set(names), names
    assert f"omero-web=={installed(VENV)['omero-web']}".encode() in blob and b"nginx: nginx version" in blob


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


# ---------------------------------------------------------------------------- 2: the system nginx
def test_the_system_nginx_default_site_a_shadowing_site_csrf_and_the_clearsessions_job(
        deployment, system_web, tmp_path):  # noqa: F811 (system_web: a fixture)
    d = deployment
    server = Listener(parts.free_port())
    server.start()
    crt, key = tmp_path / "omero.pem", tmp_path / "omero.key"
    subprocess.run([parts.require("openssl"), "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "10",
                    "-subj", "/CN=omero.example.org", "-keyout", str(key), "-out", str(crt)],
                   check=True, capture_output=True)
    f = d.answers_file({"application_server": {"workers": 1}, "sessions": {"clearsessions": "daily"},
                        "servers": [{"host": "127.0.0.1", "port": server.port}],
                        "web_server": {"kind": "nginx", "port": 80, "config_path": None,
                                       "https": {"certificate": str(crt), "key": str(key)}}})
    try:
        proc = d.cli("apply", str(f))
        assert proc.returncode == 0, proc.stdout + proc.stderr
        stock = Path("/etc/nginx/sites-enabled/default")
        assert not os.path.lexists(stock)
        code, doc = doctor(d)
        seen = findings(doc)
        assert code == 0, problems(doc)
        assert seen["default-site"]["status"] == "ok" and seen["clearsessions"]["status"] == "ok"
        assert seen["front-door"]["data"]["url"] == "https://omero.example.org/"
        # a certificate with 10 days left: a warning (renew it soon), the deployment still healthy
        assert seen["certificate"]["status"] == "warning" and 9 <= seen["certificate"]["data"]["days_left"] <= 10
        assert "CN = omero.example.org" in seen["certificate"]["data"]["issuer"]

        # --- the stock default site enabled again (by hand, or a package upgrade): apply disables it again
        stock.symlink_to("/etc/nginx/sites-available/default")
        code, doc = doctor(d)
        found = problems(doc)
        assert code == 1 and set(found) == {"default-site"}, found
        assert f"Debian's stock default site {stock} is enabled again" in found["default-site"]["summary"]
        assert "nginx refuses to reload while two sites claim default_server" in found["default-site"]["summary"]
        repair = d.cli(*found["default-site"]["command"].split()[1:])
        assert repair.returncode == 0, repair.stdout + repair.stderr
        assert not os.path.lexists(stock)
        assert doctor(d)[0] == 0

        # --- another server block claims our name on our port: named; removing it clears it
        shadow = Path("/etc/nginx/sites-enabled/00-shadow")
        shadow.write_text("server {\n    listen 443 ssl;\n    server_name omero.example.org;\n"
                          f"    ssl_certificate {crt};\n    ssl_certificate_key {key};\n    return 404;\n}}\n")
        code, doc = doctor(d)
        found = problems(doc)
        assert code == 1 and found["shadowing-site"]["details"] == [str(shadow)], found
        assert "remove that server_name from the other site" in found["shadowing-site"]["fix"]
        shadow.unlink()
        assert doctor(d)[0] == 0

        # --- by hand: OMERO.web no longer told it is behind HTTPS (CSRF), and the clearsessions line removed
        d.omero("config", "set", "omero.web.secure_proxy_ssl_header")
        cron.set_job(USER, str(d.omerodir), None)
        code, doc = doctor(d)
        found = problems(doc)
        assert code == 1 and {"csrf", "clearsessions", "drift.config"} <= set(found), found
        assert "Origin checking failed" in found["csrf"]["summary"]
        assert "https://omero.example.org is not in omero.web.csrf_trusted_origins" in found["csrf"]["summary"]
        assert "missing from the crontab of omero-web" in found["clearsessions"]["summary"]
        repair = d.cli(*found["csrf"]["command"].split()[1:])
        assert repair.returncode == 0, repair.stdout + repair.stderr
        code, doc = doctor(d)
        assert code == 0, problems(doc)
    finally:
        server.stop()


# ---------------------------------------------------------------------------- 3: an older omero-web and a web app
OLD = "5.29.2"  # below GHSA-j4gv-6x9v-v23g (fixed in 5.29.3); Django 4.2
DOCTOR_VENV = E2E_ROOT / "venv-doctor"
APP = "omerowiz_doctor_app"


@pytest.fixture(scope="module")
def old_venv(omero_install) -> tuple[Path, str]:
    """An environment of its own on omero-web OLD (made, or put back to OLD after the upgrade of a previous run, by
    install-omero with the cached zeroc-ice wheel); returns it and the newest release (venv3's)."""
    if installed(DOCTOR_VENV).get("omero-web") != OLD:
        proc = subprocess.run([sys.executable, "-m", "omerowizard", "install-omero", "--user", USER,
                               "--venv", str(DOCTOR_VENV), "--omerodir", str(E2E_ROOT / "OMERO.web-doctor"),
                               "--omero-web-version", OLD],
                              env={**os.environ, "OMEROWIZARD_WHEEL_CACHE": WHEEL_CACHE},
                              capture_output=True, text=True, timeout=1800)
        if proc.returncode != 0:
            pytest.fail(f"missing part: omero-web {OLD} could not be installed:\n{proc.stdout[-3000:]}\n"
                        f"{proc.stderr[-3000:]}", pytrace=False)
    assert installed(DOCTOR_VENV)["omero-web"] == OLD
    return DOCTOR_VENV, installed(omero_install)["omero-web"]


def app_wheel(directory: Path) -> Path:
    """A small web app whose URLs need Django 5.2 (CompositePrimaryKey is new there): under omero-web 5.29 (Django
    4.2) every page fails, as apps do after a Django bump (omero-web#358)."""
    directory.mkdir(parents=True, exist_ok=True)
    files = {
        f"{APP}/__init__.py": "",
        f"{APP}/urls.py": "from django.db.models import CompositePrimaryKey  # noqa: F401 (Django >= 5.2)\n"
                          "urlpatterns = []\n",
    }
    info = f"{APP}-0.1.dist-info"
    files[f"{info}/METADATA"] = "Metadata-Version: 2.1\nName: omerowiz-doctor-app\nVersion: 0.1\n"
    files[f"{info}/WHEEL"] = "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    files[f"{info}/top_level.txt"] = f"{APP}\n"
    record = []
    for name, text in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=").decode()
        record.append(f"{name},sha256={digest},{len(text.encode())}")
    record.append(f"{info}/RECORD,,")
    files[f"{info}/RECORD"] = "\n".join(record) + "\n"
    path = directory / f"{APP}-0.1-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as z:
        for name, text in files.items():
            z.writestr(name, text)
    os.chmod(directory, 0o755)
    os.chmod(path, 0o644)
    return path


def test_an_old_omero_web_and_an_app_that_does_not_import_are_named_and_one_upgrade_repairs_both(
        deployment, old_venv, tmp_path):
    d = deployment
    venv, newest = old_venv
    server = Listener(parts.free_port())
    server.start()
    base = {"omero": {"venv": str(venv)}, "web_server": {"kind": "none"},
            "application_server": {"workers": 1}, "sessions": {"clearsessions": "off"},
            "servers": [{"host": "127.0.0.1", "port": server.port}]}
    first = d.cli("apply", str(d.answers_file(base, name="old.yml")))
    assert first.returncode == 0, first.stdout + first.stderr
    code, doc = doctor(d)
    found = problems(doc)
    assert set(found) == {"security"}, found
    assert "GHSA-j4gv-6x9v-v23g (fixed in 5.29.3)" in found["security"]["summary"]
    assert f"omero-web {OLD} is below" in found["security"]["summary"]
    assert "set omero.web_version to 5.29.3 or newer" in found["security"]["fix"]

    # an administrator installs a web app by hand and enables it (the app's README way)
    wheel = app_wheel(tmp_path / "wheels")
    pip = subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "--no-deps", "--no-index", str(wheel)],
                         capture_output=True, text=True)
    assert pip.returncode == 0, pip.stdout + pip.stderr
    try:
        for args in (("config", "append", "omero.web.apps", f'"{APP}"'), ("web", "restart")):
            proc = subprocess.run(["runuser", "-u", USER, "--", "env", f"OMERODIR={d.omerodir}", "HOME=/tmp",
                                   str(venv / "bin" / "omero"), *args], capture_output=True, text=True, cwd="/")
            # the restart may fail: its Django checks import every app's URLs (what doctor must then explain)
            assert proc.returncode == 0 or args[0] == "web", proc.stdout + proc.stderr
        code, doc = doctor(d)
        found = problems(doc)
        # OMERO.web down (its restart failed) or not answering: named as well
        assert {"security", "apps"} <= set(found) and {"application-server", "gunicorn"} & set(found), found
        assert f"the web app {APP} does not import under omero-web {OLD} and Django 4.2" in found["apps"]["summary"]
        assert "CompositePrimaryKey" in found["apps"]["summary"] and found["apps"]["data"]["failing"] == [APP]
        assert "upgrade omero-web (omero.web_version)" in found["apps"]["fix"]

        up = d.cli("apply", str(d.answers_file({**base, "omero": {**base["omero"], "web_version": newest}},
                                                name="new.yml")), timeout=1500)
        assert up.returncode == 0, up.stdout + up.stderr
        assert installed(venv)["omero-web"] == newest
        code, doc = doctor(d)
        assert code == 0, problems(doc)
        seen = findings(doc)
        assert seen["apps"]["status"] == "ok" and APP in seen["apps"]["summary"]
        assert seen["security"]["status"] == "ok"
        [dep] = doc["deployments"]
        assert dep["versions"]["apps"] == {APP: "0.1"}
    finally:
        server.stop()
        subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "uninstall", "-y", "omerowiz-doctor-app"],
                       capture_output=True)
