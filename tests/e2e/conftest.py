"""Fixtures for the e2e tier: the real OMERO.web (installed by omerowizard's own installer,
once per machine), real Redis and Memcached, and a fresh OMERODIR per test so tests never
see each other's config or ports."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from tests import parts

E2E_ROOT = Path(os.environ.get("OMEROWIZARD_E2E_ROOT", "/opt/omerowizard-e2e"))
USER = "omero-web"
VENV = E2E_ROOT / "venv3"
APPS_VENV = E2E_ROOT / "venv-apps"  # the web apps are installed here, never into the shared venv3
WHEEL_CACHE = os.environ.get("OMEROWIZARD_WHEEL_CACHE", "/var/cache/omerowizard/wheels")


def pytest_collection_modifyitems(items):
    for item in items:
        if "tests/e2e/" in str(item.fspath):
            item.add_marker(pytest.mark.e2e)


@pytest.fixture(scope="session")
def omero_install():
    """OMERO.web in a virtual environment owned by root, run as omero-web (installed once)."""
    if os.geteuid() != 0:
        pytest.fail("the e2e tier runs as root (it creates the omero-web user and runs omero as that user)",
                    pytrace=False)
    parts.require("runuser")
    env = {**os.environ, "OMEROWIZARD_WHEEL_CACHE": WHEEL_CACHE}
    proc = subprocess.run([sys.executable, "-m", "omerowizard", "install-omero", "--user", USER, "--venv", str(VENV),
                           "--omerodir", str(E2E_ROOT / "OMERO.web"), "--with", "redis,cors,memcached"],
                          env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.fail(f"missing part: OMERO.web could not be installed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}",
                    pytrace=False)
    return VENV


@pytest.fixture(scope="session")
def apps_venv(omero_install) -> Path:
    """An OMERO.web environment for the web apps (newest omero-web, owned like venv3; zeroc-ice from the
    cached wheel), so that installing and removing apps never changes the shared venv3."""
    proc = subprocess.run([sys.executable, "-m", "omerowizard", "install-omero", "--user", USER,
                           "--venv", str(APPS_VENV), "--omerodir", str(E2E_ROOT / "OMERO.web-apps")],
                          env={**os.environ, "OMEROWIZARD_WHEEL_CACHE": WHEEL_CACHE},
                          capture_output=True, text=True, timeout=1800)
    if proc.returncode != 0:
        pytest.fail(f"missing part: OMERO.web could not be installed in {APPS_VENV}:\n{proc.stdout[-3000:]}\n"
                    f"{proc.stderr[-3000:]}", pytrace=False)
    return APPS_VENV


NODE_USERS = ("omerowiz-node1", "omerowiz-node2", "omerowiz-node3")  # the nodes of test_nodes and test_ansible


@pytest.fixture(scope="session")
def node_users(omero_install):
    """One non-root user per node, created as the installer creates omero-web (kept for later runs)."""
    parts.require("runuser")
    for user in NODE_USERS:
        try:
            pwd.getpwnam(user)
        except KeyError:
            proc = subprocess.run(["useradd", "--system", "--create-home", "--shell", "/bin/bash", user],
                                  capture_output=True, text=True)
            try:  # another test run (the users are shared by several test files) may have created it meanwhile
                pwd.getpwnam(user)
            except KeyError:
                pytest.fail(f"missing part: the user {user} could not be created: {proc.stderr}", pytrace=False)
    return NODE_USERS


@dataclass
class Deployment:
    """One OMERO.web deployment: its own OMERODIR, application port and omerowizard home."""

    omerodir: Path
    app_port: int
    home: Path
    workdir: Path

    @property
    def state(self):
        """omerowizard's own state of this deployment (answers, command log, backups), below ``home``."""
        from omerowizard.system.deployments import Deployment as State

        assert os.environ.get("OMEROWIZARD_HOME") == str(self.home), "the test's OMEROWIZARD_HOME is this home"
        return State(self.omerodir)

    @property
    def config_xml(self) -> Path:
        return self.omerodir / "etc" / "grid" / "config.xml"

    def env(self, **extra: str) -> dict[str, str]:
        return {**os.environ, "OMEROWIZARD_HOME": str(self.home), "OMEROWIZARD_WHEEL_CACHE": WHEEL_CACHE, **extra}

    def base_answers(self) -> dict:
        return {"omero": {"user": USER, "venv": str(VENV), "omerodir": str(self.omerodir)},
                "application_server": {"port": self.app_port},
                "web_server": {"kind": "nginx", "server_name": "omero.example.org",
                               # never the system's sites-available: each test has its own server block
                               "config_path": str(self.workdir / "nginx" / "omero-web.conf")}}

    def answers_file(self, answers: dict | None = None, name: str = "answers.yml", merge: bool = True) -> Path:
        data = _merge(self.base_answers(), answers or {}) if merge else (answers or {})
        path = self.workdir / name
        path.write_text(yaml.safe_dump(data, sort_keys=False))
        return path

    def cli(self, *args: str, timeout: float = 300, input: str | None = None) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "omerowizard", *args], env=self.env(), capture_output=True,
                              text=True, timeout=timeout, input=input, cwd=str(self.workdir))

    def omero(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        argv = ["runuser", "-u", USER, "--", "env", f"OMERODIR={self.omerodir}", f"HOME={pwd.getpwnam(USER).pw_dir}",
                str(VENV / "bin" / "omero"), *args]
        return subprocess.run(argv, capture_output=True, text=True, check=check, cwd="/")

    def config(self) -> dict[str, str]:
        out = self.omero("config", "get", "--show-password").stdout
        return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)

    def login_url(self, prefix: str = "") -> str:
        return f"http://127.0.0.1:{self.app_port}{prefix}/webclient/login/"

    def stop(self) -> None:
        if (self.omerodir / "var" / "django.pid").exists():
            self.omero("web", "stop", check=False)
        # a development server runs in the foreground: end what apply started (its pid file), then
        # anything still serving this deployment's port
        from omerowizard.plan.changes.web import stop_development
        from omerowizard.system.omero import OmeroTarget
        stop_development(OmeroTarget(USER, VENV, self.omerodir))
        subprocess.run(["pkill", "-f", f"OMERODIR={self.omerodir}"], check=False)
        subprocess.run(["pkill", "-f", f"runserver 127.0.0.1:{self.app_port} "], check=False)
        # the clearsessions line of this OMERODIR, if a test installed one
        from omerowizard.system import crontab as cron
        cron.set_job(USER, str(self.omerodir), None)


def _merge(base: dict, extra: dict) -> dict:
    out = dict(base)
    for k, v in extra.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


@pytest.fixture
def deployment(omero_install, tmp_path):
    name = uuid.uuid4().hex[:10]
    omerodir = E2E_ROOT / "dirs" / name
    omerodir.mkdir(parents=True)
    pw = pwd.getpwnam(USER)
    os.chown(omerodir, pw.pw_uid, pw.pw_gid)
    d = Deployment(omerodir=omerodir, app_port=parts.free_port(), home=tmp_path / "home", workdir=tmp_path)
    yield d
    d.stop()
    shutil.rmtree(omerodir, ignore_errors=True)


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory):
    server = parts.Redis(tmp_path_factory.mktemp("redis")).start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def memcached_server():
    server = parts.Memcached().start()
    yield server
    server.stop()
