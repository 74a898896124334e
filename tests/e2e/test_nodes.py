"""Several OMERO.web nodes behind one front end, against the real parts: three deployments on this
machine (each its own OMERODIR, its own non-root user and its own port, sharing the e2e tier's
OMERO.web environment), Redis sessions and one secret key, configured by `omerowizard apply`; node 1
also writes the nginx file, and one real private nginx (never the system's) balances over the three,
as does a private Apache with the balancer file rendered from the same answers.

Also: the real nginx -t and apache2 -t accept the balanced files, whatever the members."""

from __future__ import annotations

import hashlib
import json
import os
import pwd
import shutil
import subprocess
import sys
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from omerowizard.catalogue import answers
from omerowizard.features.web_server import site as sitefiles
from omerowizard.model.host import Host
from tests import parts
from tests.e2e.conftest import E2E_ROOT, VENV, WHEEL_CACHE
from tests.parts import nginx_wrapper

SECRET = "e2e-Shared-Django-Key_" + "x7Q2" * 8 + "!done"  # 59 characters, what nodes.secret_key sets
MARK = 'id="omerowizard-maintenance"'

# Run as a node's user with that node's OMERODIR: Django's own session store under omeroweb.settings.
SESSION_SCRIPT = r"""
import hashlib, json, os, sys
os.environ["DJANGO_SETTINGS_MODULE"] = "omeroweb.settings"
import django
django.setup()
from importlib import import_module
from django.conf import settings
from django.core import signing
if os.environ.get("OTHER_SECRET"):
    settings.SECRET_KEY = os.environ["OTHER_SECRET"]
store = import_module(settings.SESSION_ENGINE).SessionStore
out = {"engine": settings.SESSION_ENGINE, "cache": settings.CACHES["default"]["BACKEND"],
       "secret": hashlib.sha256(settings.SECRET_KEY.encode()).hexdigest()}
if sys.argv[1] == "create":  # create MARKER N: N sessions, each with the marker and an OMERO.web connector
    out["keys"] = []
    for _ in range(int(sys.argv[3])):
        s = store()
        s["omerowizard-e2e"] = sys.argv[2]
        s["connector"] = {"server_id": 1, "is_secure": False, "is_public": False,
                          "omero_session_key": "no-such-omero-session", "user_id": 1}
        s.save()
        out["keys"].append(s.session_key)
    out["signed"] = signing.dumps({"omerowizard-e2e": sys.argv[2]})
else:  # load SIGNED KEY...: each session's data, and the signed value checked with this node's key
    out["data"] = {k: dict(store(session_key=k).items()) for k in sys.argv[3:]}
    try:
        out["unsigned"] = signing.loads(sys.argv[2])
    except signing.BadSignature as exc:
        out["unsigned"] = f"refused: {type(exc).__name__}"
print(json.dumps(out))
"""


