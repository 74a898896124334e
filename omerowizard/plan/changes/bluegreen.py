"""Blue/green on one host: OMERO.web changes without a moment when the web server has nothing to send requests to.

gunicorn keeps the command line it was started with (its port, timeout, worker class...), so a change of those
needs a new master. ``converge`` brings a deployment to exactly one master that serves as config.xml says now,
without a gap: it starts the new master beside the running one (on the new port, or on a spare loopback port
when the running one holds the port), waits until all its workers have booted and its login page answers,
switches this deployment's upstream in the web server that serves the site (the site file rewritten, the
server's own check, a graceful reload, whose old workers finish their requests first), hands it the pid file
``omero web status/stop`` read, then stops the old master gracefully (its workers finish their requests).
When the running master holds the wanted port, it goes twice: to a spare port, then back to the wanted one, so
the final master is bound where config.xml says.

The same function undoes it: after a failure (or a killed run, or a rollback) the backup has put config.xml and
the site back, and ``converge`` runs again towards them, from whichever master serves at that moment. Every
step leaves the web server routing to a master that answers, so a run killed at any moment leaves one OMERO.web
serving; the next run stops the others. Where omerowizard has no web server of its own to switch (``none``,
files staged for an administrator, Django's development server), the plan restarts instead, and says so.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from omerowizard.features import web_server
from omerowizard.features.web_server import site as site_files
from omerowizard.model.errors import ApplyError
from omerowizard.model.host import Front
from omerowizard.system import gunicorn, hostlock, platforms, safefs
from omerowizard.system import webservers as servers
from omerowizard.system.network import answers_200, port_in_use, request_loopback, spare_port
from omerowizard.system.omero import Omero, web_log_problem

JOURNAL = "switch"  # the backup manifest's extra entry of a run that switches: what its restore converges with
Say = Callable[[str], None]


@dataclass(frozen=True)
class Route:
    """The site whose upstream a switch changes, and the web server that serves it (found again when it has
    been restarted since)."""

    kind: str  # nginx | apache
    site: str
    link: str | None = None
    front: Front | None = None
    upstream: str | None = None  # the application server the site proxies to when planned (host:port)

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "site": self.site, "link": self.link, "upstream": self.upstream,
                "front": asdict(self.front) if self.front else None}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Route":
        front = data.get("front")
        return cls(data["kind"], data["site"], data.get("link"),
                   Front(**{**front, "args": tuple(front.get("args", ()))}) if front else None, data.get("upstream"))

    def server(self) -> Front | None:
        """The web server that serves the site now (found again: it may have been restarted since the plan)."""
        return servers.serving(self.kind, self.site, self.link)


def login_url(host: str, port: int, script_name: str | None) -> str:
    if host in {"0.0.0.0", "::", ""}:
        host = "127.0.0.1"
    prefix = (script_name or "").rstrip("/")
    return f"http://{site_files.host_port(host, port).replace('[::]', '[::1]')}{prefix}/webclient/login/"


def settings_at(settings: dict[str, Any], port: int) -> dict[str, Any]:
    return {**settings, "port": port}


def wanted_identity(omero: Omero, settings: dict[str, Any]) -> tuple:
    t = omero.target
    return gunicorn.same_as(gunicorn.start_argv(settings, t.venv, t.omerodir, settings["port"]),
                            settings.get("script_name"))


# ---------------------------------------------------------------------------- one master
def start_master(omero: Omero, settings: dict[str, Any], say: Say, timeout: float = 180) -> gunicorn.Master:
    """Start a gunicorn master of these settings beside whatever runs (its own pid file, var/django-PORT.pid) and
    wait until each of its workers has booted and its login page answers 200."""
    t = omero.target
    port = settings["port"]
    problem = web_log_problem(t)
    if problem:
        raise ApplyError(problem)
    argv = gunicorn.start_argv(settings, t.venv, t.omerodir, port)
    say(f"starting gunicorn on {settings['host']}:{port} beside the running one: {' '.join(argv[1:])}")
    result = omero.start_gunicorn(argv, settings.get("script_name"), settings["package"], on_line=say)
    if result.returncode != 0:
        raise ApplyError(f"gunicorn did not start (exit {result.returncode}):\n{result.output[-2000:]}")
    name = f"django-{port}.pid"
    deadline = time.monotonic() + timeout
    master: gunicorn.Master | None = None
    while master is None:
        try:
            pid = gunicorn.read_pidfile(t.omerodir, name)
            if gunicorn.pidfile_of(gunicorn._proc(pid, "cmdline"), t.omerodir) == f"{t.omerodir}/var/{name}":
                master = gunicorn.hold(pid, t.omerodir, t.user)
                break
        except (gunicorn.ReloadError, OSError):
            pass
        if time.monotonic() > deadline:
            raise ApplyError(f"the new gunicorn master did not write {t.omerodir}/var/{name} within {timeout:.0f}s "
                             f"(its port {port} may be taken)")
        time.sleep(0.05)
    url = login_url(settings["host"], port, settings.get("script_name"))

    def ready() -> bool:
        now = gunicorn.workers(master.pid)
        return len(now) >= int(settings["workers"]) and all(gunicorn.booted(p) is not False for p in now) \
            and answers_200(url)
    try:
        gunicorn._wait(ready, master, timeout, f"waiting for the workers of the new master {master.pid} to boot",
                       poll=0.1)
    except gunicorn.ReloadError as exc:
        alive = gunicorn.alive(master)
        if alive:
            gunicorn.stop(master, 10)
        master.close()
        raise ApplyError(f"the new OMERO.web on port {port} did not come up: {exc}") from None
    say(f"the new master {master.pid} on port {port}: {len(gunicorn.workers(master.pid))} workers booted, "
        f"{url} answers 200")
    return master


# ---------------------------------------------------------------------------- the web server's upstream
def route_to(omero: Omero, route: Route, host: str, port: int, pid: int, say: Say) -> None:
    """Have the web server send this deployment's requests to the master ``pid`` on ``host:port``: the site's
    upstream rewritten, the server's check, a graceful reload (its old workers finish first); then the pid file
    that ``omero web status/stop`` read names that master."""
    t = omero.target
    upstream = site_files.host_port("127.0.0.1" if host in {"0.0.0.0", "", "::"} else host, port)
    with hostlock.held(f"the switch of {route.site} to {upstream}"):
        text = safefs.read_text(route.site)
        if text is None:
            raise ApplyError(f"{route.site} is gone: cannot switch its upstream")
        new = site_files.with_upstream(text, route.kind, upstream)
        st = safefs.lstat(route.site)
        assert st is not None
        ids = (st.st_uid, st.st_gid)
        if new != text:
            safefs.write_bytes(route.site, new.encode(), st.st_mode & 0o777, ids=ids)
            omero.log.change(f"switched the upstream of {route.site} to {upstream}")
        front = route.server()
        if front is None:
            say(f"no running web server serves {route.site}: its upstream is {upstream}, nothing to reload")
        else:
            checked = servers.check_front(front)
            if not checked.ok:
                if new != text:
                    safefs.write_bytes(route.site, text.encode(), st.st_mode & 0o777, ids=ids)
                raise ApplyError(f"{checked.what} failed, so {route.site} was put back:\n{checked.output}")
            reloaded = servers.reload_front(front)
            omero.log.server(reloaded.what, reloaded.ok, reloaded.output)
            if not reloaded.ok:
                raise ApplyError(f"{reloaded.what} failed:\n{reloaded.output}")
            say(f"{front.via} now sends requests to {upstream} ({reloaded.what}"
                + (f"; {reloaded.output}" if reloaded.output else "; its old workers finished their requests") + ")")
    write_pidfile(omero, pid)


def write_pidfile(omero: Omero, pid: int) -> None:
    """var/django.pid names the master that serves (what `omero web status`, `stop` and systemd's PIDFile read);
    written as the OMERO.web user's file, never through a link planted there."""
    t = omero.target
    safefs.write_bytes(f"{t.omerodir}/var/{gunicorn.PIDFILE}", f"{pid}\n".encode(), 0o644, owner=t.user)


def stop_others(omero: Omero, keep: int, say: Say) -> list[int]:
    """Stop every other master of this deployment gracefully (each finishes its requests)."""
    t = omero.target
    stopped = []
    for m in gunicorn.masters(t.omerodir, t.user):
        if m.pid == keep:
            continue
        try:
            held = gunicorn.hold(m.pid, t.omerodir, t.user)
        except gunicorn.ReloadError:
            continue
        try:
            say(f"stopping the old master {m.pid} ({m.bind}) gracefully: its workers finish their requests")
            gunicorn.stop(held, 90, on_line=say)
            stopped.append(m.pid)
        finally:
            held.close()
    return stopped


# ---------------------------------------------------------------------------- converge
def converge(omero: Omero, route: Route | None, say: Say, running: bool = True,
             after_route: Callable[[], None] | None = None) -> int | None:
    """Exactly one master serving as config.xml says now (``running``; else none), reached without a gap: see the
    module's docstring. Returns its pid. ``after_route``: a check once the web server sends requests to it (the
    front door); it raises to fail the change, before the old master is stopped."""
    t = omero.target
    if not running:
        for m in gunicorn.masters(t.omerodir, t.user):
            held = gunicorn.hold(m.pid, t.omerodir, t.user)
            try:
                gunicorn.stop(held, 90, on_line=say)
            finally:
                held.close()
        return None
    settings = omero.gunicorn_settings()
    port, host = int(settings["port"]), settings["host"]
    want = wanted_identity(omero, settings)
    found = gunicorn.masters(t.omerodir, t.user)
    match = next((m for m in found if m.identity() == want), None)
    if match is not None:
        say(f"the master {match.pid} on port {port} already serves as config.xml says")
        final = gunicorn.hold(match.pid, t.omerodir, t.user)
    else:
        holders = [m for m in found if m.port == port]
        if not holders and port_in_use(host, port):
            raise ApplyError(f"port {port} on {host} is taken by another program: OMERO.web cannot move there")
        if holders:
            aside = spare_port(host, avoid=(port,))
            say(f"port {port} is held by the running master {holders[0].pid}: the new one goes to the spare port "
                f"{aside} first, then back to {port}")
            temp = start_master(omero, settings_at(settings, aside), say)
            try:
                if route is not None:
                    route_to(omero, route, host, aside, temp.pid, say)
                else:
                    write_pidfile(omero, temp.pid)
                stop_others(omero, temp.pid, say)
            finally:
                temp.close()
        final = start_master(omero, settings, say)
    try:
        if route is not None:
            route_to(omero, route, host, port, final.pid, say)
        else:
            write_pidfile(omero, final.pid)
        if after_route is not None:
            after_route()
        stop_others(omero, final.pid, say)
        if len(gunicorn.workers(final.pid)) != int(settings["workers"]):
            gunicorn.scale(final, int(settings["workers"]), on_line=say)
        return final.pid
    finally:
        final.close()


def route_for(a: Any, version: str | None = None) -> Route | None:
    """The route of the site these answers render, when a running web server includes it and it proxies to this
    host's one application server (what a rollback switches); None otherwise."""
    ws = a.web_server
    if a.platform != "unix" or ws.kind not in {"nginx", "apache", "nginx-development"} or a.nodes.members:
        return None
    place = web_server.web_server_file(a, platforms.distribution(), version)
    if place is None:
        return None
    kind = "apache" if ws.kind == "apache" else "nginx"
    try:
        text = safefs.read_text(place.path)
    except (OSError, safefs.UnsafePath):
        return None
    upstream = site_files.upstream_in(text, kind) if text is not None else None
    front = servers.serving(kind, place.path, place.link) if upstream else None
    return Route(kind, place.path, place.link, front, upstream) if front else None


def route_of(backup: Any) -> Route | None:
    """The route a run that switched recorded in its backup (None: it did not switch)."""
    data = (backup.manifest.extra or {}).get(JOURNAL) if backup is not None else None
    return Route.from_dict(data) if data else None


def record(backup: Any, route: Route, venv: str) -> None:
    """Before the first master starts: the backup says this run switches, where, and from which environment, so
    its restore (or the next run's repair, after a kill) converges back instead of restarting."""
    backup.manifest.extra[JOURNAL] = {**route.as_dict(), "venv": venv}
    backup.save()


def venv_of(backup: Any) -> str | None:
    """The environment a run that switched ran from before (its restore converges back to it)."""
    data = (backup.manifest.extra or {}).get(JOURNAL) if backup is not None else None
    return data.get("venv") if data else None



def check_door(door: Any, timeout: float = 30) -> list[str]:
    """Through the web server, as a browser: the login page and a static file answer 200 (retried until
    ``timeout``: a reloaded server's old workers may answer for a moment). Raises ApplyError."""
    deadline = time.monotonic() + timeout
    while True:
        lines, ok = [], True
        for what, path in (("the login page", door.login_path), ("a static file", door.static_path)):
            status, detail = request_loopback(door.scheme, door.server_name, door.port, path)
            lines.append(f"{what} {path} through {door.via}: {detail}")
            ok = ok and status == 200
        if ok:
            return lines
        if time.monotonic() > deadline:
            raise ApplyError("after the switch, OMERO.web does not answer through the web server:\n  "
                             + "\n  ".join(lines))
        time.sleep(0.3)
