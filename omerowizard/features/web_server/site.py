"""The files the answers ask for, rendered (the web server feature's own files): the web-server file, our maintenance page, the
optional systemd unit, and the Windows files (IIS web.config or the ISAPI-WSGI script, and the
Task Scheduler definition). Pure: answers in, files out; nothing is read or written here."""

from __future__ import annotations

import dataclasses
import datetime as _dt
import re
from dataclasses import dataclass
from pathlib import PurePosixPath, PureWindowsPath
from typing import Any

from omerowizard.features import web_server
from omerowizard.features.sessions import task_trigger
from omerowizard.model.host import Host
from omerowizard.model.render import render
from omerowizard.system import platforms

APACHE_MAX_BODY = 2147483647  # LimitRequestBody's largest value
IIS_MAX_BODY = 4294967295  # maxAllowedContentLength is a uint
APACHE_MODULES = ("proxy", "proxy_http", "headers", "alias")
APACHE_BALANCER_MODULES = ("proxy_balancer", "lbmethod_byrequests", "slotmem_shm")
NODE_CONNECT_TIMEOUT = 5  # seconds before a node that does not accept the connection is skipped
# seconds a node that failed is left out before it is tried again: short, because a restarted node must be
# taken back before the next node of a rolling reconfigure goes down (measured: with 10 s, three nodes
# restarted 5 s apart were all left out at once for a second). Trying a node that is still down costs a
# refused connection, which nginx hands to the next node (proxy_next_upstream), not a failed request.
NODE_FAIL_TIMEOUT = 2


@dataclass(frozen=True)
class WantedFile:
    path: str
    content: str
    why: str
    mode: int = 0o644
    link: str | None = None
    encoding: str = "utf-8"
    check: str | None = None  # nginx | apache | nginx-development | systemd
    system: bool = False
    commands: tuple[str, ...] = ()
    owner: str | None = None
    modules: tuple[str, ...] = ()


@dataclass(frozen=True)
class Site:
    """Everything a web-server template needs, already validated and derived."""

    name: str
    path: str
    server_name: str
    port: int
    https: Any  # web_server.https (None: HTTP only): certificate, key, port
    upstream: str  # the first (with one node: the only) application server, host:port
    prefix: str
    static_url: str
    static_root: str
    maintenance_dir: str
    max_body_size: str
    timeout: int
    user: str
    omerodir: str
    maintenance_file: str = platforms.MAINTENANCE_FILE
    maintenance_url: str = "/omerowizard-maintenance/"
    mime_types: str = "/etc/nginx/mime.types"
    omero_web_version: str = "5.3 or later"
    omero_dist: str = platforms.WINDOWS_OMERO_DIST

    default_server: bool = False  # nginx: this site answers requests for any other name on its ports
    ipv6: bool = True  # listen on [::] as well as on IPv4
    # several nodes (nodes.members): every application server of the upstream, host:port, in order
    upstreams: tuple[str, ...] = ()
    static_by_nodes: bool = False  # nodes.static nodes: the static URL is proxied, not aliased
    connect_timeout: int = NODE_CONNECT_TIMEOUT
    fail_timeout: int = NODE_FAIL_TIMEOUT

    @property
    def servers(self) -> tuple[str, ...]:
        return self.upstreams or (self.upstream,)

    @property
    def balanced(self) -> bool:
        """Several application servers: a dead one is skipped, and retried after ``fail_timeout``."""
        return len(self.servers) > 1

    @property
    def prefix_location(self) -> str:
        return self.prefix

    @property
    def prefix_dir(self) -> str:
        """The prefix as a directory: ``location /omero/`` does not match /omeroxyz as ``/omero`` would."""
        return "/" if self.prefix == "/" else self.prefix + "/"

    @property
    def prefix_regex(self) -> str:
        return re.escape(self.prefix)

    @property
    def https_port_suffix(self) -> str:
        return "" if self.https is None or self.https.port == 443 else f":{self.https.port}"

    @property
    def listen_http(self) -> bool:  # Apache: ports.conf already listens on 80 (and 443 with mod_ssl)
        return self.port != 80

    @property
    def listen_https(self) -> bool:
        return self.https is not None and self.https.port != 443

    @property
    def max_body_bytes(self) -> int:
        return min(size_bytes(self.max_body_size), APACHE_MAX_BODY)

    @property
    def iis_max_body_bytes(self) -> int:
        n = size_bytes(self.max_body_size)
        return IIS_MAX_BODY if n == 0 else min(n, IIS_MAX_BODY)

    @property
    def log_dir(self) -> str:
        return f"{self.omerodir}/var/log"

    @property
    def run_dir(self) -> str:
        return f"{self.omerodir}/var/nginx"

    # IIS URL Rewrite matches the path without its leading slash
    @property
    def static_pattern(self) -> str:
        return re.escape(self.static_url.lstrip("/"))

    @property
    def maintenance_file_pattern(self) -> str:
        return re.escape(self.maintenance_file)

    @property
    def prefix_pattern(self) -> str:
        return ".*" if self.prefix == "/" else f"^{re.escape(self.prefix.lstrip('/'))}(/.*)?$"


