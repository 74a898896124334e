"""The front door on day two: the login page and a static file requested through the web server as a browser
would (127.0.0.1 on the web-server port, the site's name as Host and SNI, as apply checks after a run), the
login page on the application server itself, and, for ``doctor``, why the door may not be ours: Debian's stock
default site enabled again (ome/omero-web#408) or another server block claiming our name on our port."""

from __future__ import annotations

import os
import re
from pathlib import Path

from omerowizard.features import web_server
from omerowizard.features.application_server import login_url, public_url
from omerowizard.model import health as h
from omerowizard.model.health import Finding, HealthContext
from omerowizard.system import network, platforms, safefs

# collected by `omero web start` (collectstatic) from omero-web's webgateway app, in every 5.x release: the static
# file apply requests too (plan/frontdoor.py)
STATIC_FILE = "webgateway/css/ome.body.css"
VIA = {"nginx": "nginx", "apache": "Apache httpd", "nginx-development": "the standalone nginx"}


def check(ctx: HealthContext, running: bool) -> list[Finding]:
    a = ctx.answers
    kind = a.web_server.kind
    app = _app_server(ctx, running)
    if a.platform != "unix" or kind == "iis" or not web_server.native(a):
        return [app, h.skipped("front-door", "the web server is on another host (IIS or files for another host)")]
    if kind in {"development", "none"}:
        return [app, h.skipped("front-door", "no web server on this host (web_server.kind "
                                             f"{kind}): the application server is the door")]
    via = VIA[kind]
    ws = a.web_server
    scheme, port = ("https", ws.https.port) if ws.https else ("http", ws.port)
    prefix = "/" if a.prefix == "/" else a.prefix + "/"
    login_path, static_path = f"{prefix}webclient/login/", f"{a.effective_static_url}{STATIC_FILE}"
    url = public_url(a)
    status, detail = network.request_loopback(scheme, ws.server_name, port, login_path, timeout=5)
    found = [app]
    where = f"{via} (127.0.0.1:{port}, Host {ws.server_name})"
    place = web_server.web_server_file(a)
    if status is None and kind in {"nginx", "apache"} and place is not None and not place.system:
        found.append(h.skipped("front-door", f"nothing answers on port {port}, and {place.path} is outside "
                                             f"{via}'s configuration: include it and reload {via}, then status "
                                             "requests it"))
        return found
    if status is None:
        found.append(h.problem(
            "front-door", f"nothing answers {url} through {where}: {detail}",
            _start_server(ctx, kind), ctx.repair if kind in {"nginx", "apache"} else "", url=url))
        return found
    if status != 200:
        why = "OMERO.web is down: the web server shows the maintenance page" if status in (502, 503, 504) and \
            not running else "another site may answer for this name (`omerowizard doctor` looks for it)"
        found.append(h.problem("front-door", f"the login page {url}webclient/login/ through {where}: {detail} ({why})",
                               "start OMERO.web (apply the saved answers)" if not running else
                               "make OMERO.web's site the one that answers this name and port: apply the saved answers",
                               ctx.repair, url=url, status=status))
        return found
    s_status, s_detail = network.request_loopback(scheme, ws.server_name, port, static_path, timeout=5)
    if s_status != 200:
        found.append(h.problem(
            "static-files", f"static files are not served by {via}: {static_path} gave {s_detail} (pages load "
                            "without their styles and scripts)",
            f"the site serves {a.effective_static_url} from {ctx.omerodir}/var/static, which OMERO.web fills "
            f"(collectstatic) when it starts: restart it (`omero web restart` as {ctx.user}); if the site was "
            "edited, apply the saved answers", "omero web restart", url=url, status=s_status))
    else:
        found.append(h.ok("front-door", f"{url}: the login page and a static file answer 200 through {where}",
                          url=url))
    return found


def _app_server(ctx: HealthContext, running: bool) -> Finding:
    url = login_url(ctx.answers)
    if not running:
        return h.skipped("application-server", f"{url} was not requested: OMERO.web is not running")
    status = network.http_status(url, timeout=10)
    if status == 200:
        return h.ok("application-server", f"the login page answers 200 on the application server ({url})", url=url)
    return h.problem("application-server", f"the login page on the application server {url}: {status}",
                     f"read the log for the error (`omerowizard logs --omerodir {ctx.omerodir}`); `omerowizard "
                     "doctor` imports each web app to find one that breaks OMERO.web", url=url, status=str(status))


