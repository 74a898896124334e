"""The front door: OMERO.web as browsers reach it, through the web server.

After apply, the public URL is requested from the web server itself (127.0.0.1 on the web-server
port, with the ``Host`` header and, over HTTPS, the SNI name of ``server_name``; a self-signed
certificate is not verified): the login page and a static file must answer 200. When that cannot
be done (a file staged or outside the server's configuration, a server that does not run,
``start: false``), ``door`` says why, and the final message says what was and was not checked.

Planning side: starting a system web server that does not run is a change of the plan
(``ServerChange``), shown in the review like every other change.
"""

from __future__ import annotations

import http.client
import os
import socket
import ssl
import time
from dataclasses import dataclass
from pathlib import Path

from omerowizard.system import platforms, webservers as servercheck
from omerowizard.plan.plan import Plan, ServerChange

STEP = "check through the web server"
# collected by `omero web start` (collectstatic) from omero-web's webgateway app, in every 5.x release
STATIC_FILE = "webgateway/css/ome.body.css"
SERVER_NAMES = {"nginx": "nginx", "apache": "Apache httpd", "nginx-development": "the standalone nginx"}


@dataclass(frozen=True)
class Door:
    via: str  # nginx | Apache httpd | the standalone nginx
    scheme: str  # http | https
    port: int
    server_name: str
    login_path: str
    static_path: str

    @property
    def public_url(self) -> str:
        default = 443 if self.scheme == "https" else 80
        port = "" if self.port == default else f":{self.port}"
        return f"{self.scheme}://{self.server_name}{port}{self.login_path.rsplit('webclient/login/', 1)[0]}"

    def url(self, path: str) -> str:
        default = 443 if self.scheme == "https" else 80
        port = "" if self.port == default else f":{self.port}"
        return f"{self.scheme}://{self.server_name}{port}{path}"


def server_running(kind: str) -> bool:
    return servercheck.running(platforms.server_layout(kind).pidfiles)


def _door_of(plan: Plan, via: str, port: int) -> Door:
    a = plan.answers
    ws = a.web_server
    scheme, port = ("https", ws.https.port) if ws.https else ("http", port)
    prefix = "/" if a.prefix == "/" else a.prefix + "/"
    return Door(via, scheme, port, ws.server_name, f"{prefix}webclient/login/", f"{a.effective_static_url}{STATIC_FILE}")


def door(plan: Plan) -> tuple[Door | None, str]:
    """The front door to check after applying this plan, or None and why it cannot be checked."""
    a, state = plan.answers, plan.state
    ws = a.web_server
    if a.platform != "unix" or ws.kind == "iis":
        return None, "the IIS files are for a Windows host: request the site there once they are installed"
    if ws.kind == "development":
        return None, "Django's development server has no web server in front of it"
    if ws.kind == "none":
        return None, "no web server on this host (web_server.kind none): request the site through its front end"
    if not platforms.native(a):
        return None, "the files are for another host"
    if not (state.running or plan.web):
        return None, "OMERO.web is not running (start: false), so nothing was requested"
    place = platforms.web_server_file(a, None, state.omero_web_version)
    assert place is not None
    via = SERVER_NAMES[ws.kind]
    main = next((f for f in plan.files if f.path == place.path), None)
    if main is not None and main.staged:
        return None, f"{place.path} is staged for an administrator to install; {via} does not serve it yet"
    if ws.kind == "nginx-development":
        site_run = str(Path(a.omero.omerodir, "var", "nginx", "nginx.pid"))
        if not servercheck.running((site_run,)):
            return None, (f"the standalone nginx is not running: start it as {a.omero.user} with "
                          f"`nginx -c {place.path}`, then request {_door_of(plan, via, ws.port).public_url}")
        return _door_of(plan, via, ws.port), ""
    if not place.system:
        return None, (f"{place.path} is outside {via}'s configuration: include it and reload {via}, then request "
                      f"{_door_of(plan, via, ws.port).public_url}")
    if not (plan.server or server_running(ws.kind)):
        why = " (start: false)" if not a.start else ""
        return None, f"{via} is not running{why}: start it, then request {_door_of(plan, via, ws.port).public_url}"
    return _door_of(plan, via, ws.port), ""