def size_bytes(text: str) -> int:
    text = str(text).strip()
    factor = {"k": 1024, "m": 1024 ** 2, "g": 1024 ** 3}.get(text[-1:].lower(), 1)
    return int(text[:-1] if factor != 1 else text) * factor


def host_port(host: str, port: int) -> str:
    """host:port as nginx and Apache read it (an IPv6 address in brackets); the host has passed
    ``validators.host_or_ip``, so it holds only letters, digits, '.', '-' and ':'."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def upstream_of(a: Any) -> str:
    host = a.application_server.host
    if host in {"0.0.0.0", "::"}:
        host = "127.0.0.1"
    return host_port(host, a.application_server.port)


def upstreams_of(a: Any) -> tuple[str, ...]:
    """Every application server of the upstream (nodes.members); empty: this host's own only."""
    members = a.nodes.members if a.platform == "unix" else ()
    return tuple(host_port(m["host"], m["port"]) for m in members)


def site_of(a: Any, path: str, detected_version: str | None = None, upstream: str | None = None) -> Site:
    """The site of these answers; ``upstream``: the application server it proxies to for now (a blue/green change
    renders the site with the running one, then switches it to the new one once that answers)."""
    ws = a.web_server
    version = ws.omero_web_version or detected_version
    upstreams = upstreams_of(a)
    return Site(
        name=f"omeroweb_{a.application_server.port}",
        path=path,
        server_name=ws.server_name,
        port=ws.port,
        https=ws.https,
        upstream=upstreams[0] if upstreams else (upstream or upstream_of(a)),
        prefix=a.prefix,
        static_url=a.effective_static_url,
        static_root=str(PurePosixPath(a.omero.omerodir, "var", "static")),
        maintenance_dir=web_server.maintenance_dir(a, path),
        max_body_size=ws.max_body_size,
        timeout=a.application_server.timeout,
        user=a.omero.user,
        omerodir=a.omero.omerodir,
        omero_web_version=version or "5.3 or later",
        omero_dist=web_server.windows_omero_dist(a),
        upstreams=upstreams,
        static_by_nodes=a.platform == "unix" and a.nodes.static == "nodes",
    )


def wanted_files(a: Any, host: Host, detected_version: str | None = None, notes: list[str] | None = None,
                 default_server: bool = False, upstream: str | None = None, served: bool = False) -> list[WantedFile]:
    """The files these answers ask for on ``host`` (its distribution decides the paths); ``default_server``:
    this site also answers requests for other names on its ports (nginx). Pure: nothing is read."""
    notes = notes if notes is not None else []
    dist = host.distribution
    ws = a.web_server
    out: list[WantedFile] = []
    place = web_server.web_server_file(a, dist, detected_version)
    if place is not None:
        site = site_of(a, place.path, detected_version, upstream)
        # a file for this host listens on IPv6 when the host has it; one for another host always does
        ipv6 = host.ipv6 if web_server.native(a) and a.platform == "unix" else True
        site = _replace(site, default_server=default_server, ipv6=ipv6)
        if ws.kind == "iis":
            out += _iis(a, site, place, detected_version, notes)
        else:
            out += _unix_site(a, site, place, dist, notes, served)
    if a.platform == "unix" and ws.systemd:
        out.append(systemd_unit(a, dist))
    return out


