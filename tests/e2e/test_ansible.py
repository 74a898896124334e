"""Many nodes with Ansible, against the real parts: ansible-core from the package registry runs the
collection's own playbook (built and installed from its artifact) over three inventory hosts that are
three OMERO.web deployments on this machine: each its own OMERODIR, its own user and its own port,
all sharing the e2e tier's OMERO.web virtual environment and one Redis for the sessions."""

from __future__ import annotations

import os
import pwd
import re
import shutil
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from tests import ansible_parts, parts
from tests.e2e.conftest import E2E_ROOT, VENV

SECRET = "pub-Secret-4242"
SECRET_KEY = "Rolling-test-key_0123456789abcdefghijklmnopqrstuvwxyzABCDEFGH"  # the nodes' shared Django key


@pytest.fixture(scope="session")
def ansible_bin():
    if os.geteuid() != 0:
        pytest.fail("the Ansible e2e tests run as root (they create the nodes' users)", pytrace=False)
    return ansible_parts.ansible_venv()


@dataclass
class Node:
    name: str
    user: str
    omerodir: Path
    port: int
    site: Path  # this node's own nginx server block (never the system's configuration)
    web_server: dict | None = None  # replaces the node's own web server (the front end, or kind none)
    workers: int = 2
    timeout: int = 60

    @property
    def config_xml(self) -> Path:
        return self.omerodir / "etc" / "grid" / "config.xml"

    def login_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/webclient/login/"

    def host_vars(self) -> dict:
        return {"omero_web_omero": {"user": self.user, "venv": str(VENV), "omerodir": str(self.omerodir)},
                "omero_web_application_server": {"port": self.port, "workers": self.workers,
                                                 "timeout": self.timeout},
                "omero_web_web_server": self.web_server or {"kind": "nginx", "server_name": f"{self.name}.example.org",
                                                            "config_path": str(self.site)}}

    def config(self) -> dict[str, str]:
        argv = ["runuser", "-u", self.user, "--", "env", f"OMERODIR={self.omerodir}",
                f"HOME={pwd.getpwnam(self.user).pw_dir}", str(VENV / "bin" / "omero"), "config", "get",
                "--show-password"]
        out = subprocess.run(argv, capture_output=True, text=True, check=True, cwd="/").stdout
        return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)

    def stop(self) -> subprocess.Popen | None:
        """Start `omero web stop` (the caller waits: the three nodes stop at the same time)."""
        if not (self.omerodir / "var" / "django.pid").exists():
            return None
        return subprocess.Popen(["runuser", "-u", self.user, "--", "env", f"OMERODIR={self.omerodir}",
                                 f"HOME={pwd.getpwnam(self.user).pw_dir}", str(VENV / "bin" / "omero"), "web", "stop"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd="/")


@pytest.fixture
def nodes(node_users, tmp_path):
    made = []
    run = uuid.uuid4().hex[:8]
    for i, user in enumerate(node_users, 1):
        omerodir = E2E_ROOT / "dirs" / f"{run}-node{i}"
        omerodir.mkdir(parents=True)
        pw = pwd.getpwnam(user)
        os.chown(omerodir, pw.pw_uid, pw.pw_gid)
        made.append(Node(f"node{i}", user, omerodir, parts.free_port(), tmp_path / f"node{i}" / "omero-web.conf"))
    yield made
    stopping = [p for p in (n.stop() for n in made) if p is not None]
    for p in stopping:
        p.wait(120)
    for n in made:
        shutil.rmtree(n.omerodir, ignore_errors=True)


@dataclass
class Play:
    """An inventory of the nodes (local connection) and the collection's playbooks, run by ansible-core."""

    bin: Path
    workdir: Path
    collections: Path
    nodes: list[Node]
    runs: int = 0  # each run's output is kept in the workdir as play-N.log

    def write(self, group_vars: dict) -> None:
        inv = {"omero_web": {"hosts": {n.name: {"ansible_connection": "local",
                                                 "ansible_python_interpreter": "{{ ansible_playbook_python }}",
                                                 **n.host_vars()} for n in self.nodes}}}
        (self.workdir / "inventory.yml").write_text(yaml.safe_dump(inv, sort_keys=False))
        gv = self.workdir / "group_vars"
        gv.mkdir(exist_ok=True)
        (gv / "omero_web.yml").write_text(yaml.safe_dump(group_vars, sort_keys=False))

    def run(self, playbook: str = "omerowizard.omero_web.site", *args: str, timeout: float = 400,
            cwd: Path | None = None, inventory: bool = True) -> "Result":
        argv = [str(self.bin / "ansible-playbook"), *(["-i", str(self.workdir / "inventory.yml")] if inventory else []),
                playbook, *args]
        env = ansible_parts.ansible_env(self.workdir, self.collections)
        if cwd is not None:  # a directory with its own ansible.cfg: its inventory and collections path count
            env.pop("ANSIBLE_COLLECTIONS_PATH")
        t0 = time.monotonic()
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=timeout, cwd=str(cwd or self.workdir),
                              env=env)
        self.runs += 1
        (self.workdir / f"play-{self.runs}.log").write_text(f"$ {' '.join(argv)}\n{proc.stdout}{proc.stderr}")
        return Result(proc.returncode, proc.stdout + proc.stderr, time.monotonic() - t0)