def reachable(plan: Plan) -> bool:
    """Whether apply will request the front door (the review shows it as a step)."""
    return not plan.empty and door(plan)[0] is not None


def plan_server(plan: Plan) -> None:
    """A system nginx or Apache that does not run must be started to serve the site: a change of the plan."""
    a = plan.answers
    kind = a.web_server.kind
    if a.platform != "unix" or kind not in {"nginx", "apache"} or not platforms.native(a):
        return
    place = platforms.web_server_file(a)
    if place is None or not place.system or server_running(kind):
        return
    via = SERVER_NAMES[kind]
    if not a.start:
        plan.notes.append(f"{via} is not running and start is false: the site is not served until {via} starts.")
        return
    if os.geteuid() != 0:
        plan.notes.append(f"{via} is not running: start it as root to serve the site.")
        return
    argv = start_argv(kind)
    if argv is None:
        return  # not installed: preflight says so
    plan.server = ServerChange(kind, tuple(argv), f"{via} is not running; it serves {place.path}")


def start_argv(kind: str) -> list[str] | None:
    layout = platforms.server_layout(kind)
    systemctl = servercheck.which("systemctl")
    if systemctl and Path("/run/systemd/system").exists():
        return [systemctl, "start", layout.binary]
    if kind == "nginx":
        nginx = servercheck.which("nginx")
        return [nginx] if nginx else None
    ctl = servercheck.which(layout.ctl)
    return [ctl, "start"] if ctl else None


def stop_argv(kind: str) -> list[str]:
    layout = platforms.server_layout(kind)
    systemctl = servercheck.which("systemctl")
    if systemctl and Path("/run/systemd/system").exists():
        return [systemctl, "stop", layout.binary]
    if kind == "nginx":
        return [servercheck.which("nginx") or "nginx", "-s", "stop"]
    return [servercheck.which(layout.ctl) or layout.ctl, "stop"]


# ---------------------------------------------------------------------------- requesting it
class _Connection(http.client.HTTPConnection):
    """Connects to 127.0.0.1 whatever the host name: the Host header stays ``server_name``."""

    def connect(self) -> None:
        self.sock = socket.create_connection(("127.0.0.1", self.port), self.timeout)


class _TLSConnection(http.client.HTTPSConnection):
    """Connects to 127.0.0.1, with ``server_name`` as the SNI name and Host header."""

    def connect(self) -> None:
        raw = socket.create_connection(("127.0.0.1", self.port), self.timeout)
        self.sock = self._context.wrap_socket(raw, server_hostname=self.host)  # type: ignore[attr-defined]


def request(d: Door, path: str, timeout: float = 10) -> tuple[int | None, str]:
    """(status, what came back) of GET ``path`` through the front door; status None when nothing answered."""
    if d.scheme == "https":
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE  # the certificate may be self-signed; the server is ours, on loopback
        conn: http.client.HTTPConnection = _TLSConnection(d.server_name, d.port, timeout=timeout, context=ctx)
    else:
        conn = _Connection(d.server_name, d.port, timeout=timeout)
    try:
        conn.request("GET", path, headers={"User-Agent": "omerowizard"})
        r = conn.getresponse()
        r.read(65536)
        where = r.getheader("Location")
        return r.status, f"{r.status} {r.reason}" + (f" (Location: {where})" if where else "")
    except (OSError, http.client.HTTPException) as exc:
        return None, f"no answer ({exc})"
    finally:
        conn.close()


def check(d: Door, timeout: float = 30) -> tuple[bool, list[str]]:
    """Request the login page and a static file through the door, until both answer 200 or time runs out
    (a reloaded server's old workers may answer for a moment). Returns (ok, one line per request)."""
    deadline = time.monotonic() + timeout
    while True:
        lines, ok = [], True
        for what, path in (("the login page", d.login_path), ("a static file", d.static_path)):
            status, detail = request(d, path)
            lines.append(f"{what} {d.url(path)} through {d.via} (127.0.0.1:{d.port}, Host {d.server_name}): "
                         f"{detail}")
            ok = ok and status == 200
        if ok or time.monotonic() > deadline:
            return ok, lines
        time.sleep(0.5)