def _maintenance(a: Any, site: Site, owner: str | None) -> WantedFile:
    sep = "\\" if a.platform == "windows" else "/"
    return WantedFile(f"{site.maintenance_dir}{sep}{site.maintenance_file}", render("maintenance.html.j2", site=site),
                      "the maintenance page shown while OMERO.web does not answer", owner=owner)


def _unix_site(a: Any, site: Site, place: web_server.Placement, dist: str | None,
               notes: list[str], served: bool = False) -> list[WantedFile]:
    kind = a.web_server.kind
    if kind == "nginx":
        text = render("nginx.conf.j2", site=site)
        main = WantedFile(place.path, text, "nginx server block for OMERO.web", link=place.link, check="nginx",
                          system=place.system)
    elif kind == "nginx-development":
        layout = platforms.server_layout("nginx", dist)
        site = _replace(site, mime_types=layout.mime_types)
        text = render("nginx-development.conf.j2", site=site)
        main = WantedFile(place.path, text, f"standalone nginx that {a.omero.user} runs", check="nginx-development",
                          owner=a.omero.user if place.path.startswith(a.omero.omerodir + "/") else None)
        notes.append(f"nginx-development: start it as {a.omero.user} with "
                     f"`nginx -c {place.path} -e {site.log_dir}/nginx_error.log`; it listens on port {site.port}.")
    else:
        text = render("apache.conf.j2", site=site)
        modules = APACHE_MODULES + (APACHE_BALANCER_MODULES if site.balanced else ()) \
            + (("ssl",) if site.https else ())
        main = WantedFile(place.path, text, "Apache httpd virtual host proxying to OMERO.web", link=place.link,
                          check="apache", system=place.system, modules=modules)
        if site.max_body_bytes != 0 and site.max_body_bytes < size_bytes(site.max_body_size):
            notes.append(f"Apache: LimitRequestBody cannot exceed {APACHE_MAX_BODY} bytes; uploads are limited to that.")
    if not place.system and kind != "nginx-development" and not served:  # served: a running server includes it
        notes.append(f"{place.path} is outside the {kind} configuration: include it from the server's "
                     f"{'http {} block' if kind == 'nginx' else 'configuration'} and reload the server yourself.")
    return [main, _maintenance(a, site, a.omero.user)]


def _replace(site: Site, **changes: object) -> Site:
    return dataclasses.replace(site, **changes)  # type: ignore[arg-type]


def _iis(a: Any, site: Site, place: web_server.Placement, detected: str | None,
         notes: list[str]) -> list[WantedFile]:
    if web_server.legacy_iis(a, detected):
        dist = site.omero_dist
        script = render("iis-isapi-wsgi.bat.j2", site=site)
        out = [WantedFile(place.path, _crlf(script), f"OMERO.web {site.omero_web_version} under IIS through ISAPI-WSGI",
                          commands=(f'cmd /c "{place.path}"',))]
        notes.append(f"IIS: OMERO.web {site.omero_web_version} runs inside IIS through ISAPI-WSGI, the OMERO 5.1/5.2 "
                     "way: install ISAPI-WSGI first, then run the script as an administrator.")
        if a.sessions.backend == "file" and a.sessions.clearsessions != "off":
            out.append(clearsessions_task(a, dist))
        return out
    site_dir = str(PureWindowsPath(place.path).parent)
    commands = (
        r"%windir%\system32\inetsrv\appcmd set config -section:system.webServer/proxy /enabled:true /commit:apphost",
        r"%windir%\system32\inetsrv\appcmd set config -section:system.webServer/rewrite/allowedServerVariables "
        r"/+[name='HTTP_X_FORWARDED_PROTO'] /commit:apphost",
        rf"%windir%\system32\inetsrv\appcmd add site /name:omero-web /physicalPath:{site_dir} "
        rf"/bindings:http/*:{site.port}:{site.server_name}",
        f"copy the collected static files of OMERO.web (OMERODIR\\var\\static on the OMERO.web host) into "
        f"{site_dir}\\{site.static_url.strip('/').replace('/', chr(92))}",
    )
    notes.append(f"IIS: the web.config needs URL Rewrite and Application Request Routing; OMERO.web "
                 f"{site.omero_web_version} itself, and its clearsessions job, run on the Unix host at {site.upstream}: "
                 "run omerowizard there too.")
    if a.application_server.host in {"127.0.0.1", "localhost", "::1"}:
        notes.append("IIS: application_server.host is a loopback address; set it to the Unix host that runs OMERO.web.")
    if site.https:
        notes.append("IIS: bind the certificate to the site's HTTPS binding in IIS Manager (web.config cannot).")
    return [WantedFile(place.path, render("iis-web.config.j2", site=site), "IIS reverse proxy to OMERO.web",
                       commands=commands),
            _maintenance(a, site, None)]


