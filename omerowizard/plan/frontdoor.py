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

from omerowizard.features import web_server
from omerowizard.model.host import Host
from omerowizard.plan.changes.server import ServerChange
from omerowizard.plan.plan import Door, Plan
from omerowizard.system import platforms

# collected by `omero web start` (collectstatic) from omero-web's webgateway app, in every 5.x release
STATIC_FILE = "webgateway/css/ome.body.css"
SERVER_NAMES = {"nginx": "nginx", "apache": "Apache httpd", "nginx-development": "the standalone nginx"}


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
    if not web_server.native(a):
        return None, "the files are for another host"
    if not (state.running or plan.web):
        return None, "OMERO.web is not running (start: false), so nothing was requested"
    host = state.host
    place = web_server.web_server_file(a, host.distribution, state.omero_web_version)
    assert place is not None
    via = SERVER_NAMES[ws.kind]
    main = next((f for f in plan.files if f.path == place.path), None)
    if main is not None and main.staged:
        return None, f"{place.path} is staged for an administrator to install; {via} does not serve it yet"
    if ws.kind == "nginx-development":
        if not host.development_nginx_running:
            return None, (f"the standalone nginx is not running: start it as {a.omero.user} with "
                          f"`nginx -c {place.path}`, then request {_door_of(plan, via, ws.port).public_url}")
        return _door_of(plan, via, ws.port), ""
    if not place.system:
        if state.front is not None and state.front.site == place.path:  # a private server that includes it
            return _door_of(plan, state.front.via, ws.port), ""
        return None, (f"{place.path} is outside {via}'s configuration: include it and reload {via}, then request "
                      f"{_door_of(plan, via, ws.port).public_url}")
    if not (plan.server or ws.kind in host.servers_running):
        why = " (start: false)" if not a.start else ""
        return None, f"{via} is not running{why}: start it, then request {_door_of(plan, via, ws.port).public_url}"
    return _door_of(plan, via, ws.port), ""


def plan_server(plan: Plan) -> None:
    """A system nginx or Apache that does not run must be started to serve the site: a change of the plan."""
    a, host = plan.answers, plan.state.host
    kind = a.web_server.kind
    if a.platform != "unix" or kind not in {"nginx", "apache"} or not web_server.native(a):
        return
    place = web_server.web_server_file(a, host.distribution)
    if place is None or not place.system or kind in host.servers_running:
        return
    via = SERVER_NAMES[kind]
    if not a.start:
        plan.notes.append(f"{via} is not running and start is false: the site is not served until {via} starts.")
        return
    if not host.root:
        plan.notes.append(f"{via} is not running: start it as root to serve the site.")
        return
    argv = start_argv(kind, host)
    if argv is None:
        return  # not installed: preflight says so
    plan.add(ServerChange(kind, tuple(argv), f"{via} is not running; it serves {place.path}"))


def start_argv(kind: str, host: Host) -> list[str] | None:
    layout = platforms.server_layout(kind, host.distribution)
    systemctl = host.which("systemctl")
    if systemctl and host.systemd:
        return [systemctl, "start", layout.binary]
    if kind == "nginx":
        nginx = host.which("nginx")
        return [nginx] if nginx else None
    ctl = host.which(layout.ctl)
    return [ctl, "start"] if ctl else None