@dataclass
class Node:
    user: str
    omerodir: Path
    port: int

    def run(self, *argv: str, env: dict[str, str] | None = None, check: bool = True) -> subprocess.CompletedProcess:
        """A command as this node's user, with its OMERODIR (omero never runs as root)."""
        extra = [f"{k}={v}" for k, v in (env or {}).items()]
        cmd = ["runuser", "-u", self.user, "--", "env", f"OMERODIR={self.omerodir}",
               f"HOME={pwd.getpwnam(self.user).pw_dir}", *extra, *argv]
        return subprocess.run(cmd, capture_output=True, text=True, check=check, cwd="/")

    def omero(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return self.run(str(VENV / "bin" / "omero"), *args, check=check)

    def session(self, *args: str, other_secret: str | None = None) -> dict:
        """SESSION_SCRIPT under this node's settings, as its user."""
        proc = self.run(str(VENV / "bin" / "python"), "-c", SESSION_SCRIPT, *args,
                        env={"OTHER_SECRET": other_secret} if other_secret else None, check=False)
        assert proc.returncode == 0, proc.stderr[-3000:]
        return json.loads(proc.stdout.strip().splitlines()[-1])

    def stop(self) -> None:
        if (self.omerodir / "var" / "django.pid").exists():
            self.omero("web", "stop", check=False)


@pytest.fixture
def nodes(node_users, tmp_path):
    made = []
    for user in node_users:
        omerodir = E2E_ROOT / "dirs" / f"node-{uuid.uuid4().hex[:10]}"
        omerodir.mkdir(parents=True)
        pw = pwd.getpwnam(user)
        os.chown(omerodir, pw.pw_uid, pw.pw_gid)
        made.append(Node(user, omerodir, parts.free_port()))
    yield made
    for n in made:
        n.stop()
        subprocess.run(["pkill", "-f", f"OMERODIR={n.omerodir}"], check=False)
        shutil.rmtree(n.omerodir, ignore_errors=True)


def apply(node: Node, data: dict, workdir: Path, home: Path) -> subprocess.CompletedProcess:
    path = workdir / f"{node.user}.yml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    env = {**os.environ, "OMEROWIZARD_HOME": str(home), "OMEROWIZARD_WHEEL_CACHE": WHEEL_CACHE}
    return subprocess.run([sys.executable, "-m", "omerowizard", "apply", str(path)], env=env, capture_output=True,
                          text=True, timeout=300, cwd=str(workdir))


def apache_wrapper(site: sitefiles.WantedFile, d: Path) -> Path:
    """A private Apache config (never /etc/apache2's sites) loading exactly the modules the file names."""
    mods = ["mpm_event", "authz_core", "mime", *site.modules]
    conf = d / "apache-wrapper.conf"
    conf.write_text("\n".join([
        'ServerRoot "/etc/apache2"', f"PidFile {d}/apache.pid", f"ErrorLog {d}/apache-error.log",
        "ServerName localhost", "User www-data", "Group www-data", "TypesConfig /etc/mime.types",
        *[f"LoadModule {m}_module /usr/lib/apache2/modules/mod_{m}.so" for m in mods], f"Include {site.path}", ""]))
    return conf


def a_static_file(omerodir: Path) -> tuple[str, bytes]:
    f = next((omerodir / "var" / "static" / "webgateway").rglob("*.css"))
    return str(f.relative_to(omerodir / "var" / "static")), f.read_bytes()


def test_three_nodes_share_sessions_and_nginx_and_apache_skip_the_dead_ones(nodes, redis_server, tmp_path):
    nginx = parts.require("nginx")
    front_port = parts.free_port()
    site = tmp_path / "site" / "omero-web.conf"
    members = [{"host": "127.0.0.1", "port": n.port} for n in nodes]
    shared = {"sessions": {"backend": "redis", "location": redis_server.url},
              "nodes": {"members": members, "static": "nodes", "secret_key": SECRET}}

    def answers_of(i: int, n: Node) -> dict:
        # node 1 is also the front end (it writes the nginx file); nodes 2 and 3 write no web-server file
        web = ({"kind": "nginx", "server_name": "omero.example.org", "port": front_port, "config_path": str(site)}
               if i == 0 else {"kind": "none"})
        return {"omero": {"user": n.user, "venv": str(VENV), "omerodir": str(n.omerodir)},
                "application_server": {"port": n.port, "workers": 1}, "web_server": web, **shared}

    with ThreadPoolExecutor(3) as pool:
        runs = list(pool.map(lambda i: apply(nodes[i], answers_of(i, nodes[i]), tmp_path, tmp_path / "home"),
                             range(3)))
    from omerowizard.system.deployments import Deployment

    for n, run in zip(nodes, runs):
        assert run.returncode == 0, f"{n.user}:\n{run.stdout}\n{run.stderr}"
        log = Deployment(str(n.omerodir)).command_log.read_text()
        assert "omero.web.secret_key" in log, "the command log shows the key was set ..."
        assert SECRET not in run.stdout + run.stderr + log, "... and masks the secret everywhere"
    assert "omero.web.secret_key" in runs[0].stdout
    assert "upstream" in site.read_text() and site.read_text().count(" max_fails=1 ") == 3
    assert not any(p.name.endswith(".conf") for p in (tmp_path / "site").iterdir() if p != site)

    # every node: the same secret key in its config.xml, Redis sessions, WhiteNoise serving its static files
    for n in nodes:
        config = dict(line.split("=", 1) for line in n.omero("config", "get", "--show-password").stdout.splitlines()
                      if "=" in line)
        assert config["omero.web.secret_key"] == SECRET
        assert "whitenoise.middleware.WhiteNoiseMiddleware" in config["omero.web.middleware"]
        rel, data = a_static_file(n.omerodir)
        direct = parts.http_get(f"http://127.0.0.1:{n.port}/static/{rel}")
        assert direct.status == 200 and direct.body.encode() == data, f"{n.user} serves its static files itself"

    wrapper = nginx_wrapper(site, tmp_path)
    errlog = str(tmp_path / "nginx-e.log")
    check = subprocess.run([nginx, "-t", "-c", str(wrapper), "-e", errlog], capture_output=True, text=True)
    assert check.returncode == 0, check.stderr + site.read_text()
    # the same front end as Apache's balancer: node 1's answers with kind apache, rendered beside it
    apache = parts.require("apache2")
    apache_port = parts.free_port()
    a = answers.validate({**answers_of(0, nodes[0]), "web_server": {
        "kind": "apache", "server_name": "omero.example.org", "port": apache_port,
        "config_path": str(tmp_path / "apache" / "omero-web.conf")}})
    apache_site = sitefiles.wanted_files(a, Host(), None, [])[0]
    Path(apache_site.path).parent.mkdir()
    Path(apache_site.path).write_text(apache_site.content)
    apache_conf = apache_wrapper(apache_site, tmp_path)
    subprocess.run([nginx, "-c", str(wrapper), "-e", errlog], check=True)
    started = subprocess.run([apache, "-f", str(apache_conf), "-k", "start"], capture_output=True, text=True)
    try:
        assert started.returncode == 0, started.stderr + apache_site.content
        parts.wait_port(front_port)
        parts.wait_port(apache_port)
        front = f"http://127.0.0.1:{front_port}"
        balancer = f"http://127.0.0.1:{apache_port}"
        assert parts.http_get(f"{front}/webclient/login/").status == 200
        assert parts.http_get(f"{balancer}/webclient/login/").status == 200

        # sessions made under node 1's settings are the same sessions on every node (Django's SessionStore, each
        # node's own settings, run as each node's user), and a value node 1 signed verifies on every node
        made = nodes[0].session("create", "made-on-node-1", "4")
        assert made["engine"] == "django.contrib.sessions.backends.cache"
        assert made["cache"] == "django_redis.cache.RedisCache"
        assert made["secret"] == hashlib.sha256(SECRET.encode()).hexdigest()
        keys = made["keys"]
        for n in nodes:
            seen = n.session("load", made["signed"], *keys)
            assert seen["secret"] == made["secret"], f"{n.user} has the shared secret key"
            assert all(seen["data"][k]["omerowizard-e2e"] == "made-on-node-1" for k in keys), n.user
            assert seen["unsigned"] == {"omerowizard-e2e": "made-on-node-1"}, n.user
        # a node with its own key (omero-web's default: one generated per OMERODIR) refuses what node 1 signed;
        # the cache session itself is stored unsigned, so it is still read (why an empty key is only a warning)
        own = nodes[2].session("load", made["signed"], keys[0], other_secret="node-3's-own-generated-key-" * 2)
        assert own["unsigned"] == "refused: BadSignature"
        assert own["data"][keys[0]]["omerowizard-e2e"] == "made-on-node-1"

        # the session cookie is the same session over HTTP: a request carrying it reaches OMERO.web's
        # login_required, which finds the session's connector, cannot join its OMERO session (no OMERO.server
        # here) and deletes the connector from that session: through node 2, node 3 and the front end
        for key, url in ((keys[1], f"http://127.0.0.1:{nodes[1].port}"),
                         (keys[2], f"http://127.0.0.1:{nodes[2].port}"), (keys[3], front)):
            answer = parts.http_get(f"{url}/webclient/", headers={"Cookie": f"sessionid={key}"})
            assert answer.status == 302 and "/webclient/login/" in answer.headers["location"], url
            assert "sessionid=" not in answer.headers.get("set-cookie", "") or key in answer.headers["set-cookie"]
        after = nodes[0].session("load", made["signed"], *keys)["data"]
        assert "connector" in after[keys[0]], "a session no request carried keeps its connector"
        for key in keys[1:]:
            assert "connector" not in after[key] and after[key]["omerowizard-e2e"] == "made-on-node-1"

        # the static files come from the nodes through the front end
        rel, data = a_static_file(nodes[1].omerodir)
        assert parts.http_get(f"{front}/static/{rel}").body.encode() == data

        # two nodes stopped: every request is still answered, by the third
        for n in nodes[:2]:
            n.omero("web", "stop")
        for url in (front, balancer):
            for _ in range(6):
                login = parts.http_get(f"{url}/webclient/login/")
                assert login.status == 200 and "OMERO" in login.body and MARK not in login.body, url
            assert parts.http_get(f"{url}/static/{rel}").status == 200, url

        # all three stopped: the maintenance page
        nodes[2].omero("web", "stop")
        for url in (front, balancer):
            down = parts.http_get(f"{url}/webclient/login/")
            assert down.status == 503 and MARK in down.body, url
    finally:
        subprocess.run([nginx, "-c", str(wrapper), "-e", errlog, "-s", "stop"], check=False)
        subprocess.run([apache, "-f", str(apache_conf), "-k", "stop"], capture_output=True, check=False)


# ---------------------------------------------------------------------------- the real servers accept the files
THREE = [{"host": "127.0.0.1", "port": 4081}, {"host": "::1", "port": 4082}, {"host": "localhost", "port": 4083}]


def render(tmp_path: Path, kind: str, static: str, prefix: str, https: bool = False) -> sitefiles.WantedFile:
    web = {"kind": kind, "server_name": "omero.example.org", "port": 8081,
           "config_path": str(tmp_path / f"{kind}.conf")}
    if https:
        crt, key = tmp_path / "omero.pem", tmp_path / "omero.key"
        subprocess.run([parts.require("openssl"), "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                        "-subj", "/CN=omero.example.org", "-keyout", str(key), "-out", str(crt)],
                       check=True, capture_output=True)
        web["https"] = {"certificate": str(crt), "key": str(key), "port": 8443}
    a = answers.validate({"omero": {"omerodir": str(tmp_path / "OMERO.web")}, "prefix": prefix, "web_server": web,
                          "sessions": {"backend": "redis"},
                          "nodes": {"members": THREE, "static": static, "secret_key": SECRET}})
    site = sitefiles.wanted_files(a, Host(), None, [])[0]
    Path(site.path).write_text(site.content)
    return site


@pytest.mark.parametrize("static, prefix, https", [("front_end", "/", False), ("nodes", "/omero", True)])
def test_nginx_accepts_the_balanced_upstream(tmp_path, static, prefix, https):
    nginx = parts.require("nginx")
    site = render(tmp_path, "nginx", static, prefix, https)
    proc = subprocess.run([nginx, "-t", "-c", str(nginx_wrapper(Path(site.path), tmp_path)),
                           "-e", str(tmp_path / "e.log")], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr + site.content
    assert site.content.count("max_fails=1") == 3


@pytest.mark.parametrize("static, prefix, https", [("front_end", "/omero", True), ("nodes", "/", False)])
def test_apache_accepts_the_balancer_with_the_modules_the_file_names(tmp_path, static, prefix, https):
    apache = parts.require("apache2")
    site = render(tmp_path, "apache", static, prefix, https)
    proc = subprocess.run([apache, "-t", "-f", str(apache_wrapper(site, tmp_path))], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr + site.content
    assert "Syntax OK" in proc.stderr and site.content.count("BalancerMember") == 3