def _crlf(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\n", "\r\n")


@dataclass(frozen=True)
class TaskJob:
    schedule: str
    task_name: str
    start_boundary: str
    hourly: bool
    working_directory: str

    @property
    def register_command(self) -> str:
        return register_command(self.working_directory)


def task_path(dist: str) -> str:
    return str(PureWindowsPath(dist, "omero-web-clearsessions.xml"))


def register_command(dist: str) -> str:
    return f'schtasks /Create /XML "{task_path(dist)}" /TN "{platforms.TASK_NAME}" /F'


def clearsessions_task(a: Any, dist: str) -> WantedFile:
    hourly, hour, minute = task_trigger(a.sessions.clearsessions)
    start = _dt.datetime(2024, 1, 1, hour, minute).isoformat()
    job = TaskJob(a.sessions.clearsessions, platforms.TASK_NAME, start, hourly, dist)
    return WantedFile(task_path(dist), render("clearsessions-task.xml.j2", job=job),
                      f"Task Scheduler job: omero web clearsessions ({a.sessions.clearsessions})",
                      encoding="utf-16", commands=(job.register_command,))


@dataclass(frozen=True)
class Unit:
    name: str
    user: str
    venv: str
    omerodir: str
    front_end: str | None  # the web server's own unit, wanted (not required) before OMERO.web


def systemd_unit(a: Any, dist: str) -> WantedFile:
    kind = a.web_server.kind
    front = platforms.server_layout(kind, dist).binary if kind in {"nginx", "apache"} else None
    unit = Unit(PurePosixPath(platforms.SYSTEMD_UNIT).name, a.omero.user, a.omero.venv, a.omero.omerodir, front)
    return WantedFile(platforms.SYSTEMD_UNIT, render("omero-web.service.j2", unit=unit),
                      "systemd unit for OMERO.web (web_server.systemd)", check="systemd")


# ---------------------------------------------------------------------------- the upstream of a running site
# the one application server a site (not balanced over nodes) proxies to, in each template: nginx's upstream
# block (``server HOST:PORT fail_timeout=0;``), Apache's ProxyPass and ProxyPassReverse (``http://HOST:PORT/...``)
_UPSTREAM = {
    "nginx": re.compile(r"(?m)^([ \t]*server[ \t]+)(\S+)([ \t]+fail_timeout=0;)"),
    "apache": re.compile(r"(?m)^([ \t]*ProxyPass(?:Reverse)?[ \t]+\S+[ \t]+http://)([^/\s]+)(/)"),
}


def upstream_in(text: str, kind: str) -> str | None:
    """The application server (host:port) a rendered site proxies to; None when it has no single one."""
    found = {m.group(2) for m in _UPSTREAM[kind].finditer(text)} if kind in _UPSTREAM else set()
    return found.pop() if len(found) == 1 else None


def with_upstream(text: str, kind: str, upstream: str) -> str:
    """The site with its one application server replaced by ``upstream`` (host:port as ``host_port`` writes it):
    the switch of a blue/green change. ValueError when the site has no single upstream to replace."""
    if upstream_in(text, kind) is None:
        raise ValueError(f"the {kind} site has no single upstream to switch")
    return _UPSTREAM[kind].sub(lambda m: m.group(1) + upstream + m.group(3), text)