def _start_server(ctx: HealthContext, kind: str) -> str:
    a = ctx.answers
    if kind == "nginx-development":
        place = web_server.web_server_file(a)
        path = place.path if place else "its file"
        return (f"start the standalone nginx as {ctx.user}: `nginx -c {path} -e {ctx.omerodir}/var/log/"
                "nginx_error.log`")
    place = web_server.web_server_file(a)
    if place is not None and not place.system:
        return (f"include {place.path} in {VIA[kind]}'s configuration and reload it (it is outside the server's own "
                "configuration directory)")
    return f"start {VIA[kind]} (apply the saved answers starts it), and check that it includes OMERO.web's site"


# ------------------------------------------------------------------------------------------------ doctor
def diagnose(ctx: HealthContext) -> list[Finding]:
    """Why the door may not be ours: the stock default site, or another server block for our name and port."""
    a = ctx.answers
    kind = a.web_server.kind
    if a.platform != "unix" or kind not in {"nginx", "apache"} or not web_server.native(a):
        return []
    place = web_server.web_server_file(a)
    if place is None or not place.system:
        return [h.skipped("default-site", f"{place.path if place else 'the site'} is outside the system "
                                          f"{VIA[kind]}'s configuration: its other sites were not read")]
    ws = a.web_server
    own = place.link or place.path
    ports = [ws.port] + ([ws.https.port] if ws.https else [])
    found: list[Finding] = []
    stock = platforms.stock_site(kind)
    holders = sorted({p for port in ports for p in platforms.default_site_holders(kind, port, own)})
    if stock is not None and os.path.lexists(stock.link) and ws.default_site and set(ports) & set(stock.ports):
        found.append(h.problem(
            "default-site", f"Debian's stock default site {stock.link} is enabled again: it answers requests by IP "
                            f"address and by any other name on port {ws.port} instead of OMERO.web"
                            + (" (and nginx refuses to reload while two sites claim default_server)"
                               if kind == "nginx" and stock.link in holders else ""),
            "apply the saved answers (web_server.default_site: yes disables it again; the file stays)", ctx.repair,
            site=stock.link))
    elif holders and ws.default_site:
        found.append(h.problem("default-site", f"{', '.join(holders)} claim the default site of port "
                                               f"{', '.join(map(str, ports))} before OMERO.web",
                               "disable those sites (remove their links in sites-enabled), or answer "
                               "web_server.default_site: no", details=tuple(holders)))
    else:
        found.append(h.ok("default-site", "no other site claims the default site of OMERO.web's port"
                          if ws.default_site else "the default site is not OMERO.web's (web_server.default_site: no)"))
    shadows = _shadows(kind, own, ws.server_name, ports)
    if shadows:
        found.append(h.problem(
            "shadowing-site", f"{', '.join(shadows)} also claim{'s' if len(shadows) == 1 else ''} {ws.server_name} on "
                              f"port {', '.join(map(str, ports))}: {VIA[kind]} sends browsers there, not to OMERO.web",
            "remove that server_name from the other site (or disable it), then reload the web server",
            details=tuple(shadows)))
    return found


def _shadows(kind: str, own: str, name: str, ports: list[int]) -> list[str]:
    """Enabled sites other than ours that name ``name`` for one of ``ports``."""
    layout = platforms.server_layout(kind)
    try:
        entries = safefs.listdir(layout.enabled) or []
    except (OSError, safefs.UnsafePath):
        return []
    own_real = os.path.realpath(own)
    out = []
    for entry in entries:
        path = f"{layout.enabled}/{entry}"
        if os.path.realpath(path) == own_real or path == own:
            continue
        try:
            text = Path(path).read_text(errors="replace") if _root_only(path) else None
        except OSError:
            continue
        if text is None:
            continue
        text = re.sub(r"#[^\n]*", "", text)
        if kind == "nginx":
            for block in re.split(r"\bserver\s*\{", text)[1:]:
                names = " ".join(m.group(1) for m in re.finditer(r"\bserver_name\s+([^;]*);", block)).split()
                listens = {p for m in re.finditer(r"\blisten\s+([^;]*);", block) for p in _ports(m.group(1))}
                if name in names and (listens & set(ports) or (not listens and 80 in ports)):
                    out.append(path)
                    break
        elif re.search(rf"^\s*Server(Name|Alias)\s+.*\b{re.escape(name)}\b", text, re.M | re.I):
            out.append(path)
    return out


def _ports(text: str) -> set[int]:
    out = set()
    for word in text.split():
        tail = word.rsplit(":", 1)[-1]
        if tail.isdigit():
            out.add(int(tail))
    return out


def _root_only(path: str) -> bool:
    """A site file root may read by name: in the server's own directories (root's, writable by nobody else)."""
    try:
        st = os.stat(path)
        parent = os.stat(os.path.dirname(os.path.realpath(path)))
    except OSError:
        return False
    return st.st_uid == 0 and parent.st_uid == 0 and not parent.st_mode & 0o022