@dataclass
class Result:
    rc: int
    output: str
    seconds: float

    def recap(self) -> dict[str, dict[str, int]]:
        """PLAY RECAP: host -> {ok, changed, failed, ...}."""
        out = {}
        for m in re.finditer(r"^(\S+)\s+:\s+((?:\w+=\d+\s*)+)$", self.output, re.M):
            out[m.group(1)] = {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", m.group(2))}
        return out

    def changed(self) -> int:
        return sum(h["changed"] for h in self.recap().values())


@pytest.fixture
def play(ansible_bin, nodes, tmp_path, redis_server):
    parts.require("nginx")
    collections = ansible_parts.install_collection(ansible_bin, tmp_path)
    return Play(ansible_bin, tmp_path, collections, nodes)


def group_vars(redis_url: str, **extra) -> dict:
    gv = {"omerowizard_python": sys.executable,  # this checkout's omerowizard (PYTHONPATH), on each host
          "omero_web_sessions": {"backend": "redis", "location": redis_url},
          "omero_web_servers": [{"host": "omero.example.org", "port": 4064, "name": "Main"}]}
    gv.update(extra)
    return gv


def test_a_play_over_three_hosts_configures_checks_diffs_applies_and_reruns_unchanged(play, nodes, redis_server):
    # 1. the first run configures all three
    play.write(group_vars(redis_server.url))
    first = play.run()
    assert first.rc == 0, first.output[-6000:]
    assert first.recap().keys() == {"node1", "node2", "node3"}, first.output[-3000:]
    assert first.changed() == 3, first.output[-6000:]
    for n in nodes:
        assert parts.http_get(n.login_url()).status == 200
        cfg = n.config()
        assert cfg["omero.web.application_server.port"] == str(n.port)
        assert "redis" in cfg["omero.web.caches"]
        assert oct(n.omerodir.stat().st_uid) == oct(pwd.getpwnam(n.user).pw_uid)
    assert "OMERO.web answers at" in first.output or "Done." in first.output

    # 2. a change in group vars: --check --diff shows it (secrets masked) and changes nothing
    before = {n.name: n.config_xml.read_bytes() for n in nodes}
    play.write(group_vars(redis_server.url,
                          omero_web_public={"enabled": True, "user": "public", "password": SECRET},
                          omero_web_extra_config={"omero.web.login_logo": "/static/logo.png"}))
    check = play.run("omerowizard.omero_web.site", "--check", "--diff")
    assert check.rc == 0, check.output[-6000:]
    assert check.changed() == 3, check.output[-6000:]
    assert "+omero.web.login_logo=/static/logo.png" in check.output, check.output[-6000:]
    assert "+omero.web.public.password=****" in check.output, check.output[-6000:]
    assert "+omero.web.public.enabled=true" in check.output
    assert "reload OMERO.web gracefully" in check.output
    assert SECRET not in check.output
    assert {n.name: n.config_xml.read_bytes() for n in nodes} == before, "check mode changed config.xml"

    # 3. the real run applies it: a graceful reload on each node
    applied = play.run("omerowizard.omero_web.site", "-v")
    assert applied.rc == 0, applied.output[-6000:]
    assert applied.changed() == 3, applied.output[-6000:]
    assert SECRET not in applied.output
    for n in nodes:
        cfg = n.config()
        assert cfg["omero.web.login_logo"] == "/static/logo.png"
        assert cfg["omero.web.public.password"] == SECRET
        assert parts.http_get(n.login_url()).status == 200
    assert applied.output.count("reload OMERO.web") >= 3, applied.output[-6000:]
    assert re.search(r'"backup": "\d{8}-\d{6}-\d+"', applied.output), applied.output[-4000:]

    # 4. a rerun changes nothing
    again = play.run()
    assert again.rc == 0, again.output[-6000:]
    assert again.changed() == 0, again.output[-6000:]
    assert "Nothing to change" in again.output

    # 5. `omerowizard playbook` writes a skeleton that reproduces node1: run as it is, it changes nothing
    skel = play.workdir / "skeleton"
    env = {**os.environ, "PYTHONPATH": str(ansible_parts.ROOT)}
    proc = subprocess.run([sys.executable, "-m", "omerowizard", "playbook", "--omerodir", str(nodes[0].omerodir),
                           "--output", str(skel), "--host", "node1"], capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "ansible-vault encrypt" in proc.stdout
    main = (skel / "group_vars" / "omero_web" / "main.yml").read_text()
    assert SECRET not in main and "{{ vault_omero_web_public_password }}" in main
    vault = skel / "group_vars" / "omero_web" / "vault.yml"
    assert vault.stat().st_mode & 0o777 == 0o600 and SECRET in vault.read_text()
    same = play.run("site.yml", "-e", f"omerowizard_python={sys.executable}", cwd=skel, inventory=False)
    assert same.rc == 0, same.output[-6000:]
    assert same.recap().keys() == {"node1"} and same.changed() == 0, same.output[-6000:]


def test_a_bad_answer_fails_the_task_with_the_wizards_message_and_changes_nothing(play, nodes, redis_server):
    play.write(group_vars(redis_server.url, omero_web_prefix="omero"))
    bad = play.run()
    assert bad.rc != 0
    assert bad.recap()["node1"]["failed"] == 1, bad.output[-4000:]
    assert "prefix: 'omero' must be '/' or a path such as /omero" in bad.output, bad.output[-4000:]
    assert "the task's options: prefix: 'omero'" in bad.output, bad.output[-4000:]
    assert "deploy-options.yml" not in bad.output
    assert "Traceback" not in bad.output
    for n in nodes:
        assert not n.config_xml.exists(), "a refused answer changed nothing"

    # a misspelt variable is refused before anything runs, not ignored
    play.write(group_vars(redis_server.url, omero_web_sesions={"cookie_age": 3600}))
    typo = play.run()
    assert typo.rc != 0 and typo.changed() == 0, typo.output[-4000:]
    assert "omero_web_sesions: not a variable this playbook reads" in typo.output, typo.output[-4000:]
    assert not any(n.config_xml.exists() for n in nodes)

    # check mode fails the task when preflight would refuse the apply (node1's port is taken)
    play.write(group_vars(redis_server.url))
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", nodes[0].port))
        taken.listen()
        check = play.run("omerowizard.omero_web.site", "--check", "--limit", "node1")
    assert check.rc != 0 and check.recap()["node1"]["failed"] == 1, check.output[-4000:]
    assert "preflight would fail" in check.output and str(nodes[0].port) in check.output, check.output[-4000:]
    assert not nodes[0].config_xml.exists()


def _front_end_nodes(nodes: list[Node], port: int, site: Path) -> None:
    """node1 is also the front end: its nginx server block balances over the three application servers;
    node2 and node3 run OMERO.web only (web_server.kind none)."""
    nodes[0].web_server = {"kind": "nginx", "server_name": "omero.example.org", "port": port,
                           "config_path": str(site)}
    for n in nodes[1:]:
        n.web_server = {"kind": "none"}


def test_a_rolling_reconfigure_through_one_front_end_fails_no_request(play, nodes, redis_server, tmp_path):
    from bench.load import Load
    from tests.e2e.test_reload import Nginx

    fe_port = parts.free_port()
    site = tmp_path / "front-end" / "omero-web.conf"
    _front_end_nodes(nodes, fe_port, site)
    shared = {"omero_web_nodes": {"members": [{"host": "127.0.0.1", "port": n.port} for n in nodes],
                                  "secret_key": SECRET_KEY}}
    play.write(group_vars(redis_server.url, **shared))
    first = play.run()
    assert first.rc == 0 and first.changed() == 3, first.output[-6000:]
    text = site.read_text()
    for n in nodes:
        assert f"server 127.0.0.1:{n.port} " in text, text

    url = f"http://127.0.0.1:{fe_port}/webclient/login/"
    measured = {}
    with Nginx(site, tmp_path).serving(fe_port):  # a private nginx on a free port, never the system's
        assert parts.http_get(url).status == 200
        changes = {
            # a Django setting: each node is reloaded gracefully
            "reload": lambda: play.write(group_vars(redis_server.url, omero_web_sessions={
                "backend": "redis", "location": redis_server.url, "cookie_age": 3600}, **shared)),
            # a gunicorn setting: each node restarts (several nodes share the upstream: no switch); nginx sends its
            # requests to the others meanwhile
            "restart": lambda: (setattr(nodes[0], "timeout", 90), setattr(nodes[1], "timeout", 90),
                                setattr(nodes[2], "timeout", 90),
                                play.write(group_vars(redis_server.url, omero_web_sessions={
                                    "backend": "redis", "location": redis_server.url, "cookie_age": 3600},
                                    **shared))),
        }
        for kind, change in changes.items():
            change()
            with Load(url, interval=0.05) as load:
                load.wait_for(10)
                t0 = time.monotonic()
                rolled = play.run("omerowizard.omero_web.rolling", "-v")
                took = time.monotonic() - t0
                load.wait_for(10)
            summary = load.summary()
            measured[kind] = (summary, took)
            (tmp_path / f"rolling-{kind}.txt").write_text(f"{summary}; the play took {took:.1f} s\n")
            print(f"rolling {kind}: {summary}; the play took {took:.1f} s")
            assert rolled.rc == 0, rolled.output[-6000:]
            assert rolled.changed() == 3, rolled.output[-6000:]
            assert SECRET_KEY not in rolled.output, "the shared Django key is masked (-v shows the task's options)"
            # serial: 1: one batch per node, each node's task run on its own
            assert rolled.output.count("TASK [Reconfigure this node with omerowizard]") == 3, rolled.output[-6000:]
            step = "reload OMERO.web" if kind == "reload" else "omero web restart"
            assert rolled.output.count(f'"step": "{step}"') == 3, rolled.output[-6000:]
            assert summary.made >= 40, summary
            assert summary.failed == 0, f"{kind}: {summary}: " + "; ".join(
                f"{r.sent:.2f}s {r.status} {r.error}" for r in load.requests if not r.ok)
        for n in nodes:
            cfg = n.config()
            assert cfg["omero.web.session_cookie_age"] == "3600" and cfg["omero.web.wsgi_timeout"] == "90"
            assert cfg["omero.web.secret_key"] == SECRET_KEY

        # the contrast: the same kind of change on every node at once (site, no serial) leaves moments with
        # no node up, and the front end answers with the maintenance page then
        for n in nodes:
            n.timeout = 120
        play.write(group_vars(redis_server.url, omero_web_sessions={
            "backend": "redis", "location": redis_server.url, "cookie_age": 3600}, **shared))
        with Load(url, interval=0.05) as load:
            load.wait_for(10)
            at_once = play.run()
            load.wait_for(10, until=lambda r: r.ok)
        summary = load.summary()
        (tmp_path / "all-at-once-restart.txt").write_text(f"{summary}\n")
        print(f"all at once, restart: {summary}")
        assert at_once.rc == 0 and at_once.changed() == 3, at_once.output[-6000:]
        assert summary.failed > 0 and summary.failed == summary.maintenance, summary
