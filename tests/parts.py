"""Real parts for the e2e tier: installed from Debian's packages when missing, started on
free loopback ports, stopped afterwards. A part that cannot be had is a failure that names
it, never a skip.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import socket
import subprocess
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.wait import until

# Debian package that provides each command the e2e tier needs.
APT = {
    "nginx": "nginx",
    "apache2": "apache2",
    "apache2ctl": "apache2",
    "redis-server": "redis-server",
    "redis-cli": "redis-tools",
    "memcached": "memcached",
    "crontab": "cron",
    "tmux": "tmux",
    "runuser": "util-linux",
    "openssl": "openssl",
    "chromium": "chromium",
    "strace": "strace",
    "mmdebstrap": "mmdebstrap",
    "unshare": "util-linux",
}
SBIN = ["/usr/sbin", "/sbin"]
_apt_updated = False


def which(cmd: str) -> str | None:
    return shutil.which(cmd) or next((f"{d}/{cmd}" for d in SBIN if os.access(f"{d}/{cmd}", os.X_OK)), None)


def require(cmd: str) -> str:
    """Path of ``cmd``; installs its Debian package when missing (as root); fails loudly otherwise."""
    global _apt_updated
    found = which(cmd)
    if found:
        return found
    pkg = APT.get(cmd)
    if pkg is None or os.geteuid() != 0 or not shutil.which("apt-get"):
        pytest.fail(f"missing part: {cmd!r} is not installed and cannot be installed here "
                    f"(apt-get install {pkg or cmd} as root)", pytrace=False)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    if not _apt_updated:
        subprocess.run(["apt-get", "update", "-qq"], env=env, check=False)
        _apt_updated = True
    proc = subprocess.run(["apt-get", "install", "-y", "-qq", pkg], env=env, capture_output=True, text=True)
    found = which(cmd)
    if not found:
        pytest.fail(f"missing part: {cmd!r}: `apt-get install {pkg}` failed:\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}",
                    pytrace=False)
    return found


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def listens(port: int, host: str = "127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def wait_port(port: int, host: str = "127.0.0.1", timeout: float = 15) -> None:
    until(lambda: listens(port, host), timeout, f"a server listening on {host}:{port}")


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: str


def http_get(url: str, headers: dict[str, str] | None = None, timeout: float = 10) -> Response:
    req = urllib.request.Request(url, headers=headers or {})
    opener = urllib.request.build_opener(NoRedirect)
    try:
        with opener.open(req, timeout=timeout) as r:
            return Response(r.status, {k.lower(): v for k, v in r.headers.items()}, r.read().decode("utf-8", "replace"))
    except urllib.error.HTTPError as e:
        return Response(e.code, {k.lower(): v for k, v in e.headers.items()}, e.read().decode("utf-8", "replace"))


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):  # noqa: D401 - we want to see redirects
        return None


class Redis:
    def __init__(self, workdir: Path, password: str | None = None):
        self.port = free_port()
        self.workdir = workdir
        self.password = password

    def start(self) -> "Redis":
        exe = require("redis-server")
        self.workdir.mkdir(parents=True, exist_ok=True)
        argv = [exe, "--port", str(self.port), "--bind", "127.0.0.1", "--daemonize", "yes", "--save", "",
                "--dir", str(self.workdir), "--pidfile", str(self.workdir / "redis.pid")]
        if self.password:
            argv += ["--requirepass", self.password]
        subprocess.run(argv, check=True, capture_output=True)
        wait_port(self.port)
        return self

    @property
    def url(self) -> str:
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    def stop(self) -> None:
        pid = self.workdir / "redis.pid"
        if pid.exists():
            subprocess.run(["kill", pid.read_text().strip()], check=False)


class Memcached:
    def __init__(self):
        self.port = free_port()
        self.proc: subprocess.Popen | None = None

    def start(self) -> "Memcached":
        exe = require("memcached")
        self.proc = subprocess.Popen([exe, "-u", "nobody", "-l", "127.0.0.1", "-p", str(self.port), "-U", "0"])
        wait_port(self.port)
        return self

    @property
    def location(self) -> str:
        return f"127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self.proc:
            self.proc.terminate()
            self.proc.wait(10)


def nginx_wrapper(site: Path, d: Path) -> Path:
    """A minimal nginx.conf that includes one rendered server block, for `nginx -t -c` and `nginx -c`."""
    conf = d / "nginx-wrapper.conf"
    conf.write_text(f"user www-data;\npid {d}/nginx.pid;\nerror_log {d}/nginx-error.log;\n"
                    f"events {{ worker_connections 64; }}\n"
                    f"http {{\n include /etc/nginx/mime.types;\n access_log {d}/nginx-access.log;\n include {site};\n}}\n")
    return conf


SYSTEM_WEB_LOCK = "/run/lock/omerowizard-tests-system-web.lock"


@contextlib.contextmanager
def system_web_servers():
    """Held while a test changes the system nginx or Apache (/etc/nginx, /etc/apache2, port 80): test runs in
    other checkouts on the same machine wait for it instead of changing the same files at the same time."""
    Path(SYSTEM_WEB_LOCK).parent.mkdir(parents=True, exist_ok=True)
    with open(SYSTEM_WEB_LOCK, "a") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


STOCK_SITES = {  # Debian's packages enable one site each: (sites-enabled, the link's name, its target)
    "/etc/nginx": ("default", "/etc/nginx/sites-available/default"),
    "/etc/apache2": ("000-default.conf", "../sites-available/000-default.conf"),
}


def stock_sites() -> None:
    """Debian's stock sites and nothing else: a run killed before its fixture's end (another checkout's, a
    machine reused) may have left a site of its own behind, and these tests begin where a new server would."""
    for etc, (name, target) in STOCK_SITES.items():
        enabled, available = Path(etc, "sites-enabled"), Path(etc, "sites-available")
        for entry in [*enabled.iterdir(), *available.iterdir()]:
            if entry.name not in (name, "default-ssl.conf") and not entry.is_dir():
                entry.unlink()
        link = enabled / name
        if not link.is_symlink() or os.readlink(link) != target:
            link.unlink(missing_ok=True)
            link.symlink_to(target)


SYSTEM_WEB_ETC = ("/etc/nginx", "/etc/apache2")


@contextlib.contextmanager
def stock_system_web(saved: Path):
    """The system nginx and Apache configuration as Debian installs it (its stock sites only) for the time of a
    test, and put back exactly as it was afterwards (``saved``: where the copy is kept); the lock is held."""
    with system_web_servers():
        for d in SYSTEM_WEB_ETC:
            shutil.copytree(d, saved / Path(d).name, symlinks=True)
        stock_sites()
        try:
            yield
        finally:
            for d in SYSTEM_WEB_ETC:
                shutil.rmtree(d)
                shutil.copytree(saved / Path(d).name, d, symlinks=True)
